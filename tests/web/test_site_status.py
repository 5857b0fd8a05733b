"""A commune whose agent and lines went dark (issue 11) on its public page: the site's ticket is
listed, told to provincial IT and the commune, and no ISP is said to be told."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from netwatch.agent.model import AgentHeartbeat
from netwatch.inventory import Inventory
from netwatch.inventory.models import CommuneAgent, Contact
from tests.web.test_status_pages import TAN_PHU_DONG, Status, serving
from tests.web.test_status_pages import inventory as inventory  # the fixture


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def with_agent(inventory: Inventory) -> Inventory:
    communes = tuple(
        c.model_copy(
            update={
                "agent": CommuneAgent.model_validate(
                    {
                        "lan_gateway": "192.168.1.1",
                        "paths": [
                            {
                                "link": "vnpt-tslcd",
                                "source": "192.168.1.10",
                                "target": "10.91.77.2",
                            },
                            {
                                "link": "viettel-inet",
                                "source": "192.168.1.11",
                                "target": "10.91.77.6",
                            },
                        ],
                    }
                ),
                "contacts": (Contact(level=1, name="UBND xã", email="ubnd@xa.example.test"),),
            }
        )
        if c.code == TAN_PHU_DONG
        else c
        for c in inventory.communes
    )
    return inventory.model_copy(update={"communes": communes})


def beat(status: Status) -> None:
    now = datetime.now(UTC)
    hb = AgentHeartbeat(TAN_PHU_DONG, f"{TAN_PHU_DONG}-agent", "t", now, "r", 1, 0, 0, None, 0, 1)

    def feed() -> None:
        for sink in status.runtime.inside_sinks:
            sink.heartbeat(hb, now)

    status.on_loop(feed)


def test_a_dark_site_is_its_own_ticket_on_the_communes_page(
    tmp_path: Path, inventory: Inventory
) -> None:
    with serving(tmp_path, with_agent(inventory)) as status:
        path = f"/status/xa/{TAN_PHU_DONG}"
        for link in ("vnpt-tslcd", "viettel-inet"):
            status.rounds(f"{TAN_PHU_DONG}/{link}", 3, received=10, rtt_s=0.006)
        beat(status)  # the agent heard, then everything goes dark
        for link in ("vnpt-tslcd", "viettel-inet"):
            status.rounds(f"{TAN_PHU_DONG}/{link}", 3, received=0, rtt_s=None)
        page = status.wait_for(path, lambda t: "Phiếu NW-" in t)
        text = _text(page)
        assert "Mất liên lạc với cả trung tâm xã (mất điện hoặc mạng nội bộ)" in text
        assert "CNTT tỉnh và cán bộ phụ trách của xã được thông báo" in text
        assert "Nhà mạng được thông báo" not in text
        assert "Nhà mạng đã được thông báo" not in text
        assert "lỗi đường truyền phía nhà mạng" not in text
        assert (
            "Đường truyền VNPT Đồng Tháp (Truyền số liệu chuyên dùng) mất kết nối và thiết bị đo "
            "đặt tại xã cũng không gửi tin: cả trung tâm xã mất liên lạc — nhiều khả năng do mất "
            "điện hoặc sự cố mạng nội bộ tại xã, chưa có dấu hiệu lỗi của nhà mạng. CNTT tỉnh và "
            "cán bộ phụ trách của xã đã được thông báo." in text
        )
        assert "Sự cố đường truyền" not in text  # no link fault ticket for either line
