"""The inventory loader: the shipped example, every mistake reported with its place."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netwatch.cli import main
from netwatch.inventory import ConfigError, Divisions, Secret, load_inventory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "lam-dong.yaml"
ENV = {
    "NETWATCH_SNMP_COMMUNITY": "c0mmunity-s3cret",
    "NETWATCH_SNMP_AUTH_KEY": "auth-s3cret-key",
    "NETWATCH_SNMP_PRIV_KEY": "priv-s3cret-key",
    "NETWATCH_LINK_SECRET": "link-s3cret-9921c527c59c2d56534fbf20ed19f449",
    "NETWATCH_SMTP_PASSWORD": "smtp-s3cret",
    "NETWATCH_WEBHOOK_SECRET": "webhook-s3cret",
    "NETWATCH_TELEGRAM_TOKEN": "123:telegram-s3cret",
}


@pytest.fixture(scope="module")
def divisions() -> Divisions:
    return Divisions()


def write(tmp_path: Path, text: str, name: str = "netwatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors_of(path: Path, divisions: Divisions, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_inventory(path, environ=ENV if env is None else env, divisions=divisions)
    return [str(issue).replace(str(path), "F") for issue in caught.value.issues]


MINIMAL = """
isps:
  vnpt:
    name: VNPT
    contacts: [{level: 1, name: NOC, email: noc@vnpt.example}]
communes:
  - code: 24848
    links:
      - {id: vnpt, isp: vnpt, circuit: C1, bandwidth_mbps: 100, path: tslcd, address: 10.0.0.1}
