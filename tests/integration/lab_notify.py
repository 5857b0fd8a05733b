"""How NetWatch notifies in the lab tests: mail to the test's SMTP server on loopback, ticket
links under https://netwatch.test."""

from __future__ import annotations

from netwatch.inventory.models import Notifications, Smtp
from netwatch.inventory.secrets import Secret


def lab_notifications(smtp_port: int, *, webhook_secret: Secret | None = None) -> Notifications:
    """Plain SMTP (no STARTTLS) to 127.0.0.1:`smtp_port`; signed webhooks when given a secret."""
    return Notifications(
        public_url="https://netwatch.test",
        link_secret=Secret("link-secret-904417c8f257e6fc04f4ab3b1a1be8f0", "TEST_LINK"),
        smtp=Smtp(
            host="127.0.0.1",
            port=smtp_port,
            from_address="netwatch@lab.test",
            starttls=False,
        ),
        webhook_secret=webhook_secret,
    )
