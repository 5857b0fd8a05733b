"""The browser harness itself: its checks pass good pages and catch bad ones."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page

from tests.browser.harness import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    SCREENSHOTS_DIR,
    HtmlMessage,
    assert_no_horizontal_scroll,
    check_accessibility,
    horizontal_overflow_px,
    page_weight_bytes,
    run_axe,
    save_screenshot,
)

GOOD = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Trang thử</title>
<style>body{font-family:sans-serif;color:#1a1a1a;background:#fff;margin:0;padding:1rem}</style>
</head><body><header><p>NetWatch</p></header><main><h1>Xã Tân Phú Đông</h1>
<p>Đường truyền bình thường.</p>
<form method="post" action="/x"><label for="n">Họ tên</label><input id="n" name="n">
<button>Gửi</button></form></main></body></html>"""

# Low contrast text, an image without alt text, a duplicate id, a form field without a label, a
# block wider than a phone, and a resource from outside the machine.
BAD = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Trang lỗi</title></head><body>
<main><h1>Lỗi</h1><p style="color:#bbb;background:#fff">chữ mờ</p>
<img src="/pixel.png"><p id="a"></p><p id="a"></p><input name="q">
<div style="width:900px">rộng</div><img alt="x" src="http://192.0.2.1/x.png"></main>
</body></html>"""

SCRIPTED = GOOD.replace("</body>", "<script>document.title = 'ran'</script></body>")

PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        pages = {"/good": GOOD.encode(), "/bad": BAD.encode(), "/script": SCRIPTED.encode()}
        if self.path == "/pixel.png":
            body, kind = PIXEL_PNG, "image/png"
        elif self.path in pages:
            body, kind = pages[self.path], "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A tiny site on a loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_debian_chromium_runs_with_the_harness_flags(page: Callable[..., Page], site: str) -> None:
    tab = page(DESKTOP)
    tab.goto(f"{site}/good")
    assert tab.locator("h1").inner_text() == "Xã Tân Phú Đông"
    version = tab.context.browser.version if tab.context.browser else ""
    assert version.split(".")[0].isdigit()
    assert CHROMIUM.exists()
    # Vietnam's time zone (ICU may call it Asia/Saigon): 00:00 UTC is 07:00 there.
    assert tab.evaluate("new Date(Date.UTC(2026, 0, 1)).getHours()") == 7


def test_a_good_page_passes_every_check(
    page: Callable[..., Page], site: str, check_html: Callable[[str], list[HtmlMessage]]
) -> None:
    tab = page(PHONE)
    response = tab.goto(f"{site}/good")
    assert response is not None
    check_html(response.text())
    check_accessibility(tab, min_impact="minor")
    assert_no_horizontal_scroll(tab)
    assert 0 < page_weight_bytes(tab) < 2000
    path = save_screenshot(tab, "harness good page")
    assert path == SCREENSHOTS_DIR / "harness-good-page.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bad_page_fails_each_check_naming_the_fault(
    browser: object, site: str, check_html: Callable[[str], list[HtmlMessage]]
) -> None:
    from playwright.sync_api import Browser

    from tests.browser import harness

    assert isinstance(browser, Browser)
    context, guard = harness.new_context(browser, PHONE)
    try:
        tab = context.new_page()
        response = tab.goto(f"{site}/bad")
        assert response is not None
        tab.wait_for_load_state("load")
        # The guard refused the image from outside the machine and recorded it.
        assert guard.external == ["http://192.0.2.1/x.png"]

        with pytest.raises(AssertionError, match="Duplicate ID") as invalid:
            check_html(response.text())
        assert "img" in str(invalid.value)  # missing alt is a validation error too

        rules = {v.rule for v in run_axe(tab)}
        assert {"color-contrast", "image-alt", "label"} <= rules
        with pytest.raises(AssertionError, match="color-contrast") as inaccessible:
            check_accessibility(tab)
        assert "image-alt" in str(inaccessible.value)

        assert horizontal_overflow_px(tab) > 500
        with pytest.raises(AssertionError, match="scrolls sideways"):
            assert_no_horizontal_scroll(tab)
    finally:
        context.close()


def test_javascript_can_be_switched_off(page: Callable[..., Page], site: str) -> None:
    quiet = page(PHONE, javascript=False)
    quiet.goto(f"{site}/script")
    assert quiet.title() == "Trang thử"
    scripted = page(PHONE)
    scripted.goto(f"{site}/script")
    assert scripted.title() == "ran"
