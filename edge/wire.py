"""Wire contract v1: the MQTT topics and payloads between edge agents and Tapsense.

This module is the one definition of the contract; the agent, the ingest worker and the
simulators import it. `docs/wire-contract.md` explains it for people; keep the two in step.
It must never do I/O.

Topics (QoS 1 for telemetry; status is retained):
    tapsense/v1/{venue}/{device}/telemetry   batches of readings from one agent
    tapsense/v1/{venue}/{device}/status      "online"/"offline", retained, offline as last will
    tapsense/downlink/v1/{venue}/...         messages to a venue's devices (the broker lets a
                                             device read only its own venue's): `stored`, and
                                             `alerts`, retained, for the venue's display

Identity: a reading is identified by (venue, tap, kind, ts); a redelivered message therefore
overwrites its own points. `seq` increases by one per message an agent creates and survives
agent restarts (it is the spool's key), so ingest can count redeliveries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

WIRE_VERSION = 1
TOPIC_ROOT = "tapsense/v1"

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)

# Timestamps are the device's clock in milliseconds since the Unix epoch (UTC). Anything before
# 2020 is a device that has not synchronised its clock yet (a Pi without RTC boots in 1970).
TS_MIN_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

# What a probe can physically report (DS18B20: -55..125 °C). Values outside are not readings;
# values inside but implausible for beer are for the quality checks to flag.
TEMP_MIN_C = -55.0
TEMP_MAX_C = 125.0
POUR_MAX_ML = 100_000.0  # no single pour empties more than a 100 L keg
POUR_MAX_DURATION_MS = 3_600_000

MAX_READINGS_PER_MESSAGE = 1000
# Ingest refuses larger payloads (dead-lettered as oversize). A full message of the longest
# readings is well under this.
MAX_PAYLOAD_BYTES = 256 * 1024

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
TimestampMs = Annotated[int, msgspec.Meta(ge=TS_MIN_MS, lt=TS_MAX_MS)]


class WireError(ValueError):
    """A topic or payload that does not follow the wire contract."""


class TopicKind(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A device's topic; validates its parts on construction."""

    venue: str
    device: str
    kind: TopicKind

    def __post_init__(self) -> None:
        for name, value in (("venue", self.venue), ("device", self.device)):
            if not _ID_RE.match(value):
                raise WireError(f"{name} {value[:80]!r} does not match {ID_PATTERN}")

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.venue}/{self.device}/{self.kind}"

    @classmethod
    def parse(cls, topic: str) -> DeviceTopic:
        parts = topic.split("/")
        if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
            raise WireError(f"topic {topic[:200]!r} is not {TOPIC_ROOT}/<venue>/<device>/<kind>")
        try:
            kind = TopicKind(parts[4])
        except ValueError:
            raise WireError(f"unknown topic kind {parts[4][:80]!r}") from None
        return cls(parts[2], parts[3], kind)


def subscription(kind: TopicKind, venue: str = "+") -> str:
    """Topic filter for one kind of message from one venue (`+`: every venue)."""
    return f"{TOPIC_ROOT}/{venue}/+/{kind}"


class Temperature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One temperature sample of the beer in a tap's line."""

    tap: Id
    ts: TimestampMs
    c: Annotated[float, msgspec.Meta(ge=TEMP_MIN_C, le=TEMP_MAX_C)]


class Pour(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One finished pour; `ts` is when the flow stopped."""

    tap: Id
    ts: TimestampMs
    ml: Annotated[float, msgspec.Meta(gt=0, le=POUR_MAX_ML)]
    dur_ms: Annotated[int, msgspec.Meta(ge=0, le=POUR_MAX_DURATION_MS)]


class Telemetry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One message on a telemetry topic: a batch of one agent's readings."""

    v: Literal[1]
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    temps: Annotated[list[Temperature], msgspec.Meta(max_length=MAX_READINGS_PER_MESSAGE)] = []
    pours: Annotated[list[Pour], msgspec.Meta(max_length=MAX_READINGS_PER_MESSAGE)] = []


class TelemetryEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Telemetry with readings left undecoded, to judge each reading on its own."""

    v: Literal[1]
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    temps: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_READINGS_PER_MESSAGE)] = []
    pours: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_READINGS_PER_MESSAGE)] = []


class Status(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An agent's presence, retained; the broker publishes `offline` as the agent's last will."""

    v: Literal[1]
    state: Literal["online", "offline"]


# Towards devices: a root of its own, so no venue or device id can make a device topic match it.
DOWNLINK_ROOT = "tapsense/downlink/v1"


def stored_topic(venue: str, device: str) -> str:
    """Where ingest tells a device which of its telemetry messages it has stored."""
    return f"{DOWNLINK_ROOT}/{venue}/{device}/stored"


class Stored(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ingest to one device: these telemetry messages (by `seq`) are stored, or set aside as
    dead letters: they may leave the device's spool. At most once; a device that hears nothing
    for a message sends it again, and the contract makes the duplicate harmless."""

    v: Literal[1]
    seqs: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(max_length=65535)]


def alerts_topic(venue: str) -> str:
    """Retained: the venue's unresolved alerts now, for a display at the venue."""
    return f"{DOWNLINK_ROOT}/{venue}/alerts"


class DisplayAlert(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One unresolved alert as a display shows it, in the venue owner's language."""

    id: int
    subject: str  # the tap, the device, or "" (the venue)
    check: str
    severity: Literal["warning", "critical"]
    state: Literal["open", "acknowledged"]
    opened_ms: int
    title: str
    text: str
    remedy: str


class VenueAlerts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The alerts service to a venue's displays, retained, so that a display that connects
    shows the truth at once. `as_of` grows with every change: keep the highest seen."""

    v: Literal[1]
    as_of: int
    language: str
    alerts: list[DisplayAlert]


def coupons_topic(venue: str) -> str:
    """Retained: the tasting coupons the venue may hand out now, for a display at the venue."""
    return f"{DOWNLINK_ROOT}/{venue}/coupons"


class DisplayCampaign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A running campaign's unused codes at one venue, as printed (`7KQ2M-X4D9B-N3FR`)."""

    campaign: int
    beer: str
    festival: str
    message: str  # for the guest, in the venue owner's language
    valid_until_ms: int
    codes: list[str]


class VenueCoupons(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The alerts service to a venue's displays, retained: the campaigns running there now.
    `as_of` grows with every launch and redemption: keep the highest seen."""

    v: Literal[1]
    as_of: int
    language: str
    campaigns: list[DisplayCampaign]


class SeqOnly(msgspec.Struct, frozen=True):
    """A telemetry message's sequence number alone (ingest reads it to confirm the message)."""

    seq: int


# Internal: quality events from ingest to the alerts service (never published by devices).
QUALITY_TOPIC_ROOT = "tapsense/internal/v1/quality"


def quality_topic(venue: str) -> str:
    return f"{QUALITY_TOPIC_ROOT}/{venue}"


class QualityMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A check changed level (see `ingest.quality.QualityEvent` for what the figures mean).

    At least once: after a crash an event may come again; (venue, tap, check, ts) identifies it.
    """

    v: Literal[1]
    venue: str
    tap: str | None
    check: str
    level: str
    ts: int
    value: float
    detail: float


_ENCODER = msgspec.json.Encoder()


def encode(
    message: Telemetry | Status | QualityMessage | Stored | VenueAlerts | VenueCoupons,
) -> bytes:
    return _ENCODER.encode(message)
