"""`netwatch lab ...`: build, inspect, break, repair and remove the lab network."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import MailSetup
from .lab import (
    DEFAULT_COMMUNES,
    NOT_PRIVILEGED,
    FaultResult,
    Lab,
    LabPaths,
)
from .netns import LabError, capabilities_ok
from .topology import MAX_COMMUNES, MAX_INDEX, LabPlan

FAULT_HELP = """\
faults (each undone by the matching restore):
  CODE down [--link ID]        WAN link(s) of commune CODE down
  CODE loss PCT [--link ID]    drop PCT % of packets arriving on the link(s)
  CODE congest [--link ID]     shape at the contracted rate and saturate with load
  CODE reboot [--downtime S]   router reboot: links gone S seconds, counters and uptime reset
  CODE restore                 undo every fault of commune CODE
  power-loss CODE              the commune centre loses power: links dark, router, agent box
                               and devices down and frozen (SIGSTOP); CODE restore undoes it
  portal-slow SECONDS --commune CODE [--link ID]
                               the portal answers only that commune's agent path(s) late
  portal slow SECONDS | portal down | portal error | portal restore
  upstream NODE down | upstream NODE restore
  monitor cut | monitor restore
                               NetWatch's own line: the monitor side cut off from the lab
  restore                      undo every fault in the lab
