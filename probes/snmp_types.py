"""Value types of the SNMP poller: credentials, targets, failures and samples (no I/O here)."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

# Names as they appear in the inventory YAML (docs/configuration.md: snmp_credentials).
AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
# "aes192"/"aes256" are the Blumenthal key extension (draft-blumenthal-aes-usm, what net-snmp's
# AES-192/AES-256 do); "aes192c"/"aes256c" are the Reeder ("Cisco") variant some vendors ship.
PRIV_PROTOCOLS = ("des", "3des", "aes", "aes192", "aes256", "aes192c", "aes256c")


@dataclass(frozen=True, slots=True)
class SnmpV2c:
    """SNMPv2c credentials; the community never appears in repr, logs or errors."""

    community: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SnmpV3:
    """SNMPv3 USM credentials (authPriv, or authNoPriv when priv_protocol is None)."""

    user: str
    auth_protocol: str
    auth_key: str = field(repr=False)
    priv_protocol: str | None = None
    priv_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Refuse protocol names pysnmp does not implement and keys USM cannot use."""
        if self.auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(f"unknown SNMPv3 auth protocol {self.auth_protocol!r}")
        # RFC 3414 11.2: pass phrases shorter than 8 octets are not allowed.
        if len(self.auth_key) < 8:
            raise ValueError("SNMPv3 auth key must be at least 8 characters")
        if self.priv_protocol is not None:
            if self.priv_protocol not in PRIV_PROTOCOLS:
                raise ValueError(f"unknown SNMPv3 priv protocol {self.priv_protocol!r}")
            if self.priv_key is None or len(self.priv_key) < 8:
                raise ValueError("SNMPv3 priv key must be at least 8 characters")


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """One SNMP agent to poll: an IP literal, its credentials and the retry policy."""

    address: str
    credentials: SnmpV2c | SnmpV3
    port: int = 161
    timeout_s: float = 2.0
    retries: int = 1

    def __post_init__(self) -> None:
        """Refuse what can never work, so a bad target is a config error and not a poll result."""
        ipaddress.ip_address(self.address)  # raises ValueError: router addresses are IP literals
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if self.timeout_s <= 0 or self.retries < 0:
            raise ValueError("timeout_s must be > 0 and retries >= 0")


class SnmpFailure(enum.Enum):
    """Why a request, or one OID of it, produced no value."""

    # No (decodable) answer in time. SNMPv2c has no authentication error on the wire: an agent
    # drops a request whose community it does not know (RFC 3584 5.2.1, net-snmp counts it in
    # snmpInBadCommunityNames), so a wrong community is reported as TIMEOUT.
    TIMEOUT = "timeout"
    # SNMPv3 report: unknown user, wrong digest, decryption error, unsupported security level.
    AUTH_FAILURE = "auth_failure"
    # Per OID: the agent implements no such object / no such instance (e.g. no ifXTable).
    NO_SUCH_OBJECT = "no_such_object"
    NO_SUCH_INSTANCE = "no_such_instance"
    END_OF_MIB_VIEW = "end_of_mib_view"
    # Undecodable datagram, a PDU that is not the answer to what was asked, or a value of the
    # wrong SMI type for its object.
    GARBAGE = "garbage"
    # The agent answered with a non-zero error-status (tooBig, genErr, ...).
    AGENT_ERROR = "agent_error"
    # The datagram could not be sent (no route, socket error, conflicting credentials).
    TRANSPORT_ERROR = "transport_error"


# One polled value: the integer the agent returned, or why there is none.
Reading = int | SnmpFailure


@dataclass(frozen=True, slots=True)
class InterfaceSample:
    """IF-MIB readings of one interface in one poll."""

    if_index: int
    oper_status: (
        Reading  # ifOperStatus raw value: 1 up, 2 down, 3 testing, 5 dormant, 7 lowerLayerDown
    )
    in_octets: Reading
    out_octets: Reading
    counter_bits: int  # 64: ifHCIn/OutOctets were asked for; 32: ifIn/OutOctets (no ifXTable)
    in_errors: Reading
    out_errors: Reading
    in_discards: Reading
    out_discards: Reading
    # ifCounterDiscontinuityTime (sysUpTime ticks of the last counter discontinuity), 64-bit only.
    discontinuity_ticks: Reading = SnmpFailure.NO_SUCH_OBJECT

    @property
    def oper_up(self) -> bool | None:
        """True when ifOperStatus is up(1), False for any other status, None when unknown."""
        if isinstance(self.oper_status, SnmpFailure):
            return None
        return self.oper_status == 1


@dataclass(frozen=True, slots=True)
class RouterSample:
    """The result of one poll of one router: values or a failure, never an exception."""

    address: str
    taken_at: datetime  # timezone-aware UTC, when the answer arrived
    monotonic_s: float  # time.monotonic() when the answer arrived: use this for intervals
    uptime_s: float | None  # sysUpTime.0 in seconds (agent uptime), None when not answered
    interfaces: tuple[InterfaceSample, ...]
    failure: SnmpFailure | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One row of a router's interface table, for the diagnostic summary."""

    if_index: int
    name: str  # ifName, empty when the agent has no ifXTable
    descr: str  # ifDescr
    oper_status: int | None
    speed_bps: int | None  # ifHighSpeed * 1e6 when present, else ifSpeed
    has_hc_counters: bool


@dataclass(frozen=True, slots=True)
class SystemSummary:
    """What `netwatch probe` shows about one router: system group and interface table."""

    address: str
    sys_descr: str
    sys_name: str
    uptime_s: float | None
    interfaces: tuple[InterfaceInfo, ...]
    failure: SnmpFailure | None
    detail: str = ""
