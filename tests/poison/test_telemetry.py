"""Per-route metrics with an in-memory OpenTelemetry reader; no exporter without a connection string."""

from __future__ import annotations

from collections import defaultdict

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry as telemetry_module
from shared.dispatch import Dispatcher
from shared.engine import Engine
from shared.records import items
from shared.sink import UploadResult
from shared.telemetry import Telemetry
from tests.poison.conftest import APPLOGS_STREAM, app_log, post


def read(reader: InMemoryMetricReader) -> dict[str, dict[tuple, float]]:
    """metric name -> {sorted attribute items: value (sum, or count for histograms)}."""
    found: dict[str, dict[tuple, float]] = defaultdict(dict)
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    found[metric.name][tuple(sorted(point.attributes.items()))] = (
                        value if value is not None else point.count)
    return found


class StubUploader:
    """Lands every request but the ones of the stream named ``fail``."""

    def __init__(self, fail: int = 0):
        self.calls = 0
        self.fail = fail

    def upload(self, endpoint, dcr, stream, body, request_id):
        self.calls += 1
        if self.calls <= self.fail:
            return UploadResult(request_id, 1, 503, "server_error", False, "down")
        return UploadResult(request_id, 1, 204)


class StubParker:
    def __init__(self, telemetry):
        self.telemetry = telemetry

    def park(self, route, rows, result, batch_id):
        self.telemetry.parked(route.name, len(rows), sum(len(row.body) for row in rows), result.failure)


@pytest.fixture
def metrics_reader():
    reader = InMemoryMetricReader()
    yield reader, Telemetry(meter_provider=MeterProvider(metric_readers=[reader]))


def test_engine_records_rows_by_route_and_outcome_and_uploads_by_status_class(metrics_reader, world):
    reader, telemetry = metrics_reader
    route = world.route("applogs")
    # GIVEN an engine whose first request fails (and is parked) and the second lands
    engine = Engine(Dispatcher(StubUploader(fail=1), StubParker(telemetry), 1, telemetry), 2048)
    events = [app_log(n, tag="metrics") for n in range(20)] + [{"status": "bad"}]
    # WHEN one batch is processed
    try:
        outcome = engine.run(route, items(events))
    finally:
        engine.close()
    # THEN the counters say what happened to the rows, per route, once per batch
    rows = read(reader)["relay.rows"]
    by_outcome = {dict(k)["outcome"]: v for k, v in rows.items() if dict(k)["route"] == "applogs"}
    assert by_outcome["received"] == 21 and by_outcome["rejected"] == 1
    assert by_outcome["landed"] == outcome.landed and by_outcome["parked"] == outcome.parked
    assert by_outcome["received"] == by_outcome["landed"] + by_outcome["rejected"] + by_outcome["parked"]
    uploads = read(reader)["relay.uploads"]
    classes = {dict(k)["status_class"]: v for k, v in uploads.items()}
    assert classes["5xx"] == 1 and classes["2xx"] == outcome.requests - 1
    assert sum(read(reader)["relay.upload.duration"].values()) == outcome.requests


def test_replay_and_dead_letter_are_counted_through_the_real_relay(world, monkeypatch):
    # GIVEN the process-wide relay with an in-memory meter
    from shared import runtime

    reader = InMemoryMetricReader()
    monkeypatch.setattr(runtime, "Telemetry", lambda env=None: Telemetry(MeterProvider(metric_readers=[reader])))
    world.rebuild(monkeypatch)
    # WHEN one batch is parked then replayed, and another is refused permanently
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=503, count=50)
    assert post("applogs", [app_log(n, tag="replayed") for n in range(6)])[0] == 202
    world.emulator.clear_faults()
    world.host.drain()
    world.emulator.add_fault(stream=APPLOGS_STREAM, status=400)
    assert post("applogs", [app_log(n, tag="dead") for n in range(4)])[0] == 202
    # THEN parked, replayed and dead-lettered rows and the replay lag are recorded per route
    rows = {dict(k)["outcome"]: v for k, v in read(reader)["relay.rows"].items() if dict(k)["route"] == "applogs"}
    assert (rows["received"], rows["parked"], rows["replayed"], rows["deadlettered"]) == (10, 6, 6, 4)
    assert sum(read(reader)["relay.replay.lag"].values()) == 1


def test_without_a_connection_string_nothing_is_configured_and_the_meter_is_a_no_op(monkeypatch):
    calls = []
    monkeypatch.setattr(telemetry_module, "_configured", None)
    monkeypatch.setattr("azure.monitor.opentelemetry.configure_azure_monitor", lambda **kw: calls.append(kw))
    telemetry = Telemetry(env={})
    telemetry.parked("r", 1, 10, "throttled")  # a no-op meter accepts and drops
    assert calls == [] and telemetry_module._configured is None


def test_with_a_connection_string_azure_monitor_is_configured_lazily_once(monkeypatch):
    calls = []
    monkeypatch.setattr(telemetry_module, "_configured", None)
    monkeypatch.setattr("azure.monitor.opentelemetry.configure_azure_monitor", lambda **kw: calls.append(kw))
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000"}
    Telemetry(env=env)
    Telemetry(env=env)
    assert len(calls) == 1 and calls[0]["connection_string"] == env["APPLICATIONINSIGHTS_CONNECTION_STRING"]


def test_importing_the_app_configures_no_telemetry(monkeypatch):
    import importlib

    import function_app

    monkeypatch.setattr(telemetry_module, "_configured", None)
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=x")
    importlib.reload(function_app)
    assert telemetry_module._configured is None
