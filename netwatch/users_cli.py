"""`netwatch user`: people's accounts for the provincial IT view (create, passwd, list, disable).

Passwords are read from a terminal prompt (asked twice) or, when stdin is not a terminal, from
its first line (scripts, `make demo`); never from the command line, where `ps` and the shell's
history would keep them. The store keeps only an argon2id hash (netwatch.store.users).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from pathlib import Path

from netwatch.cli import _restriction, add_store_arguments, province_code

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _read_password() -> str | None:
    """The new password: prompted twice on a terminal, else stdin's first line."""
    if sys.stdin.isatty():
        first = getpass.getpass("Mật khẩu mới / new password: ")
        if getpass.getpass("Nhập lại / again: ") != first:
            print("netwatch user: the two passwords differ", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _restriction_problem(args: argparse.Namespace) -> str | None:
    provinces, isp = args.province or [], args.isp
    if args.role == "national" and (provinces or isp):
        return "a national account sees everything: no --province or --isp"
    if args.role == "province" and (not provinces or isp):
        return "a province account needs --province (one or several) and no --isp"
    if args.role == "isp" and (not isp or provinces):
        return "an isp account needs --isp (one ISP id) and no --province"
    return None


async def _run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    from netwatch.store import RevokeOutcome, open_store
    from netwatch.store.users import password_problem

    if args.verb in ("create", "passwd") and not _NAME.match(args.name):
        print(f"netwatch user: {args.name!r} is not a user name", file=sys.stderr)
        return 2
    if args.verb == "create" and (problem := _restriction_problem(args)) is not None:
        print(f"netwatch user: {problem}", file=sys.stderr)
        return 2
    password = ""
    if args.verb in ("create", "passwd"):
        read = _read_password()
        if read is None:
            return 1
        if (problem := password_problem(read)) is not None:
            print(f"netwatch user: {problem}", file=sys.stderr)
            return 1
        password = read
    store = await open_store(args.database_url or None, data_dir=Path(args.data_dir))
    try:
        now = datetime.now(UTC)
        if args.verb == "create":
            try:
                user = await store.create_user(
                    args.name,
                    args.role,
                    password,
                    now,
                    provinces=args.province or None,
                    isp=args.isp,
                )
            except IntegrityError:
                print(f"netwatch user: {args.name!r} already exists", file=sys.stderr)
                return 1
            print(f"user {user.name} (role={user.role}{_restriction(user)}) created")
            return 0
        if args.verb == "passwd":
            if not await store.set_password(args.name, password, now):
                print(f"netwatch user: no user {args.name!r}", file=sys.stderr)
                return 1
            print(f"password of {args.name} set")
            return 0
        if args.verb == "list":
            for user in await store.list_users():
                state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
                print(
                    f"{user.name}  role={user.role}{_restriction(user)}  "
                    f"created={user.created_at:%Y-%m-%d}  {state}"
                )
            return 0
        outcome = await store.disable_user(args.name, now)
        if outcome is RevokeOutcome.NOT_FOUND:
            print(f"netwatch user: no user {args.name!r}", file=sys.stderr)
            return 1
        done = "disabled" if outcome is RevokeOutcome.DONE else "was disabled"
        print(f"user {args.name} {done}; their sessions end now")
        return 0
    finally:
        await store.close()


def _user(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `netwatch user` to the command line."""
    user = sub.add_parser("user", help="people's accounts for /admin (passwords stored hashed)")
    user.set_defaults(handler=_user)
    commands = user.add_subparsers(dest="verb", required=True, metavar="ACTION")
    create = commands.add_parser("create", help="make an account (password from a prompt or stdin)")
    create.add_argument("name", help="the name the person logs in with; ticket logs show it")
    create.add_argument("--role", required=True, choices=["national", "province", "isp"])
    create.add_argument(
        "--province", action="append", type=province_code, help="for --role province (repeat)"
    )
    create.add_argument("--isp", help="for --role isp: the ISP's id in the configuration")
    passwd = commands.add_parser("passwd", help="set a password (from a prompt or stdin)")
    passwd.add_argument("name")
    commands.add_parser("list", help="list accounts (never the passwords)")
    disable = commands.add_parser("disable", help="refuse an account's logins and sessions")
    disable.add_argument("name")
    for command in commands.choices.values():
        add_store_arguments(command)
