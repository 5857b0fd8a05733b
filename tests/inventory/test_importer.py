"""`netwatch import`: the provincial spreadsheet becomes a config that loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.cli import main
from netwatch.inventory import load_inventory

SHEET = """\
STT;Mã xã;Tên xã;Nhà mạng;Mã mạch;IP đường truyền;IP router;Băng thông (Mbps);Loại đường truyền;POP
1;24848;Xã Lạc Dương;VNPT;LDG-TSLCD-24848;10.68.10.1;10.68.10.1;100;TSLCD;POP Đà Lạt
2;24848;Xã Lạc Dương;Viettel;VTL-0091;10.68.138.1;;200;Internet;
3;;Xã Hiệp Thạnh;VNPT;LDG-TSLCD-24967;10.68.21.1;10.68.21.1;50;Truyền số liệu chuyên dùng;POP Đức Trọng
4;99999;Xã Không Có;VNPT;X-1;10.68.99.1;;50;TSLCD;
5;24781;Phường Xuân Hương;VNPT;X-2;10.68.300.1;;50;TSLCD;
6;24781;Phường Xuân Hương;VNPT;X-3;10.68.10.1;;50;TSLCD;
7;;Xã Tân;VNPT;X-4;10.68.40.1;;50;TSLCD;
8;24781;Phường Xuân Hương;VNPT;X-5;10.68.11.1;;nhanh;TSLCD;
9;28696;Xã Tân Phú Đông;VNPT;X-6;10.68.50.1;;50;TSLCD;

10;24781;Phường Xuân Hương;VNPT;LDG-TSLCD-24781;10.68.11.1;;200;TSLCD;POP Đà Lạt
"""


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    path = tmp_path / "duong-truyen.csv"
    path.write_text("\ufeff" + SHEET, encoding="utf-8")  # Excel writes a BOM
    return path


def test_import_writes_a_config_that_loads(
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lam-dong.yaml"
    code = main(["import", str(sheet), "--province", "68", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1  # some rows were skipped: the exit code says so
    assert captured.err.splitlines() == [
        f"{sheet}: row 5: no commune has the official code 99999",
        f"{sheet}: row 6: '10.68.300.1' is not an IP address",
        f"{sheet}: row 7: IP 10.68.10.1 is already used by row 2",
        f"{sheet}: row 8: 'Xã Tân' is ambiguous or inexact; add the official code "
        "(candidates: 24976 Xã Tân Hội (Lâm Đồng), 23246 Xã Tân Hải (Lâm Đồng), "
        "23134 Xã Tân Lập (Lâm Đồng))",
        f"{sheet}: row 9: bandwidth 'nhanh' is not a number of Mbps",
        f"{sheet}: row 10: Xã Tân Phú Đông (28696) is in Đồng Tháp, not province 68",
    ]
    assert "3 communes, 4 links; 6 rows skipped" in captured.out
    inventory = load_inventory(out, environ={"NETWATCH_SNMP_COMMUNITY": "x"})
    lac_duong = inventory.commune("24848")
    assert lac_duong is not None
    assert [(link.isp, link.path, str(link.address)) for link in lac_duong.links] == [
        ("vnpt", "tslcd", "10.68.10.1"),
        ("viettel", "internet", "10.68.138.1"),
    ]
    assert lac_duong.router is not None
    hiep_thanh = inventory.commune("24967")  # found by name alone, diacritics and all
    assert hiep_thanh is not None
    assert hiep_thanh.links[0].upstream == "pop-duc-trong"
    assert hiep_thanh.links[0].path == "tslcd"
    assert inventory.isps["vnpt"].name == "VNPT"
    assert inventory.upstreams["pop-da-lat"].name == "POP Đà Lạt"
    assert "ISP vnpt has no contacts: its tickets reach provincial IT only" in inventory.warnings()


def test_import_refuses_a_sheet_without_the_needed_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,phone\nA,1\n", encoding="utf-8")
    assert main(["import", str(path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"netwatch import: {path}: row 1 (header) has no column for: code (or commune name), "
        "isp, circuit, address; columns found: name, phone"
    )


def test_import_does_not_overwrite(sheet: Path, tmp_path: Path) -> None:
    out = tmp_path / "exists.yaml"
    out.write_text("keep me", encoding="utf-8")
    assert main(["import", str(sheet), "-o", str(out)]) == 1
    assert out.read_text(encoding="utf-8") == "keep me"
