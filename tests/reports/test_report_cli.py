"""`netwatch report pdf|xlsx|csv|mail` on a SQLite store holding tests/reports/scenario.py's
November: the files written, the mail enqueued once."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from netwatch.cli import main
from netwatch.store import Store, open_store
from tests.reports.scenario import CONFIG, ENV, write_month

IT = "truc.cntt@lamdong.gov.vn"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A config (with SMTP and one provincial IT address) and a data folder with November."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "netwatch.yaml"
    anchor = "  link_secret: {env: NETWATCH_LINK_SECRET}\n"
    smtp = "  smtp: {host: 127.0.0.1, port: 18652, from_address: netwatch@lamdong.gov.vn}\n"
    contacts = f"provincial_it:\n  contacts:\n    - {{level: 1, name: Trực CNTT, email: {IT}}}\n"
    config.write_text(CONFIG.replace(anchor, anchor + smtp) + contacts, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()

    async def write() -> None:
        store = await open_store(None, data_dir=data)
        try:
            await write_month(store)
        finally:
            await store.close()

    asyncio.run(write())
    return config, data


def _run(setup: tuple[Path, Path], *args: str) -> int:
    config, data = setup
    return main(["report", *args, "--config", str(config), "--data-dir", str(data)])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")
def test_report_pdf(setup: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "vnpt.pdf"
    assert _run(setup, "pdf", "--month", "2026-11", "--isp", "vnpt", "--out", str(out)) == 0
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 2  # summaries, VNPT's circuits


def test_report_xlsx_and_csv(setup: tuple[Path, Path], tmp_path: Path) -> None:
    xlsx, csv = tmp_path / "r.xlsx", tmp_path / "r.csv"
    assert _run(setup, "xlsx", "--month", "2026-11", "--province", "68", "--out", str(xlsx)) == 0
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    circuits = [row[7] for row in book["Mạch"].iter_rows(min_row=2, values_only=True)]
    assert circuits == ["LDG-TSLCD-0001", "VTL-INET-0042"]
    assert _run(setup, "csv", "--month", "2026-11", "--lang", "en", "--out", str(csv)) == 0
    assert csv.read_text(encoding="utf-8-sig").startswith("Scope,Province code")


def test_report_refusals(setup: tuple[Path, Path], tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    assert _run(setup, "csv", "--month", "2026-13", "--out", out) == 2
    assert _run(setup, "csv", "--month", "2026-11", "--isp", "fpt", "--out", out) == 1


def test_report_mail_enqueues_once(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(setup, "mail", "--month", "2026-10") == 0
    assert "1 mail(s) enqueued" in capsys.readouterr().out
    assert _run(setup, "mail", "--month", "2026-10") == 0
    assert "0 mail(s) enqueued, 1 already there" in capsys.readouterr().out

    async def items() -> list[str]:
        store: Store = await open_store(None, data_dir=setup[1])
        try:
            return [i.dedup_key for i in await store.outbox_items()]
        finally:
            await store.close()

    assert asyncio.run(items()) == [f"report/2026-10/email/{IT}"]
