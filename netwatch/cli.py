"""The `netwatch` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class _AnySecret(dict[str, str]):
    """An environment in which every secret is set: lets check-config run without them."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "unset-for-check"


def _check_config(args: argparse.Namespace) -> int:
    # Imported here: pydantic and the inventory are not for every command (`netwatch run`'s
    # supervisor never loads them; tests/test_imports.py).
    from netwatch.inventory import ConfigError, Divisions, load_inventory

    environ: dict[str, str] = dict(os.environ)
    if args.ignore_missing_secrets:
        environ = _AnySecret(os.environ)
    divisions = Divisions()
    try:
        inventory = load_inventory(args.path, environ=environ, divisions=divisions)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    counts = inventory.summary()
    provinces = divisions.provinces
    names = sorted({provinces[c.province_code] for c in inventory.communes})
    print(f"{args.path}: OK")
    print(f"  provinces  {counts['provinces']:>6}  {', '.join(names)}")
    for key, label in (
        ("communes", "communes"),
        ("links", "links"),
        ("routers", "routers"),
        ("devices", "devices"),
        ("upstreams", "upstreams"),
        ("portals", "portals"),
        ("isps", "ISPs"),
        ("maintenance_windows", "maintenance"),
    ):
        print(f"  {label:<10} {counts[key]:>6}")
    for isp_id, isp in inventory.isps.items():
        links = sum(1 for c in inventory.communes for link in c.links if link.isp == isp_id)
        print(f"    {isp_id:<12} {isp.name}: {links} links, {len(isp.contacts)} contact levels")
    warnings = inventory.warnings()
    if not inventory.communes:  # valid with portals or upstreams (load_inventory refuses none)
        warnings.insert(0, "no communes: only portals and upstream nodes are watched")
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from netwatch.inventory.importer import import_csv

    try:
        result = import_csv(Path(args.csv), province=args.province)
    except (OSError, ValueError) as exc:
        print(f"netwatch import: {exc}", file=sys.stderr)
        return 1
    for problem in result.problems:
        print(f"{args.csv}: {problem}", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(result.yaml_text)
    else:
        out = Path(args.output)
        if out.exists() and not args.force:
            print(f"netwatch import: {out} exists; use --force to overwrite", file=sys.stderr)
            return 1
        out.write_text(result.yaml_text, encoding="utf-8")
        print(
            f"wrote {out}: {result.communes} communes, {result.links} links; "
            f"{len(result.problems)} rows skipped",
        )
    return 1 if result.problems else 0


async def _token_command(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from netwatch.store import RevokeOutcome, open_store

    store = await open_store(args.database_url or None, data_dir=Path(args.data_dir))
    try:
        now = datetime.now(UTC)
        if args.verb == "create":
            issued = await store.create_token(
                args.name,
                args.scope or ["write"],
                now,
                provinces=args.province or None,
                isp=args.isp,
            )
            print(issued.token)
            print(
                f"token {issued.info.id} ({issued.info.name}, scopes: "
                f"{', '.join(issued.info.scopes)}{_restriction(issued.info)}) created; "
                "the token above is shown only once",
                file=sys.stderr,
            )
            return 0
        if args.verb == "list":
            for token in await store.list_tokens():
                status = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                print(
                    f"{token.id}  {token.name}  scopes={','.join(token.scopes)}"
                    f"{_restriction(token)}  created={token.created_at:%Y-%m-%d}  {status}"
                )
            return 0
        outcome = await store.revoke_token(args.id, now)
        if outcome is RevokeOutcome.NOT_FOUND:
            print(f"netwatch token: no token with id {args.id}", file=sys.stderr)
            return 1
        print(f"token {args.id} {'revoked' if outcome is RevokeOutcome.DONE else 'was revoked'}")
        return 0
    finally:
        await store.close()


class _Restricted(Protocol):
    @property
    def provinces(self) -> tuple[int, ...] | None: ...
    @property
    def isp(self) -> str | None: ...


def _restriction(item: _Restricted) -> str:
    """How a token's or account's restriction is listed ("" when it sees everything)."""
    out = ""
    if item.provinces:
        out += f"  provinces={','.join(f'{p:02d}' for p in item.provinces)}"
    if item.isp:
        out += f"  isp={item.isp}"
    return out


def province_code(text: str) -> int:
    """A province's official code (1-99), for --province."""
    try:
        code = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a province code (e.g. 68)") from None
    if not 1 <= code <= 99:
        raise argparse.ArgumentTypeError(f"{text!r} is not a province code (1-99)")
    return code


def _token(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_token_command(args))


def _register_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="API tokens for the API (stored hashed)")
    token.set_defaults(handler=_token)
    commands = token.add_subparsers(dest="verb", required=True, metavar="ACTION")
    create = commands.add_parser("create", help="make a token and print it once")
    create.add_argument("name", help="who uses it; ticket logs name the token by this")
    create.add_argument(
        "--scope",
        action="append",
        choices=["read", "write"],
        help="read, write (reads too); repeat for several (default: write)",
    )
    only = create.add_mutually_exclusive_group()
    only.add_argument(
        "--province",
        action="append",
        type=province_code,
        help="sees and acts on only this province's communes (repeat for several)",
    )
    only.add_argument("--isp", help="sees and acts on only this ISP's links and tickets")
    commands.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = commands.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("id", help="the token id shown by `netwatch token list`")
    for command in commands.choices.values():
        add_store_arguments(command)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --database-url: where a command finds NetWatch's store."""
    parser.add_argument(
        "--data-dir",
        default="data",
        help="where the embedded SQLite database lives (default: ./data)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NETWATCH_DATABASE_URL"),
        help="PostgreSQL URL instead of SQLite (default: $NETWATCH_DATABASE_URL)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand, or with `only="run"` just `netwatch run`."""
    parser = argparse.ArgumentParser(
        prog="netwatch",
        description="Network health monitor for commune Public Administration Service Centers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if only == "run":
        from netwatch.runner import register as register_run

        register_run(sub)
        return parser
    from netwatch.agent.command import register as register_agent

    register_agent(sub)  # the commune box's process: light, registered alone for `agent`
    if only == "agent":
        return parser

    check = sub.add_parser("check-config", help="validate a config file or folder and summarise it")
    check.add_argument("path", type=Path)
    check.add_argument(
        "--ignore-missing-secrets",
        action="store_true",
        help="do not require the environment variables that hold secrets",
    )
    check.set_defaults(handler=_check_config)

    imp = sub.add_parser(
        "import", help="turn a CSV spreadsheet of communes and circuits into a config"
    )
    imp.add_argument("csv", type=Path)
    imp.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    imp.add_argument("--province", type=int, help="official province code the rows belong to")
    imp.add_argument("--force", action="store_true", help="overwrite the output file")
    imp.set_defaults(handler=_import)

    try:
        from netwatch.lab.cli import register as register_lab
    except ImportError:  # pragma: no cover - the lab package ships with NetWatch
        pass
    else:
        register_lab(sub)

    from netwatch.mailbox import register as register_mailbox
    from netwatch.probe_cli import register as register_probe
    from netwatch.report_cli import register as register_report
    from netwatch.runner import register as register_run

    register_run(sub)
    register_probe(sub)
    _register_token(sub)
    register_mailbox(sub)
    register_report(sub)
    from netwatch.users_cli import register as register_users

    register_users(sub)
    from netwatch.agent_key_cli import register as register_agent_key

    register_agent_key(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, parsed.

    `netwatch run` (every long-lived process: the supervisor and its children) gets a parser of
    `run` alone: registering the lab, mailbox and probe commands imports their modules, ~10 MB
    of RSS in each process and 38 MB in the supervisor (issue 10; tests/test_imports.py).
    `netwatch agent` (the commune box, < 60 MB) likewise gets a parser of `agent` alone.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    only = args[0] if args[:1] in (["run"], ["agent"]) else None
    return build_parser(only).parse_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netwatch` console script."""
    try:
        args = parse_args(argv)
        code: int = args.handler(args)
        sys.stdout.flush()  # a reader gone early shows here, not in a traceback at exit
    except BrokenPipeError:
        # `netwatch check-config X | head`: the reader stopped reading. Stop quietly, as
        # coreutils do (they die of SIGPIPE, which the shell reports as 141); Python ignores
        # SIGPIPE, so it would print a traceback instead, and another one when it flushes
        # stdout at exit, unless stdout points elsewhere first. A broken pipe that is not
        # stdout's (a socket) is a real error and goes on.
        import select
        import signal

        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        if not any(events & select.POLLERR for _, events in poll.poll(0)):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
