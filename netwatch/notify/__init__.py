"""Notifications: ticket notices rendered and delivered through a persisted outbox.

`messages` renders (e-mail, webhook JSON, chat text), `channels` sends (SMTP, signed webhook,
Telegram) and returns typed outcomes, `outbox` claims due items and retries with backoff.
"""
