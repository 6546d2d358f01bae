"""Sources come from one registry: adding one is its declaration, and the whole engine takes it."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
import yaml

from shared.config import ConfigError, parse_config
from shared.dispatch import Dispatcher
from shared.engine import Engine
from shared.records import Record
from shared.sink import UploadResult
from shared.sources import registry

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Tick:
    """Where a record of the tiny source came from: its tick number."""

    number: int
    named: ClassVar[bool] = True

    def __str__(self) -> str:
        return f"tick {self.number}"

    def fields(self) -> dict[str, Any]:
        return {"tick": self.number}


def ticks(clock: str, count: int) -> Iterator[Record]:
    """The tiny source's records: one event per tick, the clock's name as its metadata."""
    context = {"_ticker": {"clock": clock}}
    for number in range(count):
        yield Record(Tick(number), {"t": "2024-05-01T10:00:00Z", "N": number}, context)


class Landing:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        with self.lock:
            self.rows.extend(orjson.loads(zlib.decompress(gzipped_body, wbits=31)))
        return UploadResult(request_id, 1, status=204)


def routes_file(source: str) -> str:
    return yaml.safe_dump({"routes": [{
        "name": "ticks", "source": source, "match": "clock-*", "endpoint": "https://relay.example.com",
        "dcr": "dcr-" + "0" * 32, "stream": "Custom-T", "time_field": "t",
        "map": {"Clock": "_ticker.clock"},
        "columns": [{"name": "TimeGenerated", "type": "datetime"}, {"name": "N", "type": "int"},
                    {"name": "Clock", "type": "string"}],
    }]})


@pytest.fixture
def ticker() -> Iterator[registry.Source]:
    source = registry.register(registry.Source("ticker", "a glob on the clock name"))
    yield source
    registry.unregister("ticker")


def test_a_source_declared_in_a_test_is_routed_normalized_and_landed(ticker):
    # GIVEN a tiny source declared here, and a routes file naming it and mapping its metadata
    config = parse_config(routes_file("ticker"), {}, ROOT)
    landing = Landing()
    engine = Engine(Dispatcher(landing), 1_000_000)
    # WHEN its input is routed by the source's own matching and pushed through the engine
    route = config.route_for("ticker", "clock-7")
    try:
        result = engine.run(route, ticks("clock-7", 5))
    finally:
        engine.close()
    # THEN every record landed with the metadata column filled from the source's context root
    assert ticker.context_root == "_ticker" and "ticker" in registry.names()
    assert (result.received, result.landed) == (5, 5)
    assert sorted((row["N"], row["Clock"]) for row in landing.rows) == [(n, "clock-7") for n in range(5)]
    assert config.route_for("ticker", "sundial") is None


def test_a_source_nobody_declared_is_refused_by_name_with_the_declared_ones():
    # GIVEN a routes file naming a source no module declared WHEN loaded THEN the message lists the known ones
    with pytest.raises(ConfigError) as raised:
        parse_config(routes_file("ticker"), {}, ROOT)
    assert "source: 'ticker' is not one of http, blob, eventhub" in str(raised.value)


def test_the_built_in_sources_and_their_context_roots_come_from_the_registry():
    assert set(registry.names()) >= {"http", "blob", "eventhub"}
    assert registry.context_roots() >= {"_http", "_blob", "_eventhub"}


def test_declaring_a_source_twice_differently_is_an_error(ticker):
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(registry.Source("ticker", "something else"))