"""


def test_shipped_example_loads_with_official_names(divisions: Divisions) -> None:
    inventory = load_inventory(EXAMPLE, environ=ENV, divisions=divisions)
    assert inventory.summary()["communes"] == 9
    lac_duong = inventory.commune("24848")
    assert lac_duong is not None
    assert lac_duong.name == "Xã Lạc Dương"
    assert lac_duong.province_code == 68
    assert [link.id for link in lac_duong.links] == ["vnpt-tslcd", "viettel-internet"]
    duc_trong = inventory.commune("24958")
    assert duc_trong is not None
    assert duc_trong.effective_thresholds(inventory.thresholds).rtt_ms == 80
    assert duc_trong.effective_thresholds(inventory.thresholds).loss_pct == 2
    window = inventory.maintenance[1]
    assert window.start is not None
    assert window.start.utcoffset() is not None
    assert window.start.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]


def test_secrets_never_print_or_serialize(divisions: Divisions) -> None:
    inventory = load_inventory(EXAMPLE, environ=ENV, divisions=divisions)
    creds = inventory.snmp_credentials["xa-v3"]
    assert isinstance(creds.auth_key, Secret)
    assert creds.auth_key.reveal() == "auth-s3cret-key"
    for text in (
        repr(inventory),
        str(inventory),
        inventory.model_dump_json(),
        str(inventory.model_dump()),
    ):
        for secret in ENV.values():
            assert secret not in text
    assert "NETWATCH_SNMP_AUTH_KEY" in repr(creds.auth_key)


def test_a_literal_secret_is_refused_without_echoing_it(
    tmp_path: Path, divisions: Divisions
) -> None:
    path = write(
        tmp_path, MINIMAL + 'snmp_credentials:\n  x:\n    version: "2c"\n    community: hunter2\n'
    )
    errors = errors_of(path, divisions)
    assert errors == [
        "F:12:16: snmp_credentials.x.community: "
        "secrets are read from the environment: write {env: VARIABLE_NAME}"
    ]
    assert "hunter2" not in "".join(errors)


def test_ten_mistakes_are_all_reported_in_one_run(tmp_path: Path, divisions: Divisions) -> None:
    path = write(
        tmp_path,
        """
        province: 68
        isps:
          vnpt:
            name: VNPT
            contacts: [{level: 1, name: NOC, email: not-an-email}]
        snmp_credentials:
          v2: {version: "2c", community: {env: UNSET_COMMUNITY}}
        communes:
          - code: 24848
            router: {address: 10.0.0.300, snmp: v2}
            links:
              - {id: vnpt, isp: vnpt, circuit: C1, bandwidth_mbps: -5, path: tslcd, address: 10.0.0.1}
              - {id: vnpt, isp: vnpt, circuit: C2, bandwidth_mbps: 10, path: fibre, address: 10.0.0.2}
          - code: 28696
            links:
              - {id: fpt, isp: fpt, circuit: C3, bandwidth_mbps: 10, path: internet, address: 10.0.0.1}
          - code: lac duong
            links:
              - {id: v, isp: vnpt, circuit: C4, bandwidth_mbps: 10, path: tslcd, address: 10.0.0.4}
            colour: red
        maintenance:
          - scope: {commune: 24848}
            start: "2026-12-05 21:00"
            end: "2026-12-05 20:00"
            reason: Bảo trì
        """,
    )
    errors = errors_of(path, divisions, env={})
    assert errors == [
        "F:5:45: isps.vnpt.contacts[0].email: expected an e-mail address like noc@vnpt.vn",
        "F:7:34: snmp_credentials.v2.community: "
        "environment variable UNSET_COMMUNITY is not set (it holds this secret)",
        "F:10:23: communes[0].router.address: expected an IPv4 or IPv6 address, got '10.0.0.300'",
        "F:12:60: communes[0].links[0].bandwidth_mbps: must be more than 0",
        "F:13:14: communes[0].links[1].id: link id 'vnpt' is used twice in this commune",
        "F:13:70: communes[0].links[1].path: expected one of 'tslcd' or 'internet'",
        "F:14:11: communes[1].code: Xã Tân Phú Đông belongs to Đồng Tháp (82), "
        "not to province 68 named at the top",
        "F:16:24: communes[1].links[0].isp: unknown ISP 'fpt'; defined: vnpt",
        "F:16:87: communes[1].links[0].address: address 10.0.0.1 is already pinged "
        "for another link (at F:12:86)",
        "F:17:11: communes[2].code: 'lac duong' is not an official commune code; "
        "did you mean 24848 Xã Lạc Dương (Lâm Đồng)?",
        "F:20:5: communes[2].colour: unknown key 'colour' (allowed here: code, name, coordinates, "
        "router, links, devices, thresholds, agent, contacts)",
        "F:22:5: maintenance[0]: the window ends before it starts",
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("thresholds: {rtt_ms: 0}\n", "F:9:22: thresholds.rtt_ms: must be more than 0"),
        ("thresholds: {loss_pct: 120}\n", "F:9:24: thresholds.loss_pct: must be at most 100"),
        (
            "intervals: {icmp_echoes: many}\n",
            "F:9:26: intervals.icmp_echoes: expected a whole number",
        ),
        (
            "province: 99\n",
            "F:9:11: province: no province has the official code 99 "
            "(codes look like: 01 Thành phố Hà Nội, 04 Cao Bằng, 08 Tuyên Quang, 11 Điện Biên, "
            "12 Lai Châu, ...)",
        ),
        (
            "upstreams:\n  pop: {name: P, isp: nobody}\n",
            "F:10:23: upstreams.pop.isp: unknown ISP 'nobody'; defined: vnpt",
        ),
        (
            "portals:\n  p: {name: P, url: ftp://x}\n",
            "F:10:21: portals.p.url: expected an http:// or https:// URL",
        ),
        (
            "portals:\n  p: {name: P, url: 'https://x/', ca_file: missing.pem}\n",
            "F:10:44: portals.p.ca_file: no such file: {tmp}/missing.pem",
        ),
        (
            'snmp_credentials:\n  s: {version: "3", auth_protocol: sha}\n',
            "F:10:6: snmp_credentials.s: SNMP v3 needs `user`",
        ),
        (
            "maintenance:\n  - {scope: {isp: vnpt, commune: 24848}, every: daily, at: '1:00', "
            "duration_min: 5, reason: r}\n",
            "F:10:13: maintenance[0].scope: a scope names exactly one of province, commune, link, isp",
        ),
        (
            "maintenance:\n  - {scope: {isp: vnpt}, every: weekly, at: '1:00', "
            "duration_min: 5, reason: r}\n",
            "F:10:5: maintenance[0]: a weekly window needs `days`, e.g. [sun]",
        ),
        (
            "maintenance:\n  - {scope: {isp: vnpt}, every: daily, at: '25:00', "
            "duration_min: 5, reason: r}\n",
            "F:10:44: maintenance[0].at: expected a local time like 23:00",
        ),
        (
            "maintenance:\n  - {scope: {link: 24848/nope}, every: daily, at: '1:00', "
            "duration_min: 5, reason: r}\n",
            "F:10:20: maintenance[0].scope.link: no link '24848/nope' in this configuration",
        ),
        (
            "communes:\n  - {code: 99999, links: [{id: a, isp: vnpt, circuit: C, bandwidth_mbps: 1, "
            "path: tslcd, address: 10.0.0.9}]}\n",
            "F:9:12: communes[1].code: no commune has the official code 99999; did you mean "
            "32248 Xã Đất Mũi (Cà Mau), 32244 Xã Phan Ngọc Hiển (Cà Mau), 32236 Xã Tân Ân (Cà Mau)?",
        ),
        (
            "communes:\n  - {code: 99999, name: lac duong, links: [{id: a, isp: vnpt, circuit: C, "
            "bandwidth_mbps: 1, path: tslcd, address: 10.0.0.9}]}\n",
            "F:9:12: communes[1].code: no commune has the official code 99999; did you mean "
            "24848 Xã Lạc Dương (Lâm Đồng)?",
        ),
        (
            "communes:\n  - {code: 24781, name: Lac Duog, links: [{id: a, isp: vnpt, circuit: C, "
            "bandwidth_mbps: 1, path: tslcd, address: 10.0.0.9}]}\n",
            "F:9:25: communes[1].name: code 24781 is Phường Xuân Hương - Đà Lạt, not 'Lac Duog'; did you mean "
            "24848 Xã Lạc Dương (Lâm Đồng), 05362 Xã Lạc Lương (Phú Thọ), 11992 Xã Lạc Đạo (Hưng Yên), "
            "11140 Xã Lạc Phượng (Thành phố Hải Phòng), 06526 Xã Na Dương (Lạng Sơn)?",
        ),
        (
            "notifications: {public_url: 'https://nw.example.vn', link_secret: {env: NETWATCH_LINK_SECRET}}\n",
            "F:4:45: isps.vnpt.contacts[0].email: e-mail contacts need `notifications.smtp` "
            "(the mail server to send through)",
        ),
        (
            "notifications: {public_url: 'https://nw.example.vn/x', link_secret: {env: NETWATCH_LINK_SECRET}, "
            "smtp: {host: mail.example.vn, from_address: netwatch@example.vn}}\n",
            "F:9:29: notifications.public_url: expected the base URL, like https://netwatch.tinh.gov.vn",
        ),
        (
            "bogus: 1\n",
            "F:9:1: bogus: unknown key 'bogus' (allowed here: province, reference_targets, "
            "intervals, confirmation, thresholds, isps, snmp_credentials, upstreams, portals, communes, maintenance, "
            "provincial_it, notifications, tickets, reports, agents)",
        ),
        (
            "isps_extra:\n",
            "F:4:37: isps.vnpt.contract.exclude_maintenance: expected true or false",
        ),
        (
            "reports: {history_days: 1}\n",
            "F:9:25: reports.history_days: must be at least 2",
        ),
        ("isps:\n  vnpt: {name: again}\n", "F:13:3: isps.vnpt: defined twice (also at F:2:3)"),
    ],
)
def test_each_rule_has_its_message(
    tmp_path: Path, divisions: Divisions, snippet: str, expected: str
) -> None:
    text = textwrap.dedent(MINIMAL).lstrip("\n")
    if snippet.startswith("communes:"):
        text += snippet.split("\n", 1)[1]
    elif snippet.startswith("isps_extra:"):
        # The ISP's contract, written on its own line of the ISP (line 4 of MINIMAL).
        text = text.replace(
            "    name: VNPT\n", "    name: VNPT\n    contract: {exclude_maintenance: sometimes}\n"
        )
    elif snippet.startswith("isps:"):
        text += "isps_again: {}\n"
        path = tmp_path / "a.yaml"
        path.write_text(text.replace("isps_again: {}\n", ""), encoding="utf-8")
        (tmp_path / "b.yaml").write_text("\n" * 11 + snippet, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_inventory(tmp_path, environ=ENV, divisions=divisions)
        got = [
            str(i).replace(str(tmp_path / "a.yaml"), "F").replace(str(tmp_path / "b.yaml"), "F")
            for i in caught.value.issues
        ]
        assert got == [expected]
        return
    else:
        text += snippet
    path = write(tmp_path, text)
    errors = errors_of(path, divisions)
    assert [e.replace(str(tmp_path), "{tmp}") for e in errors] == [expected]


def test_codes_keep_leading_zeros(tmp_path: Path, divisions: Divisions) -> None:
    # YAML 1.1 would read 00070 as octal 56; NetWatch reads the official code.
    text = textwrap.dedent(MINIMAL).replace("code: 24848", "code: 00070")
    inventory = load_inventory(write(tmp_path, text), environ=ENV, divisions=divisions)
    assert inventory.communes[0].code == "00070"
    assert inventory.communes[0].name == "Phường Hoàn Kiếm"


def test_a_folder_is_merged(tmp_path: Path, divisions: Divisions) -> None:
    (tmp_path / "10-isps.yaml").write_text(
        "isps:\n  vnpt: {name: VNPT, contacts: [{level: 1, name: N, email: a@b.vn}]}\n",
        encoding="utf-8",
    )
    (tmp_path / "20-communes.yaml").write_text(
        "communes:\n  - {code: 24848, links: [{id: a, isp: vnpt, circuit: C, bandwidth_mbps: 1, "
        "path: tslcd, address: 10.0.0.1}]}\n",
        encoding="utf-8",
    )
    (tmp_path / "30-more.yaml").write_text(
        "communes:\n  - {code: 24781, links: [{id: a, isp: vnpt, circuit: C, bandwidth_mbps: 1, "
        "path: tslcd, address: 10.0.0.2, upstream: nope}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_inventory(tmp_path, environ=ENV, divisions=divisions)
    assert [str(i) for i in caught.value.issues] == [
        f"{tmp_path / '30-more.yaml'}:2:119: communes[1].links[0].upstream: "
        "unknown upstream 'nope'; defined: none: add a `upstreams:` section"
    ]


def test_yaml_syntax_error_has_a_position(tmp_path: Path, divisions: Divisions) -> None:
    path = write(tmp_path, "isps:\n  vnpt: [unclosed\n")
    errors = errors_of(path, divisions)
    assert len(errors) == 1
    assert errors[0].startswith("F:3:1: YAML syntax:")


def test_search_is_diacritics_insensitive(divisions: Divisions) -> None:
    assert divisions.search("lac duong")[0].name == "Xã Lạc Dương"
    assert divisions.search("tan phu dong")[0].name == "Xã Tân Phú Đông"
    assert divisions.search("SÔNG CÔNG")[0].code == "05518"
    assert len(divisions.communes) == 3321
    assert len(divisions.provinces) == 34


def test_short_snmpv3_keys_are_refused(tmp_path: Path, divisions: Divisions) -> None:
    path = write(
        tmp_path,
        MINIMAL + 'snmp_credentials:\n  v3: {version: "3", user: u, auth_protocol: sha, '
        "auth_key: {env: SHORT_KEY}}\n",
    )
    errors = errors_of(path, divisions, env={"SHORT_KEY": "1234567"})
    assert errors == [
        "F:10:7: snmp_credentials.v3: the key in SHORT_KEY is shorter than 8 characters (RFC 3414)"
    ]
    assert "1234567" not in errors[0]


NOTHING = "no commune, portal or upstream listed: NetWatch would watch nothing"


def test_a_config_that_watches_nothing_is_a_positioned_error(
    tmp_path: Path, divisions: Divisions
) -> None:
    """Issue 15, finding 18: zero communes passed check-config silently. An empty or missing
    section is placed where it stands (else at the file's start); a folder whose communes file
    is misnamed says so too."""
    empty = write(tmp_path, "isps:\n  vnpt: {name: VNPT}\ncommunes: []\n")
    assert errors_of(empty, divisions) == [f"F:3:11: communes: {NOTHING}; " + HINT]
    missing = write(tmp_path, "isps:\n  vnpt: {name: VNPT}\n", name="only-isps.yaml")
    assert errors_of(missing, divisions) == [f"F:1:1: communes: {NOTHING}; " + HINT]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "10-isps.yaml").write_text("isps:\n  vnpt: {name: VNPT}\n", encoding="utf-8")
    (folder / "20-communes.yml.bak").write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_inventory(folder, environ=ENV, divisions=divisions)
    assert [i.message for i in caught.value.issues] == [f"{NOTHING}; {HINT}"]


HINT = (
    "list the communes under `communes:` (in a folder, the file holding them must end in"
    " .yaml or .yml)"
)


def test_portals_alone_are_watched_and_check_config_warns(
    tmp_path: Path, divisions: Divisions, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
        portals:
          dvcqg: {name: Cổng Dịch vụ công quốc gia, url: "https://dichvucong.gov.vn/"}
        """,
    )
    inventory = load_inventory(path, environ=ENV, divisions=divisions)
    assert not inventory.communes
    assert list(inventory.portals) == ["dvcqg"]
    assert main(["check-config", "--ignore-missing-secrets", str(path)]) == 0
    assert "  warning: no communes: only portals and upstream nodes are watched" in (
        capsys.readouterr().out
    )
