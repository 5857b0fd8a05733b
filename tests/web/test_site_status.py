"""A commune whose agent and lines went dark (issue 11) on its public page: the site's ticket is
listed, told to provincial IT and the commune, and no ISP is said to be told."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from alerts.subject import SubjectKey, link_id
from alerts.tickets import Ticket
from netwatch.agent.model import AgentHeartbeat, InsideRound, PathPing, Ping
from netwatch.inventory import Inventory
from netwatch.inventory.models import CommuneAgent, Contact
from netwatch.signing import LinkSigner
from tests.waiting import wait_until
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


def inside_round(seq: int, *, vnpt_up: bool) -> InsideRound:
    def ping(target: str, up: bool) -> Ping:
        return Ping(target, 3, 3 if up else 0, 0.004 if up else None, None, None)

    return InsideRound(
        commune=TAN_PHU_DONG,
        agent=f"{TAN_PHU_DONG}-agent",
        seq=seq,
        at=datetime.now(UTC),
        config_revision="r",
        gateway=ping("192.168.1.1", True),
        paths=(
            PathPing("vnpt-tslcd", ping("10.91.77.2", vnpt_up)),
            PathPing("viettel-inet", ping("10.91.77.6", True)),
        ),
        portals=(),
        devices=(),
    )


def test_the_isps_ticket_page_shows_what_the_agent_saw_from_inside(
    tmp_path: Path, inventory: Inventory
) -> None:
    with serving(tmp_path, with_agent(inventory)) as status:
        beat(status)
        status.rounds(f"{TAN_PHU_DONG}/viettel-inet", 3, received=10, rtt_s=0.006)
        status.rounds(f"{TAN_PHU_DONG}/vnpt-tslcd", 3, received=0, rtt_s=None)
        key = SubjectKey.link(link_id(TAN_PHU_DONG, "vnpt-tslcd"))
        runtime = status.runtime

        def ticket_with_inside() -> Ticket | None:
            def look() -> Ticket | None:
                for seq in (1, 2):  # the agent reports over the Viettel line, round by round
                    now = datetime.now(UTC)
                    round_ = inside_round(seq, vnpt_up=False)
                    for sink in runtime.inside_sinks:
                        sink.inside_round(round_, now)
                found = runtime.alerting.book.tickets.get(key)
                worst = found.evidence.worst if found is not None else None
                return found if worst is not None and worst.inside_paths else None

            found: Ticket | None = status.on_loop(look)
            return found

        ticket = wait_until(ticket_with_inside, 15, 0.2, "a ticket with the inside evidence")
        assert ticket.route.value == "isp"
        notifications = runtime.inventory.notifications
        assert notifications is not None
        link = LinkSigner.from_notifications(notifications).sign(ticket.id, datetime.now(UTC))
        url = f"/t/{ticket.id}?exp={link.exp}&sig={link.sig}"
        # The API's JSON carries the inside rounds too.
        data = status.get(url).json()
        assert data["evidence"]["inside_paths"][0]["answered"] is False
        reply = status.get(url, headers={"Accept": "text/html"})
        assert reply.status == 200, reply.text
        text = _text(reply.text)
        assert "Đo từ bên trong trung tâm xã (thiết bị đo tại xã)" in text
        assert "vnpt-tslcd Phản hồi không phản hồi" in text  # LAN answered, far end did not
