"""InfluxDB line protocol and the choice of write transport: pure, no server."""

from __future__ import annotations

import pytest

from edge.wire import Temperature
from timeseries import lineproto
from timeseries.influx import choose_transport

T0 = 1_750_000_000_000


def test_line_protocol_escapes_tag_values() -> None:
    assert lineproto.tag("a b,c=d\\") == "a\\ b\\,c\\=d\\\\"
    assert lineproto.string_field('say "hi"\n') == '"say \\"hi\\"\\n"'
    [line] = lineproto.temperatures("v 1", 7, [Temperature(tap="t,1", ts=T0, c=4.25)])
    assert line == f"temperature,venue=v\\ 1,tap=t\\,1 c=4.25,seq=7i {T0}"


@pytest.mark.parametrize(
    ("version", "configured", "expected"),
    [
        ("1.6.7~rc0", "auto", "v1"),
        ("1.8.10", "auto", "v1"),
        ("v2.7.4", "auto", "v2"),
        ("3.0.1", "auto", "v2"),
        ("unknown", "auto", "v2"),
        ("1.6.7", "v2", "v2"),
    ],
)
def test_write_transport_follows_the_server_version(
    version: str, configured: str, expected: str
) -> None:
    assert choose_transport(version, configured) == expected
