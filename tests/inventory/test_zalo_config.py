"""The Zalo section and the contacts' phone numbers: normalised to 84..., every mistake refused
with its position (one invalid config per rule, asserted by its exact message)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netwatch.inventory import ConfigError, Inventory, load_inventory

ENV = {
    "NW_LINK_SECRET": "9921c527c59c2d56534fbf20ed19f449423f7b64",
    "NW_ZALO_ACCESS_TOKEN": "zalo-access",
    "NW_ZALO_REFRESH_TOKEN": "zalo-refresh",
    "NW_ZALO_SECRET_KEY": "zalo-secret",
}
CONFIG = """
isps:
  vnpt:
    name: VNPT
    contacts:
      - {level: 1, name: NOC VNPT, zalo_phone: @PHONE@}
notifications:
  public_url: https://netwatch.lamdong.example
  link_secret: {env: NW_LINK_SECRET}
  zalo:
@ZALO@
communes:
  - code: 24848
    links:
      - {id: vnpt, isp: vnpt, circuit: C-1, bandwidth_mbps: 100, path: tslcd, address: 10.0.0.1}
"""
ZALO = """\
    access_token: {env: NW_ZALO_ACCESS_TOKEN}
    templates: {opened: 401234, resolved: "401235"}
"""


def _write(tmp_path: Path, phone: str = '"0912345678"', zalo: str = ZALO) -> Path:
    text = textwrap.dedent(CONFIG).lstrip().replace("@PHONE@", phone).replace("@ZALO@\n", zalo)
    path = tmp_path / "netwatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _load(path: Path) -> Inventory:
    return load_inventory(path, environ=ENV)


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(path)
    return [str(issue).replace(str(path), "F") for issue in caught.value.issues]


@pytest.mark.parametrize(
    "written",
    [
        '"0912345678"',
        "0912345678",  # the reader keeps a leading 0 as text
        '"0912 345 678"',
        '"0912.345.678"',
        '"0912-345-678"',
        "84912345678",  # a number in YAML
        '"84912345678"',
        '"+84 912 345 678"',
    ],
)
def test_phone_numbers_are_normalised_to_84(tmp_path: Path, written: str) -> None:
    inventory = _load(_write(tmp_path, written))
    [contact] = inventory.isps["vnpt"].contacts
    assert contact.zalo_phone == "84912345678"


@pytest.mark.parametrize(
    "written",
    [
        '"0212345678"',  # a landline (02x): no Zalo account
        '"091234567"',  # a digit short
        '"09123456789"',  # a digit too many
        '"912345678"',  # no 0, no 84
        "912345678",
        '"+1 650 555 0100"',
        '"0912345678 ext 2"',
        "true",
    ],
)
def test_a_phone_number_that_is_not_a_vietnamese_mobile_is_refused_with_its_position(
    tmp_path: Path, written: str
) -> None:
    assert _errors(_write(tmp_path, written)) == [
        "F:5:48: isps.vnpt.contacts[0].zalo_phone: expected a Vietnamese mobile number like "
        "0912345678 or 84912345678"
    ]


def test_a_zalo_contact_needs_the_zalo_section(tmp_path: Path) -> None:
    path = _write(tmp_path, zalo="")
    text = path.read_text("utf-8").replace("  zalo:\n", "")
    path.write_text(text, "utf-8")
    assert _errors(path) == [
        "F:5:48: isps.vnpt.contacts[0].zalo_phone: Zalo contacts need `notifications.zalo` "
        "(the Official Account)"
    ]


def test_template_ids_are_read_as_text(tmp_path: Path) -> None:
    inventory = _load(_write(tmp_path))
    assert inventory.notifications is not None
    assert inventory.notifications.zalo is not None
    assert inventory.notifications.zalo.templates == {"opened": "401234", "resolved": "401235"}
    assert inventory.notifications.zalo.api_base_url == "https://business.openapi.zalo.me"
    assert inventory.notifications.zalo.oauth_base_url == "https://oauth.zaloapp.com"


@pytest.mark.parametrize(
    ("zalo", "error"),
    [
        (
            "    access_token: {env: NW_ZALO_ACCESS_TOKEN}\n    templates: {openned: 1}\n",
            "F:11:16: notifications.zalo.templates: no notice event is called openned; the "
            "events are: opened, updated, escalated, reminder, acknowledged, note, resolved, "
            "auto_resolved, unmonitored, reopened, line_back, bad_again",
        ),
        (
            "    access_token: {env: NW_ZALO_ACCESS_TOKEN}\n    templates: {opened: ZNS-1}\n",
            "F:11:16: notifications.zalo.templates: the template for opened is the id Zalo "
            "gave it, digits only, like 401234",
        ),
        (
            "    access_token: {env: NW_ZALO_ACCESS_TOKEN}\n    templates: {}\n",
            "F:11:16: notifications.zalo.templates: needs at least 1 item(s)",
        ),
        (
            "    refresh_token: {env: NW_ZALO_REFRESH_TOKEN}\n    templates: {opened: 1}\n",
            "F:10:5: notifications.zalo: refreshing the access token needs all of "
            "refresh_token, app_id and secret_key",
        ),
        (
            "    templates: {opened: 1}\n",
            "F:10:5: notifications.zalo: give access_token, or refresh_token with app_id and "
            "secret_key (or both)",
        ),
        (
            "    access_token: {env: NW_ZALO_ACCESS_TOKEN}\n    templates: {opened: 1}\n"
            "    api_base_url: http://zalo.example.vn\n",
            "F:12:19: notifications.zalo.api_base_url: Zalo's API is reached over https:// "
            "(plain http:// only to a loopback address, for tests)",
        ),
    ],
)
def test_each_zalo_section_mistake_is_refused_with_its_position(
    tmp_path: Path, zalo: str, error: str
) -> None:
    assert _errors(_write(tmp_path, zalo=zalo)) == [error]


def test_refresh_only_and_a_loopback_peer_load(tmp_path: Path) -> None:
    zalo = (
        "    refresh_token: {env: NW_ZALO_REFRESH_TOKEN}\n"
        '    app_id: "4291763606161179100"\n'
        "    secret_key: {env: NW_ZALO_SECRET_KEY}\n"
        "    templates: {opened: 1}\n"
        "    api_base_url: http://127.0.0.1:8080/\n"
    )
    inventory = _load(_write(tmp_path, zalo=zalo))
    assert inventory.notifications is not None
    assert inventory.notifications.zalo is not None
    assert inventory.notifications.zalo.api_base_url == "http://127.0.0.1:8080"
    assert "zalo-refresh" not in repr(inventory.notifications.zalo)


def test_a_refresh_token_without_a_token_file_is_warned_about(tmp_path: Path) -> None:
    zalo = (
        "    refresh_token: {env: NW_ZALO_REFRESH_TOKEN}\n"
        '    app_id: "4291763606161179100"\n'
        "    secret_key: {env: NW_ZALO_SECRET_KEY}\n"
        "    templates: {opened: 1}\n"
    )
    warned = [w for w in _load(_write(tmp_path, zalo=zalo)).warnings() if "token_file" in w]
    assert warned == [
        "notifications.zalo has a refresh_token but no token_file: the tokens Zalo hands out "
        "are kept in memory only, and after a restart Zalo refuses the configured refresh "
        "token (each is used once); set token_file, e.g. data/zalo-tokens.json"
    ]
    kept = _load(_write(tmp_path, zalo=zalo + "    token_file: data/zalo-tokens.json\n"))
    assert not [w for w in kept.warnings() if "token_file" in w]
