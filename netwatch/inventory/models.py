"""The inventory as frozen, typed objects: what provincial IT staff write, validated once."""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from netwatch.inventory.divisions import Divisions, describe, fold
from netwatch.inventory.secrets import Secret, checks_every_secret, weak_secret

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
IPAddress = IPv4Address | IPv6Address
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A Vietnamese mobile number as people write it: 0912 345 678, 0912.345.678, 84912345678,
# +84 912 345 678. Mobile numbers are 0 + 9 digits, the first of them 3, 5, 7, 8 or 9 (the
# 2017-2018 renumbering); 02x... are landlines, which have no Zalo account.
_VN_MOBILE = re.compile(r"^(?:0|84)([35789]\d{8})$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")


class Model(BaseModel):
    """Base of every config type: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def _address(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ip_address(value.strip())
        except ValueError:
            raise PydanticCustomError(
                "ip_address", "expected an IPv4 or IPv6 address, got '{value}'", {"value": value}
            ) from None
    return value


class Thresholds(Model):
    """When a link counts as degraded. Defaults follow QCVN 34 where it gives a figure."""

    rtt_ms: float = Field(50.0, gt=0, le=10_000)  # QCVN 34: mean latency <= 50 ms
    loss_pct: float = Field(2.0, ge=0, le=100)
    utilization_pct: float = Field(85.0, gt=0, le=100)
    availability_pct: float = Field(99.5, ge=0, le=100)  # QCVN 34: availability >= 99.5 %
    enter_rounds: int = Field(3, ge=1, le=100)
    enter_window: int = Field(5, ge=1, le=100)  # enter when enter_rounds of these were bad
    exit_rounds: int = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _window(self) -> Thresholds:
        if self.enter_window < self.enter_rounds:
            raise PydanticCustomError(
                "window",
                "enter_window ({window}) must be at least enter_rounds ({rounds})",
                {"window": self.enter_window, "rounds": self.enter_rounds},
            )
        return self


class ThresholdOverrides(Model):
    """Per-commune overrides; an omitted field keeps the default."""

    rtt_ms: float | None = Field(None, gt=0, le=10_000)
    loss_pct: float | None = Field(None, ge=0, le=100)
    utilization_pct: float | None = Field(None, gt=0, le=100)
    availability_pct: float | None = Field(None, ge=0, le=100)
    enter_rounds: int | None = Field(None, ge=1, le=100)
    enter_window: int | None = Field(None, ge=1, le=100)
    exit_rounds: int | None = Field(None, ge=1, le=100)

    def apply(self, base: Thresholds) -> Thresholds:
        """The defaults with these overrides applied (validated again as a whole)."""
        return Thresholds.model_validate(base.model_dump() | self.model_dump(exclude_none=True))


class Intervals(Model):
    """How often each kind of probe runs."""

    icmp_s: float = Field(30.0, ge=1, le=3600)
    icmp_echoes: int = Field(5, ge=1, le=50)
    snmp_s: float = Field(60.0, ge=1, le=3600)
    http_s: float = Field(60.0, ge=1, le=3600)


class Confirmation(Model):
    """Fast confirmation: a subject that looks bad (or good again) is probed every interval_s
    until hysteresis confirms or clears it (docs/alerting.md)."""

    enabled: bool = True
    interval_s: float = Field(2.0, ge=0.5, le=60)
    echoes: int = Field(10, ge=1, le=50)
    max_subjects: int = Field(200, ge=1, le=100_000)  # in fast mode at once
    max_pps: float = Field(600.0, gt=0, le=100_000)  # the fast rounds' echoes per second, at most
    snmp_after_s: float = Field(10.0, ge=5, le=300)  # second poll of a suspect link's router


def _loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class Contact(Model):
    """One escalation level of an ISP (or of provincial IT)."""

    level: int = Field(ge=1, le=9)
    name: Text
    email: str | None = None
    webhook: str | None = None
    telegram_chat_id: str | None = None
    zalo_phone: str | None = None  # normalised to 84xxxxxxxxx (ZNS sends to a phone number)
    escalate_after_min: float = Field(0, ge=0, le=7 * 24 * 60)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise PydanticCustomError("email", "expected an e-mail address like noc@vnpt.vn")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("https://", "http://")):
            raise PydanticCustomError("url", "expected an https:// URL")
        if value.startswith("http://") and not _loopback_url(value):
            # The body carries the ticket's evidence and its signed link: never in clear.
            raise PydanticCustomError(
                "url_not_https",
                "webhooks must use https:// (plain http:// only to a loopback address, "
                "for tests and the lab)",
            )
        return value

    @field_validator("zalo_phone", mode="before")
    @classmethod
    def _zalo_phone(cls, value: Any) -> Any:
        if value is None:
            return value
        return vietnamese_mobile(value)

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not (self.email or self.webhook or self.telegram_chat_id or self.zalo_phone):
            raise PydanticCustomError(
                "contact_channel",
                "a contact needs at least one of email, webhook, telegram_chat_id, zalo_phone",
            )
        return self


def vietnamese_mobile(value: Any) -> str:
    """A Vietnamese mobile number as ZNS takes it, 84 and 9 digits: '0912 345 678' ->
    '84912345678'. (The config reader keeps a bare 0912345678 as text, and 84912345678 comes
    as a number.)"""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _PHONE_SEPARATORS.sub("", value) if isinstance(value, str) else ""
    found = _VN_MOBILE.match(text.removeprefix("+"))
    if found is None:
        raise PydanticCustomError(
            "zalo_phone",
            "expected a Vietnamese mobile number like 0912345678 or 84912345678",
        )
    return f"84{found[1]}"


def _distinct_levels(value: tuple[Contact, ...]) -> tuple[Contact, ...]:
    levels = [c.level for c in value]
    if len(set(levels)) != len(levels):
        raise PydanticCustomError("contacts", "two contacts have the same escalation level")
    return value


class IspContract(Model):
    """What the ISP's contract says about how its monthly figures count (docs/reports.md)."""

    # Planned maintenance (a window in the config or made through the API) is taken out of the
    # month, as an interruption announced in advance usually is in service contracts; false
    # counts it like any other time. The report shows the maintenance seconds either way.
    exclude_maintenance: bool = True