examples: netwatch lab fault 24848 loss 20; netwatch lab fault upstream pop-vnpt-1 down
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `lab` subcommand (up, down, status, fault, restore) to the netwatch CLI."""
    lab = subparsers.add_parser(
        "lab",
        help="build and break the lab network (needs root)",
        description="The NetWatch lab: commune routers, upstream nodes and a portal in network "
        "namespaces on this machine, with real faults.",
    )
    actions = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index", type=int, default=0, help=f"lab number 0..{MAX_INDEX}: prefix 10.(88+K).0.0/16"
    )
    common.add_argument("--state-dir", type=Path, help="state dir (default: data/lab{index})")

    up = actions.add_parser("up", parents=[common], help="build the lab (replacing any old one)")
    up.add_argument("--communes", type=int, default=DEFAULT_COMMUNES, help="number of communes")
    up.add_argument(
        "--smtp",
        metavar="ADDRESS:PORT",
        help="mail the lab's contacts through this SMTP server (the demo's catcher: "
        "`netwatch mailbox serve`); default: the inventory has no notifications",
    )
    up.add_argument(
        "--public-url",
        default="http://127.0.0.1:8080",
        help="with --smtp: the NetWatch the signed ticket links open (default: %(default)s)",
    )
    up.set_defaults(handler=_guarded(_up))

    down = actions.add_parser("down", parents=[common], help="remove everything of the lab")
    down.set_defaults(handler=_guarded(_down))

    status = actions.add_parser("status", parents=[common], help="what is built, running, broken")
    status.set_defaults(handler=_guarded(_status))

    restore = actions.add_parser("restore", parents=[common], help="undo every fault")
    restore.set_defaults(handler=_guarded(_restore))

    fault = actions.add_parser(
        "fault",
        parents=[common],
        help="inject or undo a fault",
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fault.add_argument("words", nargs="+", metavar="WORD", help="see the list below")
    fault.add_argument("--link", help="link id (e.g. vnpt-tslcd); default: every link")
    fault.add_argument("--downtime", type=float, default=5.0, help="reboot downtime, seconds")
    fault.add_argument("--commune", type=int, help="portal-slow: only this commune's agent paths")
    fault.set_defaults(handler=_guarded(_fault))


Handler = Callable[[argparse.Namespace], int]


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if not capabilities_ok():
            print(NOT_PRIVILEGED, file=sys.stderr)
            return 2
        try:
            return handler(args)
        except LabError as exc:
            print(f"netwatch lab: {exc}", file=sys.stderr)
            return 1

    return run


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.index, args.state_dir)


def _up(args: argparse.Namespace) -> int:
    if not 1 <= args.communes <= MAX_COMMUNES:
        print(f"netwatch lab: --communes must be 1..{MAX_COMMUNES}", file=sys.stderr)
        return 2
    mail = None
    if args.smtp is not None:
        host, _, port = args.smtp.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            print(f"netwatch lab: --smtp wants ADDRESS:PORT, got {args.smtp!r}", file=sys.stderr)
            return 2
        mail = MailSetup(host.strip("[]"), int(port), args.public_url.rstrip("/"))
    result = _lab(args).up(communes=args.communes, mail=mail)
    print(f"Lab {result.plan.index} đã sẵn sàng (is up) in {result.elapsed_s:.1f} s")
    print(describe(result.plan, result.paths))
    return 0


def _down(args: argparse.Namespace) -> int:
    result = _lab(args).down()
    print(
        f"Lab {args.index} removed in {result.elapsed_s:.1f} s: "
        f"{result.removed_namespaces} namespaces, {result.killed_processes} processes"
    )
    if not result.leftovers.clean:
        print(f"netwatch lab: still present: {result.leftovers}", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = _lab(args)
    status = lab.status()
    if status.state is None:
        extra = (
            f" ({len(status.namespaces_present)} leftover namespaces)"
            if status.namespaces_present
            else ""
        )
        print(f"Lab {args.index} is not up{extra}.")
        return 1 if status.namespaces_present else 0
    plan = status.state.plan
    print(f"Lab {plan.index} is up since {status.state.created_at:%Y-%m-%d %H:%M:%S %Z}")
    print(describe(plan, lab.paths))
    dead = [p for p in status.processes if not p.alive]
    print(f"Processes: {len(status.processes) - len(dead)} running, {len(dead)} stopped")
    for process in dead:
        print(f"  stopped: {process.name} (pid {process.pid})")
    missing = set(plan.namespaces) - set(status.namespaces_present)
    if missing:
        print(f"  missing namespaces: {', '.join(sorted(missing))}")
    if status.state.faults:
        print("Sự cố đang giả lập (active faults):")
        for fault in status.state.faults:
            print(f"  {fault.describe()}")
    else:
        print("Không có sự cố (no active faults).")
    return 0 if not dead and not missing else 1


def _restore(args: argparse.Namespace) -> int:
    return _report(_lab(args).restore())


def _fault(args: argparse.Namespace) -> int:
    lab = _lab(args)
    words: list[str] = args.words
    usage = "netwatch lab fault: unknown fault " + " ".join(words) + "\n" + FAULT_HELP
    if words == ["restore"]:
        return _report(lab.restore())
    if words[0] == "power-loss" and len(words) == 2 and words[1].isdigit():
        return _report(lab.commune_power_loss(int(words[1])))
    if words[0] == "portal-slow" and len(words) == 2 and _is_number(words[1]):
        if args.commune is None:
            return _report(lab.portal_slow(float(words[1])))
        return _report(lab.commune_portal_slow(args.commune, float(words[1]), args.link))
    if words[0] == "portal" and len(words) >= 2:
        return _portal_fault(lab, words[1:], usage)
    if words in (["monitor", "cut"], ["monitor", "restore"]):
        return _report(lab.monitor_cut() if words[1] == "cut" else lab.monitor_restore())
    if words[0] == "upstream" and len(words) == 3 and words[2] in ("down", "restore"):
        if words[2] == "down":
            return _report(lab.upstream_down(words[1]))
        return _report(lab.upstream_restore(words[1]))
    if words[0].isdigit() and len(words) >= 2:
        return _commune_fault(lab, int(words[0]), words[1:], args, usage)
    print(usage, file=sys.stderr)
    return 2


def _portal_fault(lab: Lab, words: Sequence[str], usage: str) -> int:
    match list(words):
        case ["slow", seconds] if _is_number(seconds):
            return _report(lab.portal_slow(float(seconds)))
        case ["down"]:
            return _report(lab.portal_down())
        case ["error"]:
            return _report(lab.portal_error())
        case ["restore"]:
            return _report(lab.portal_restore())
    print(usage, file=sys.stderr)
    return 2


def _commune_fault(
    lab: Lab, code: int, words: Sequence[str], args: argparse.Namespace, usage: str
) -> int:
    match list(words):
        case ["down"]:
            return _report(lab.commune_down(code, args.link))
        case ["loss", pct] if _is_number(pct):
            return _report(lab.commune_loss(code, float(pct), args.link))
        case ["congest"]:
            return _report(lab.commune_congest(code, args.link))
        case ["reboot"]:
            return _report(lab.commune_reboot(code, args.downtime))
        case ["restore"]:
            return _report(lab.commune_restore(code))
    print(usage, file=sys.stderr)
    return 2


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _report(result: FaultResult) -> int:
    if result.ok:
        print(f"OK: {result.action}")
        return 0
    assert result.problem is not None
    print(
        f"netwatch lab: {result.action}: {result.problem.value} ({result.detail})", file=sys.stderr
    )
    return 1


def describe(plan: LabPlan, paths: LabPaths) -> str:
    """What the lab is, in plain text for people (Vietnamese names, addresses, files)."""
    lines = [f"Mạng lab {plan.index}: {plan.prefix}, {len(plan.communes)} xã/phường (communes)"]
    lines.append(f"  NetWatch side (root): {plan.root_ifname} {plan.root_address}")
    lines.append(f"  Core router (reference target): {plan.core_address}")
    lines.append("Upstream nodes:")
    for upstream in plan.upstreams:
        lines.append(f"  {upstream.id:<14} {upstream.address:<13} {upstream.name}")
    lines.append("Xã/phường (communes):")
    for commune in plan.communes:
        lines.append(
            f"  {commune.code:05d} {commune.name} ({commune.province_name}); "
            f"router {commune.address}, SNMP {commune.snmp_credential}"
        )
        for link in commune.links:
            lines.append(
                f"        {link.router_ifname} {link.id:<17} {link.router_address:<13} "
                f"via {link.upstream}, {link.bandwidth_mbps} Mbit/s"
            )
        box = commune.box
        if box is not None:
            sources = ", ".join(f"{p.link} {p.source}" for p in box.paths)
            devices = ", ".join(d.address for d in box.devices)
            lines.append(
                f"        agent box {box.namespace}: {sources}; LAN gateway {box.lan_gateway}, "
                f"centre {box.centre_address}; devices {devices}"
            )
    portal = plan.portal
    lines.append(f"Cổng DVCQG (portal): {portal.url} = {portal.address}")
    lines.append(f"  DNS: {portal.dns_address} (zone {portal.dns_zone})")
    lines.append(f"  CA: {paths.ca_file.resolve()}")
    lines.append(f"Config: {paths.config_file.resolve()}")
    lines.append(f"Secrets: {paths.env_file.resolve()}  (set -a; . {paths.env_file}; set +a)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `lab ...` on its own (before the main CLI wires it in): python -m netwatch.lab.cli."""
    parser = argparse.ArgumentParser(prog="netwatch")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
