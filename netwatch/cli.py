"""The `netwatch` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from netwatch.inventory import ConfigError, Divisions, load_inventory


class _AnySecret(dict[str, str]):
    """An environment in which every secret is set: lets check-config run without them."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "unset-for-check"


def _check_config(args: argparse.Namespace) -> int:
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
    for warning in inventory.warnings():
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="netwatch",
        description="Network health monitor for commune Public Administration Service Centers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    from netwatch.probe_cli import register as register_probe
    from netwatch.runner import register as register_run

    register_run(sub)
    register_probe(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netwatch` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