class Isp(Model):
    """An Internet service provider and whom to tell about its faults."""

    name: Text
    contacts: tuple[Contact, ...] = ()
    capacity_requests: bool = False
    contract: IspContract = IspContract()

    _levels = field_validator("contacts")(_distinct_levels)


class SnmpCredentials(Model):
    """SNMP v2c community or v3 USM user; every secret comes from the environment."""

    version: Literal["2c", "3"]
    community: Secret | None = None
    user: str | None = None
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] | None = None
    auth_key: Secret | None = None
    priv_protocol: Literal["des", "aes", "aes192", "aes256"] | None = None
    priv_key: Secret | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _complete(self) -> SnmpCredentials:
        if self.version == "2c":
            if self.community is None:
                raise PydanticCustomError("snmp", "SNMP v2c needs `community`")
            if self.user or self.auth_key or self.priv_key:
                raise PydanticCustomError("snmp", "SNMP v2c takes only `community`")
        else:
            if self.community is not None:
                raise PydanticCustomError("snmp", "SNMP v3 uses `user` and keys, not `community`")
            if not self.user:
                raise PydanticCustomError("snmp", "SNMP v3 needs `user`")
            if (self.auth_protocol is None) != (self.auth_key is None):
                raise PydanticCustomError(
                    "snmp", "give both auth_protocol and auth_key, or neither"
                )
            if (self.priv_protocol is None) != (self.priv_key is None):
                raise PydanticCustomError(
                    "snmp", "give both priv_protocol and priv_key, or neither"
                )
            if self.priv_key is not None and self.auth_key is None:
                raise PydanticCustomError("snmp", "SNMP v3 privacy needs authentication too")
            for key in (self.auth_key, self.priv_key):
                # RFC 3414 11.2: USM pass phrases are at least 8 characters.
                if key is not None and len(key.reveal()) < 8:
                    raise PydanticCustomError(
                        "snmp",
                        "the key in {env} is shorter than 8 characters (RFC 3414)",
                        {"env": key.source},
                    )
        return self


