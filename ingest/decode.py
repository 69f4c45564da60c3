"""Strict decoding of telemetry payloads into readings and rejections. Pure: bytes in, values out.

Envelope first, then each reading on its own (practice from Kegbot): a message with one bad
reading keeps its good ones. The fast path decodes the whole message in one call; only a
message that fails it is decoded again reading by reading to find out which are bad and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from edge.wire import (
    MAX_PAYLOAD_BYTES,
    DeviceTopic,
    Pour,
    Status,
    Telemetry,
    TelemetryEnvelope,
    Temperature,
    TopicKind,
    WireError,
)

_TELEMETRY = msgspec.json.Decoder(Telemetry)
_STATUS = msgspec.json.Decoder(Status)
_ENVELOPE = msgspec.json.Decoder(TelemetryEnvelope)
_TEMPERATURE = msgspec.json.Decoder(Temperature)
_POUR = msgspec.json.Decoder(Pour)
# msgspec raises more than DecodeError: RecursionError for deep nesting, UnicodeDecodeError for
# invalid UTF-8 inside a string. Each of them is the payload's fault and refuses it.
_DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)

REASON_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message or one reading of it that was refused, with why."""

    topic: str
    reason: str
    payload: bytes
    seq: int | None = None


@dataclass(slots=True)
class Decoded:
    """What one telemetry message contributes: its readings and any rejected parts."""

    venue: str
    device: str
    seq: int
    temps: list[Temperature] = field(default_factory=list)
    pours: list[Pour] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "malformed: nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return f"malformed: invalid UTF-8 in a string, byte {exc.start} of it ({exc.reason})"
    text = str(exc)
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        text = f"malformed: {text}"
    return text[:REASON_TEXT_LIMIT]


def decode_telemetry(
    topic: str, payload: bytes, max_payload_bytes: int = MAX_PAYLOAD_BYTES
) -> Decoded | Rejection:
    """Decode one telemetry message; a whole-message problem returns a single Rejection."""
    try:
        where = DeviceTopic.parse(topic)
    except WireError as exc:
        return Rejection(topic, f"bad topic: {exc}", payload)
    if where.kind is not TopicKind.TELEMETRY:
        return Rejection(topic, f"not a telemetry topic: {where.kind}", payload)
    if len(payload) > max_payload_bytes:
        return Rejection(
            topic, f"oversize: {len(payload)} bytes, limit {max_payload_bytes}", payload
        )
    try:
        message = _TELEMETRY.decode(payload)
    except _DECODE_ERRORS:
        return _decode_reading_by_reading(topic, where, payload)
    return Decoded(where.venue, where.device, message.seq, message.temps, message.pours)


def _decode_reading_by_reading(
    topic: str, where: DeviceTopic, payload: bytes
) -> Decoded | Rejection:
    try:
        envelope = _ENVELOPE.decode(payload)
    except _DECODE_ERRORS as exc:
        return Rejection(topic, _reason(exc), payload)
    decoded = Decoded(where.venue, where.device, envelope.seq)
    decoders: tuple[tuple[str, list[msgspec.Raw], msgspec.json.Decoder[Any], list[Any]], ...] = (
        ("temps", envelope.temps, _TEMPERATURE, decoded.temps),
        ("pours", envelope.pours, _POUR, decoded.pours),
    )
    for name, raws, decoder, into in decoders:
        for index, raw in enumerate(raws):
            try:
                into.append(decoder.decode(raw))
            except _DECODE_ERRORS as exc:
                reason = _reason(exc).replace("`$", f"`$.{name}[{index}]", 1)
                if "`$" not in reason:
                    reason = f"{reason} - at `$.{name}[{index}]`"
                decoded.rejections.append(Rejection(topic, reason, bytes(raw), envelope.seq))
    return decoded


def decode_status(topic: str, payload: bytes) -> tuple[DeviceTopic, Status] | Rejection:
    """Decode one status message, or say why it is refused."""
    try:
        return DeviceTopic.parse(topic), _STATUS.decode(payload)
    except (WireError, *_DECODE_ERRORS) as exc:
        return Rejection(topic, f"bad status: {_reason(exc)}"[:REASON_TEXT_LIMIT], payload)
