"""The NetWatch lab: a real network of namespaces, routers with snmpd, a portal and faults."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import MailSetup
    from .faults import ActiveFault, FaultKind
    from .lab import (
        DEFAULT_COMMUNES,
        NOT_PRIVILEGED,
        DownResult,
        FaultProblem,
        FaultResult,
        Lab,
        LabPaths,
        LabState,
        LabStatus,
        Leftovers,
        UpResult,
        default_state_dir,
    )
    from .netns import LabError, capabilities_ok
    from .snmpd import SnmpSecrets
    from .topology import CommunePlan, LabPlan, LinkPlan, PortalPlan, UpstreamPlan, build_plan

__all__ = [
    "DEFAULT_COMMUNES",
    "NOT_PRIVILEGED",
    "ActiveFault",
    "CommunePlan",
    "DownResult",
    "FaultKind",
    "FaultProblem",
    "FaultResult",
    "Lab",
    "LabError",
    "LabPaths",
    "LabPlan",
    "LabState",
    "LabStatus",
    "Leftovers",
    "LinkPlan",
    "MailSetup",
    "PortalPlan",
    "SnmpSecrets",
    "UpResult",
    "UpstreamPlan",
    "build_plan",
    "capabilities_ok",
    "default_state_dir",
]

# Imported lazily: the lab's own subprocesses (portal, DNS, load) import submodules of this
# package and should not pay for everything else at start-up.
_HOMES = {
    "ActiveFault": "faults",
    "FaultKind": "faults",
    "LabError": "netns",
    "MailSetup": "config",
    "capabilities_ok": "netns",
    "SnmpSecrets": "snmpd",
    "CommunePlan": "topology",
    "LabPlan": "topology",
    "LinkPlan": "topology",
    "PortalPlan": "topology",
    "UpstreamPlan": "topology",
    "build_plan": "topology",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_HOMES.get(name, 'lab')}", __name__)
    return getattr(module, name)
