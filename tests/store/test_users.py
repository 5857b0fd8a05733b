"""People's accounts (revision 0007) and restricted tokens, on both backends: only an argon2id
hash is kept, a wrong password or a disabled account is refused, a token keeps its provinces or
ISP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from netwatch.store import RevokeOutcome, Store
from netwatch.store.models import UserRow
from netwatch.store.users import LoginReason, password_problem

NOW = datetime(2026, 12, 6, tzinfo=UTC)
PASSWORD = "mật-khẩu-rất-dài-2026"


async def test_only_an_argon2id_hash_is_kept_and_checked(store: Store) -> None:
    made = await store.create_user("cntt-ld", "province", PASSWORD, NOW, provinces=[68, 1])
    assert (made.role, made.provinces, made.isp) == ("province", (1, 68), None)
    async with store.engine.connect() as conn:
        (stored,) = (await conn.execute(sa.select(UserRow.password_hash))).scalars()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    ok = await store.verify_password("cntt-ld", PASSWORD)
    assert ok.ok
    assert ok.user == made
    assert (await store.verify_password("cntt-ld", PASSWORD + "x")).reason is LoginReason.MISMATCH
    assert (await store.verify_password("nobody", PASSWORD)).reason is LoginReason.UNKNOWN
    with pytest.raises(IntegrityError):
        await store.create_user("cntt-ld", "national", PASSWORD, NOW)


async def test_a_new_password_replaces_the_old_and_disabling_refuses_the_account(
    store: Store,
) -> None:
    await store.create_user("kt-vnpt", "isp", PASSWORD, NOW, isp="vnpt")
    assert await store.set_password("kt-vnpt", "một-mật-khẩu-khác", NOW)
    assert not await store.set_password("nobody", "một-mật-khẩu-khác", NOW)
    assert (await store.verify_password("kt-vnpt", PASSWORD)).reason is LoginReason.MISMATCH
    assert (await store.verify_password("kt-vnpt", "một-mật-khẩu-khác")).ok
    assert await store.disable_user("kt-vnpt", NOW) is RevokeOutcome.DONE
    assert await store.disable_user("kt-vnpt", NOW) is RevokeOutcome.ALREADY
    disabled = await store.verify_password("kt-vnpt", "một-mật-khẩu-khác")
    assert disabled.reason is LoginReason.DISABLED
    assert not disabled.ok
    (listed,) = await store.list_users()
    assert (listed.name, listed.isp, listed.disabled_at) == ("kt-vnpt", "vnpt", NOW)


def test_a_password_needs_12_characters() -> None:
    assert password_problem("a" * 11) == "the password must have at least 12 characters"
    assert password_problem("a" * 12) is None


async def test_a_token_keeps_its_restriction(store: Store) -> None:
    isp = await store.create_token("vnpt-noc", ["read"], NOW, isp="vnpt")
    province = await store.create_token("cntt", ["read", "write"], NOW, provinces=[68, 1, 68])
    national = await store.create_token("ops", ["write"], NOW)
    checked = {t.id: t for t in await store.list_tokens()}
    assert (checked[isp.info.id].isp, checked[isp.info.id].provinces) == ("vnpt", None)
    assert checked[province.info.id].provinces == (1, 68)
    assert (checked[national.info.id].isp, checked[national.info.id].provinces) == (None, None)
    verified = await store.verify_token(province.token)
    assert verified.info is not None
    assert verified.info.provinces == (1, 68)