class Upstream(Model):
    """An upstream node (district POP) that communes hang off."""

    name: Text
    isp: Slug
    address: IPAddress | None = None  # None: not pinged; its state is inferred from its communes
    parent: Slug | None = None

    _addr = field_validator("address", mode="before")(_address)


class Portal(Model):
    """A web service commune staff depend on, timed end to end."""

    name: Text
    url: str
    expect_status: tuple[int, ...] = (200,)
    expect_text: str | None = None
    ca_file: str | None = None
    dns_resolver: IPAddress | None = None
    timeout_s: float = Field(10.0, gt=0, le=120)

    _resolver = field_validator("dns_resolver", mode="before")(_address)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for status in value:
            if not 100 <= status <= 599:
                raise PydanticCustomError("status", "HTTP status codes are 100-599")
        return value


class Router(Model):
    """The commune's router, polled by SNMP."""

    address: IPAddress
    snmp: Slug
    port: int = Field(161, ge=1, le=65535)

    _addr = field_validator("address", mode="before")(_address)


class Link(Model):
    """One WAN circuit of a commune."""

    id: Slug
    isp: Slug
    circuit: Text
    bandwidth_mbps: float = Field(gt=0, le=100_000)
    path: Literal["tslcd", "internet"]
    address: IPAddress
    upstream: Slug | None = None
    interface: str | None = None

    _addr = field_validator("address", mode="before")(_address)


class Device(Model):
    """A front-office device (kiosk, queue machine, ...) worth pinging."""

    name: Text
    kind: Literal["kiosk", "queue", "printer", "camera", "other"] = "other"
    address: IPAddress

    _addr = field_validator("address", mode="before")(_address)


class AgentPath(Model):
    """One WAN path the commune agent measures apart: traffic from ``source`` (or out of
    ``interface``) leaves the commune by ``link``; ``target`` is pinged over it from inside."""

    link: Slug  # a link id of this commune
    source: IPAddress | None = None  # the box's address the router policy-routes by this link
    interface: str | None = None  # or: the box's own interface on this path
    target: IPAddress  # the link's far end (its upstream gateway)

    _source = field_validator("source", mode="before")(_address)
    _target = field_validator("target", mode="before")(_address)

    @model_validator(mode="after")
    def _bound(self) -> AgentPath:
        if self.source is None and self.interface is None:
            raise PydanticCustomError(
                "agent_path",
                "a path needs `source:` (the box's address routed by this link) or"
                " `interface:` (the box's interface on it), or both",
            )
        return self


class AgentThroughput(Model):
    """An optional short download per path; off unless provincial IT turns it on."""

    enabled: bool = False
    url: str | None = None
    max_bytes: int = Field(2_000_000, ge=10_000, le=100_000_000)
    every_s: float = Field(3600.0, ge=300, le=7 * 24 * 3600)
    rate_limit_bps: int = Field(2_000_000, ge=64_000, le=1_000_000_000)

    @model_validator(mode="after")
    def _url(self) -> AgentThroughput:
        if self.enabled and not self.url:
            raise PydanticCustomError("throughput", "throughput is enabled but has no `url:`")
        if self.url is not None and urlsplit(self.url).scheme not in {"http", "https"}:
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return self


class CommuneAgent(Model):
    """The ``netwatch agent`` box inside a commune center (docs/agent-centre.md)."""

    id: Slug | None = None  # the agent's id; None: "<commune code>-agent"
    lan_gateway: IPAddress | None = None  # the router's LAN address, pinged from inside
    paths: tuple[AgentPath, ...] = Field(min_length=1)
    portals: tuple[Slug, ...] | None = None  # timed over every path; None: all portals
    throughput: AgentThroughput = AgentThroughput()

    _gateway = field_validator("lan_gateway", mode="before")(_address)


class Agents(Model):
    """What every commune agent shares: its rhythm."""

    interval_s: float = Field(30.0, ge=5, le=3600)
    echoes: int = Field(3, ge=1, le=20)


class Coordinates(Model):
    """Where the commune center is, for the map."""

    lat: float = Field(ge=8, le=24)  # Vietnam spans ~8.2-23.4 N
    lon: float = Field(ge=102, le=118)  # ~102.1-109.5 E (and the islands further east)


