"""Notifications: ticket notices rendered and delivered through a persisted outbox.

`messages` renders (e-mail, webhook JSON, chat text, ZNS template data), `channels` sends (SMTP,
signed webhook, Telegram) and `zalo` (Zalo ZNS) and return typed outcomes, `outbox` claims due
items and retries with backoff.
"""
