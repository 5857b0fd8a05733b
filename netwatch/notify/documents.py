"""E-mail that carries files (the monthly report's XLSX, CSV and PDF), through the outbox.

A ticket notice is text only (`EmailContent`); a document mail adds attachments, kept in the
outbox payload as base64, so a failed send is retried from the store with the very same files
and a restart sends nothing twice (the outbox's dedup key). Its Message-ID comes from a key the
sender chooses (the month and the recipient), and its Date from when it was made, so a resend
after a lost confirmation is the same message in every header (mail clients show it once).

Size: the tests' three-circuit report makes a 135 kB PDF (fonts embedded), a 13 kB XLSX and a
3 kB CSV; base64 adds a third. The payload stays in its outbox row; mail servers commonly
accept 10-25 MB per message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from netwatch.notify.messages import local_time, sender_domain

DOCUMENT_EMAIL_FORMAT = "email-documents/v1"
_MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+")


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """A file attached to a mail."""

    filename: str
    content_type: str  # "application/pdf"
    data: bytes

    def to_payload(self) -> dict[str, object]:
        """JSON-able form: the bytes as base64."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_payload(cls, payload: object) -> MailAttachment | None:
        """Read back `to_payload`; None when it is not one."""
        if not isinstance(payload, Mapping):
            return None
        name, kind, data = payload.get("filename"), payload.get("content_type"), payload.get("data")
        if not (isinstance(name, str) and isinstance(kind, str) and isinstance(data, str)):
            return None
        if not _MIME.match(kind) or not name or "/" in name or "\\" in name:
            return None
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
        return cls(name, kind, raw)


@dataclass(frozen=True, slots=True)
class DocumentEmail:
    """A mail with files: subject, plain text, its identity key, when it was made."""

    subject: str
    text: str
    key: str  # the Message-ID's left part is derived from it (with the recipient)
    date: datetime
    attachments: tuple[MailAttachment, ...]

    def to_payload(self) -> dict[str, object]:
        """JSON-able form, as stored in the outbox."""
        return {
            "format": DOCUMENT_EMAIL_FORMAT,
            "subject": self.subject,
            "text": self.text,
            "key": self.key,
            "date": self.date.isoformat(),
            "attachments": [a.to_payload() for a in self.attachments],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> DocumentEmail | None:
        """Read back `to_payload`; None when the payload is not a mail of this format."""
        if payload.get("format") != DOCUMENT_EMAIL_FORMAT:
            return None
        subject, text, key = payload.get("subject"), payload.get("text"), payload.get("key")
        date, listed = payload.get("date"), payload.get("attachments")
        if not (isinstance(subject, str) and isinstance(text, str) and isinstance(key, str)):
            return None
        if not (isinstance(date, str) and isinstance(listed, list)):
            return None
        try:
            parsed = datetime.fromisoformat(date)
        except ValueError:
            return None
        if parsed.utcoffset() is None:
            return None
        attachments = [MailAttachment.from_payload(a) for a in listed]
        if any(a is None for a in attachments):
            return None
        return cls(subject, text, key, parsed, tuple(a for a in attachments if a is not None))


def document_message_id(key: str, recipient: str, domain: str) -> str:
    """<netwatch.KEY.HASH@domain>: the same for every send of one mail to one recipient."""
    digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:12]
    left = _UNSAFE.sub("-", key).strip("-.") or "x"
    return f"<netwatch.{left}.{digest}@{domain}>"


def build_document_email(
    content: DocumentEmail, from_address: str, to_address: str
) -> EmailMessage:
    """The MIME message: the text, then each file as an attachment."""
    domain = sender_domain(from_address)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_address
    msg["To"] = to_address
    msg["Subject"] = content.subject
    msg["Date"] = format_datetime(local_time(content.date))
    msg["Message-ID"] = document_message_id(content.key, to_address, domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["Content-Language"] = "vi, en"
    msg.set_content(content.text, charset="utf-8")
    for a in content.attachments:
        main, _, sub = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=main, subtype=sub, filename=a.filename)
    return msg