class Commune(Model):
    """A commune Public Administration Service Center: its links, router and devices."""

    # Field order matters: validators read the fields validated before them.
    name_hint: str | None = Field(None, exclude=True, repr=False)  # `name:` as written, a check
    code: str
    name: str = Field("", validate_default=True)  # official, from vietnam-provinces; never typed
    province_code: int = Field(0, validate_default=True)
    coordinates: Coordinates | None = None
    router: Router | None = None
    links: tuple[Link, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = ()
    thresholds: ThresholdOverrides = ThresholdOverrides()
    agent: CommuneAgent | None = None
    contacts: tuple[Contact, ...] = ()  # the commune's own people: told when the site is down

    @model_validator(mode="before")
    @classmethod
    def _inputs(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "province_code" in data:
                raise PydanticCustomError(
                    "derived", "province_code comes from the official commune code; remove it"
                )
            if "name_hint" in data:
                raise PydanticCustomError("extra_forbidden", "unknown key 'name_hint'")
            if "name" in data:
                data["name_hint"] = str(data.pop("name"))
        return data

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, raw: Any, info: ValidationInfo) -> Any:
        divisions: Divisions | None = (info.context or {}).get("divisions")
        province = (info.context or {}).get("province")
        text = str(raw).strip()
        if isinstance(raw, bool) or not text.isdigit():
            if divisions is None:
                raise PydanticCustomError("commune_code", "expected an official commune code")
            found = divisions.search(text, province=province) or divisions.search(text)
            raise PydanticCustomError(
                "commune_code",
                "'{text}' is not an official commune code{suggest}",
                {"text": text, "suggest": _suggest(found)},
            )
        code = f"{int(text):05d}"
        if divisions is not None and divisions.commune(code) is None:
            hint = info.data.get("name_hint")
            found = divisions.search(hint, province=province) if hint else []
            found = found or divisions.nearest_codes(code, province=province)
            raise PydanticCustomError(
                "commune_code",
                "no commune has the official code {code}{suggest}",
                {"code": code, "suggest": _suggest(found)},
            )
        return code

    @field_validator("name")
    @classmethod
    def _official_name(cls, value: str, info: ValidationInfo) -> str:
        divisions: Divisions | None = (info.context or {}).get("divisions")
        code = info.data.get("code")
        if divisions is None or code is None:
            return value
        official = divisions.commune(code)
        if official is None:
            return value
        hint = info.data.get("name_hint")
        if hint is not None and fold(hint) not in {fold(official.name), _bare_name(official.name)}:
            province = (info.context or {}).get("province")
            raise PydanticCustomError(
                "commune_name",
                "code {code} is {official}, not '{hint}'{suggest}",
                {
                    "code": code,
                    "official": official.name,
                    "hint": hint,
                    "suggest": _suggest(divisions.search(hint, province=province)),
                },
            )
        return official.name

    @field_validator("province_code")
    @classmethod
    def _province_code(cls, value: int, info: ValidationInfo) -> int:
        divisions: Divisions | None = (info.context or {}).get("divisions")
        code = info.data.get("code")
        official = divisions.commune(code) if divisions is not None and code else None
        return official.province_code if official is not None else value

    @property
    def agent_id(self) -> str | None:
        """The commune agent's id (None: no agent in this commune)."""
        if self.agent is None:
            return None
        return self.agent.id or f"{self.code}-agent"

    def effective_thresholds(self, defaults: Thresholds) -> Thresholds:
        """Thresholds for this commune: defaults with its overrides."""
        return self.thresholds.apply(defaults)


def _bare_name(name: str) -> str:
    return fold(name).split(" ", 1)[-1]


def _suggest(found: list[Any]) -> str:
    if not found:
        return ""
    return "; did you mean " + ", ".join(describe(c) for c in found) + "?"


class Scope(Model):
    """What a maintenance window covers: exactly one of province, commune, link, isp."""

    province: int | None = None
    commune: str | None = None
    link: str | None = None  # "CODE/LINK-ID"
    isp: Slug | None = None

    @field_validator("commune", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:05d}"
        return value

    @model_validator(mode="after")
    def _one(self) -> Scope:
        given = [k for k in ("province", "commune", "link", "isp") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "scope", "a scope names exactly one of province, commune, link, isp"
            )
        if self.link is not None and not re.match(r"^\d{1,5}/[a-z0-9][a-z0-9-]*$", self.link):
            raise PydanticCustomError(
                "scope", "a link scope is written CODE/LINK-ID, e.g. 24848/vnpt"
            )
        return self


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Maintenance(Model):
    """A maintenance window in local time: one-off (start, end) or recurring (every, at)."""

    scope: Scope
    reason: Text
    start: datetime | None = None
    end: datetime | None = None
    every: Literal["daily", "weekly"] | None = None
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()
    at: time | None = None
    duration_min: float | None = Field(None, gt=0, le=7 * 24 * 60)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _local(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise PydanticCustomError(
                    "datetime", "expected a local date and time like 2026-11-22 22:00"
                ) from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        match = re.match(r"^(\d{1,2}):(\d{2})$", value.strip()) if isinstance(value, str) else None
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise PydanticCustomError("time", "expected a local time like 23:00")
        return time(int(match[1]), int(match[2]))

    @model_validator(mode="after")
    def _shape(self) -> Maintenance:
        one_off = self.start is not None or self.end is not None
        recurring = self.every is not None
        if one_off and recurring:
            raise PydanticCustomError(
                "window", "a window is one-off (start, end) or recurring (every), not both"
            )
        if one_off:
            if self.start is None or self.end is None:
                raise PydanticCustomError("window", "a one-off window needs both start and end")
            if self.end <= self.start:
                raise PydanticCustomError("window", "the window ends before it starts")
        elif recurring:
            if self.at is None or self.duration_min is None:
                raise PydanticCustomError(
                    "window", "a recurring window needs `at` and `duration_min`"
                )
            if self.every == "weekly" and not self.days:
                raise PydanticCustomError("window", "a weekly window needs `days`, e.g. [sun]")
        else:
            raise PydanticCustomError("window", "give start and end, or every/at/duration_min")
        return self


class ProvincialIt(Model):
    """Provincial IT (Sở KH&CN, the provincial data center): capacity, portal, monitor tickets."""

    name: Text = "Provincial IT"
    contacts: tuple[Contact, ...] = ()

    _levels = field_validator("contacts")(_distinct_levels)


class Smtp(Model):
    """The mail server NetWatch sends through (STARTTLS and AUTH where the server wants them)."""

    host: Text
    port: int = Field(587, ge=1, le=65535)
    from_address: str
    username: str | None = None
    password: Secret | None = None
    starttls: bool = True
    ca_file: str | None = None  # extra CA for a server with a private certificate

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise PydanticCustomError(
                "email", "expected an e-mail address like netwatch@tinh.gov.vn"
            )
        return value


class Telegram(Model):
    """A Telegram bot that posts ticket news to chats."""

    bot_token: Secret
    api_base_url: str = "https://api.telegram.org"


ZALO_API_BASE_URL = "https://business.openapi.zalo.me"  # ZNS: POST /message/template
ZALO_OAUTH_BASE_URL = "https://oauth.zaloapp.com"  # OA tokens: POST /v4/oa/access_token
# The notice events a ZNS template can be registered for (netwatch.notify.messages.NoticeEvent
# values; the inventory does not import the notifier, so they are listed here and a test keeps
# the two lists equal).
ZNS_EVENTS = (
    "opened",
    "updated",
    "escalated",
    "reminder",
    "acknowledged",
    "note",
    "resolved",
    "auto_resolved",
    "unmonitored",
    "reopened",
    "line_back",
    "bad_again",
)


def _https_or_loopback(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+/?$", value):
        raise PydanticCustomError(
            "url", "expected a base URL like https://business.openapi.zalo.me"
        )
    if value.startswith("http://") and not _loopback_url(value):
        # The access token travels in a header: never in clear.
        raise PydanticCustomError(
            "url_not_https",
            "Zalo's API is reached over https:// (plain http:// only to a loopback address, "
            "for tests)",
        )
    return value.rstrip("/")


class Zalo(Model):
    """A Zalo Official Account that sends ZNS template messages (docs/zalo.md).

    Either a long-lived `access_token`, or the OA's `refresh_token` with the app's `app_id` and
    `secret_key` (then NetWatch gets access tokens itself, and again when one expires), or both.
    `templates` maps notice events to the ids of templates Zalo approved; an event without a
    template is not sent by Zalo (each ZNS message is paid for)."""

    access_token: Secret | None = None
    refresh_token: Secret | None = None
    app_id: Annotated[str, StringConstraints(pattern=r"^\d{1,30}$")] | None = None
    secret_key: Secret | None = None
    templates: dict[str, str] = Field(min_length=1)
    api_base_url: str = ZALO_API_BASE_URL
    oauth_base_url: str = ZALO_OAUTH_BASE_URL
    timeout_s: float = Field(15.0, gt=0, le=120)
    # Where refreshed tokens are kept across restarts (Zalo's refresh tokens are single-use),
    # e.g. data/zalo-tokens.json; written by NetWatch, readable by its user only.
    token_file: str | None = None

    _urls = field_validator("api_base_url", "oauth_base_url")(_https_or_loopback)

    @field_validator("templates", mode="before")
    @classmethod
    def _templates(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = [str(k) for k in value if k not in ZNS_EVENTS]
        if unknown:
            raise PydanticCustomError(
                "zns_event",
                "no notice event is called {unknown}; the events are: {events}",
                {"unknown": ", ".join(unknown), "events": ", ".join(ZNS_EVENTS)},
            )
        # Zalo's console shows a template id as a number; YAML may read it as one.
        ids = {
            k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
        for event, template in ids.items():
            if not (isinstance(template, str) and re.fullmatch(r"\d{1,20}", template)):
                raise PydanticCustomError(
                    "zns_template",
                    "the template for {event} is the id Zalo gave it, digits only, like 401234",
                    {"event": event},
                )
        return ids

    @model_validator(mode="after")
    def _tokens(self) -> Zalo:
        refresh = (self.refresh_token, self.app_id, self.secret_key)
        if any(v is not None for v in refresh) and not all(v is not None for v in refresh):
            raise PydanticCustomError(
                "zalo_tokens",
                "refreshing the access token needs all of refresh_token, app_id and secret_key",
            )
        if self.access_token is None and self.refresh_token is None:
            raise PydanticCustomError(
                "zalo_tokens",
                "give access_token, or refresh_token with app_id and secret_key (or both)",
            )
        return self


class Notifications(Model):
    """How tickets reach people, and how their links are signed."""

    public_url: str  # base of the links in notifications, e.g. https://netwatch.lamdong.gov.vn
    link_secret: Secret  # signs the ISP's ticket links
    link_valid_days: float = Field(7, gt=0, le=90)
    # A link acknowledges, notes and resolves only this long after its notice; it shows the
    # ticket until link_valid_days (reminders and escalations carry fresh links).
    link_act_hours: float = Field(72, gt=0, le=90 * 24)
    smtp: Smtp | None = None
    webhook_secret: Secret | None = None  # HMAC key receivers verify webhook bodies with
    telegram: Telegram | None = None
    zalo: Zalo | None = None

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise PydanticCustomError(
                "url", "expected the base URL, like https://netwatch.tinh.gov.vn"
            )
        return value.rstrip("/")

    @field_validator("link_secret")
    @classmethod
    def _strong_secret(cls, value: Secret, info: ValidationInfo) -> Secret:
        # Ticket ids are public: a guessable secret lets anyone forge an ISP's link.
        if checks_every_secret((info.context or {}).get("environ")):
            return value
        why = weak_secret(value.reveal())
        if why is not None:
            raise PydanticCustomError(
                "weak_secret",
                "the link secret (environment variable {name}) {why}: generate one with "
                "`openssl rand -hex 32`",
                {"name": value.source, "why": why},
            )
        return value


class TicketRules(Model):
    """Ticket lifecycle timings."""

    recovery_min: float = Field(10, gt=0, le=24 * 60)  # ok this long: auto-resolved
    # ok this long: one "line back, watching N min before closing" notice (null: none)
    line_back_s: float | None = Field(10, ge=0, le=3600)
    reopen_window_min: float = Field(120, ge=0, le=7 * 24 * 60)  # relapse within: reopened
    remind_every_min: float | None = Field(60, gt=0, le=7 * 24 * 60)  # unacknowledged reminders


class Reports(Model):
    """Monthly per-circuit reports (docs/reports.md)."""

    # Days of 5-minute latency and loss buckets kept in the store (table link_rollups): the
    # report of a month needs the whole month, so the default keeps last month until the end of
    # this one. A national instance (10,000 links) holds ~15 million rows at 62 days.
    history_days: int = Field(62, ge=2, le=800)


class Inventory(Model):
    """Everything NetWatch watches, validated and cross-checked."""

    province: int | None = None
    reference_targets: tuple[IPAddress, ...] = ()
    intervals: Intervals = Intervals()
    confirmation: Confirmation = Confirmation()
    thresholds: Thresholds = Thresholds()
    isps: dict[Slug, Isp] = Field(default_factory=dict)
    snmp_credentials: dict[Slug, SnmpCredentials] = Field(default_factory=dict)
    upstreams: dict[Slug, Upstream] = Field(default_factory=dict)
    portals: dict[Slug, Portal] = Field(default_factory=dict)
    communes: tuple[Commune, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    provincial_it: ProvincialIt = ProvincialIt()
    notifications: Notifications | None = None
    tickets: TicketRules = TicketRules()
    reports: Reports = Reports()
    agents: Agents = Agents()

    @field_validator("reference_targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        return [_address(v) for v in value] if isinstance(value, list) else value

    @field_validator("province", mode="before")
    @classmethod
    def _province(cls, value: Any, info: ValidationInfo) -> Any:
        divisions: Divisions | None = (info.context or {}).get("divisions")
        if divisions is not None and isinstance(value, int) and value not in divisions.provinces:
            codes = ", ".join(f"{k:02d} {v}" for k, v in sorted(divisions.provinces.items())[:5])
            raise PydanticCustomError(
                "province",
                "no province has the official code {value} (codes look like: {codes}, ...)",
                {"value": value, "codes": codes},
            )
        return value

    @cached_property
    def _communes_by_code(self) -> dict[str, Commune]:
        return {c.code: c for c in self.communes}

    def commune(self, code: str) -> Commune | None:
        """The commune with this code, or None (a dict built on first use: national callers
        look up every commune)."""
        return self._communes_by_code.get(code)

    def warnings(self) -> list[str]:
        """Things that are valid but probably not what was meant."""
        out = [
            f"ISP {isp_id} has no contacts: its tickets reach provincial IT only"
            for isp_id, isp in self.isps.items()
            if not isp.contacts
        ]
        out += [
            f"commune {c.code} {c.name}: link {link.id} names router interface "
            f"{link.interface!r} but the commune has no router"
            for c in self.communes
            for link in c.links
            if link.interface and c.router is None
        ]
        if not self.portals:
            out.append("no portals: the National Public Service Portal is not timed")
        if self.notifications is None:
            out.append("no notifications section: tickets are recorded but nobody is told")
        elif (
            self.notifications.zalo is not None
            and self.notifications.zalo.refresh_token is not None
            and self.notifications.zalo.token_file is None
        ):
            out.append(
                "notifications.zalo has a refresh_token but no token_file: the tokens Zalo "
                "hands out are kept in memory only, and after a restart Zalo refuses the "
                "configured refresh token (each is used once); set token_file, e.g. "
                "data/zalo-tokens.json"
            )
        if not self.provincial_it.contacts:
            out.append("provincial_it has no contacts: capacity and portal tickets reach nobody")
        return out

    def summary(self) -> dict[str, int]:
        """Counts shown by `check-config`."""
        return {
            "provinces": len({c.province_code for c in self.communes}),
            "communes": len(self.communes),
            "links": sum(len(c.links) for c in self.communes),
            "routers": sum(1 for c in self.communes if c.router is not None),
            "devices": sum(len(c.devices) for c in self.communes),
            "upstreams": len(self.upstreams),
            "portals": len(self.portals),
            "isps": len(self.isps),
            "maintenance_windows": len(self.maintenance),
        }
