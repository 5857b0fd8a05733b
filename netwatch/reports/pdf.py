"""A page printed to PDF by headless Chromium (Debian's `chromium` package), as a browser would.

The report's PDF is its printable page: the same HTML and print stylesheet (A4 landscape,
headers repeated on every page), so the file and a page printed from the browser agree. The
HTML is written to a private temporary folder and printed from a `file://` URL with the flags
the browser tests use (no GPU, no network chatter, its own empty profile); the page loads
nothing else (its stylesheet is inline). Chromium runs under a timeout and is killed when it
runs over; a missing Chromium is `ChromiumMissingError` (the web answers 503 saying so), a failed
print `PdfError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DEFAULT_TIMEOUT_S = 60.0
# The browser tests' flags (tests/browser/harness.py), for a print: --no-sandbox because the
# service may run as root in a container, where Chromium's sandbox refuses to start.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-crash-reporter",
    "--no-pdf-header-footer",
)


class ChromiumMissingError(RuntimeError):
    """No Chromium on this machine."""


class PdfError(RuntimeError):
    """Chromium ran but gave no PDF (it failed, or ran over its time)."""


def find_chromium(explicit: str | None = None) -> Path | None:
    """The Chromium to print with: `explicit` (NETWATCH_CHROMIUM), else the first on PATH."""
    wanted = explicit if explicit is not None else os.environ.get("NETWATCH_CHROMIUM")
    if wanted:
        found = shutil.which(wanted)
        return Path(found) if found else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


async def print_pdf(
    html: str, *, chromium: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> bytes:
    """The PDF of a page; ChromiumMissingError without Chromium, PdfError when printing fails."""
    browser = chromium if chromium is not None else find_chromium()
    if browser is None or not browser.exists():
        raise ChromiumMissingError("chromium not found: install Debian's chromium package")
    with tempfile.TemporaryDirectory(prefix="netwatch-pdf-") as folder:
        root = Path(folder)
        page, out, profile = root / "report.html", root / "report.pdf", root / "profile"
        page.write_text(html, encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            str(browser),
            *CHROMIUM_ARGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={out}",
            page.as_uri(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout_s):
                _, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise PdfError(f"chromium took over {timeout_s:g} s") from None
        if process.returncode != 0 or not out.exists():
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise PdfError(f"chromium exited with {process.returncode}: {tail[0][:200]}")
        data = out.read_bytes()
    if not data.startswith(b"%PDF"):
        raise PdfError("chromium wrote something that is not a PDF")
    return data
