"""Metrics and structured log lines for operators: what each route received, landed, parked.

Per route: rows (and bytes where known) received, landed, rejected, parked,
replayed, dead-lettered, requeued and failed; per stream: upload latency and
status classes; per route: replay lag (first failure -> landed).

OpenTelemetry instruments, exported to Application Insights only when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (``configure_azure_monitor`` is called
lazily, once per process, never at import). Without it the meter is the
OpenTelemetry API's no-op meter, so nothing is exported and tests need no exporter;
tests pass their own ``MeterProvider`` with an in-memory reader. Everything is
recorded per batch or per request, never per row, so the hot path stays fast.

Metric names (App Insights ``customMetrics.name`` / ``AppMetrics.Name``):
``relay.rows`` {route, outcome[, stage]}, ``relay.bytes`` {route, outcome}, ``relay.uploads``
{stream, status_class, failure}, ``relay.upload.duration`` (ms) {stream, status_class},
``relay.batch.duration`` (ms) {route}, ``relay.replay.lag`` (s) {route}.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from opentelemetry import metrics

from .records import Result
from .sink import UploadResult

log = logging.getLogger("relay.telemetry")
METER_NAME = "relay"
CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
#: Library instrumentations the Azure Monitor distro would otherwise switch on; the Functions
#: host already reports requests and logs, the relay adds metrics only.
_INSTRUMENTATIONS = ("azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3")

_configure_lock = threading.Lock()
_configured: bool | None = None  # None: not tried yet


def configure_exporter(env: Mapping[str, str] | None = None) -> bool:
    """Send metrics to Application Insights if the connection string is set; once per process."""
    global _configured
    env = os.environ if env is None else env
    connection = env.get(CONNECTION_SETTING, "").strip()
    if not connection:
        return False
    if _configured is not None:
        return _configured
    with _configure_lock:
        if _configured is not None:
            return _configured
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure_azure_monitor(
                connection_string=connection,
                logger_name="relay.telemetry",  # only the structured lines below; the host ships the rest
                enable_live_metrics=False,
                enable_performance_counters=False,
                instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS},
            )
            _configured = True
            log.info("metrics are exported to Application Insights")
        except Exception:  # telemetry must never stop the relay
            log.exception("could not configure Application Insights export; metrics stay local")
            _configured = False
    return _configured


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"


class Telemetry:
    """The relay's instruments, and the engine's observer (``shared.dispatch.Observer``): told of
    every run and every upload. ``meter_provider`` wins; otherwise Azure Monitor or the no-op meter."""

    def __init__(self, meter_provider: Any = None, env: Mapping[str, str] | None = None,
                 structured_logs: bool = True):
        if meter_provider is None:
            meter_provider = metrics.get_meter_provider() if configure_exporter(env) else metrics.NoOpMeterProvider()
        meter = meter_provider.get_meter(METER_NAME)
        self.structured_logs = structured_logs
        self.rows = meter.create_counter("relay.rows", unit="{row}", description="rows by route and outcome")
        self.bytes = meter.create_counter("relay.bytes", unit="By", description="bytes by route and outcome")
        self.uploads = meter.create_counter("relay.uploads", unit="{request}",
                                            description="Logs Ingestion requests by stream and status class")
        self.upload_duration = meter.create_histogram("relay.upload.duration", unit="ms",
                                                      description="latency of one upload (with its retries)")
        self.batch_duration = meter.create_histogram("relay.batch.duration", unit="ms",
                                                     description="time to process one batch")
        self.replay_lag = meter.create_histogram("relay.replay.lag", unit="s",
                                                 description="first failure to landing of replayed rows")

    # ------------------------------------------------------------------ helpers

    def _count(self, route: str, counts: Iterable[tuple[str, int]]) -> None:
        for outcome, value in counts:
            if value:
                self.rows.add(value, {"route": route, "outcome": outcome})

    def _line(self, event: str, **fields: Any) -> None:
        if self.structured_logs and log.isEnabledFor(logging.INFO):
            record = {"event": event, **fields}
            # flat, primitive extras become customDimensions / Properties when exported through OpenTelemetry
            extra = {f"relay_{k}": v for k, v in record.items() if isinstance(v, (str, int, float, bool))}
            log.info("relay.metrics %s", orjson.dumps(record).decode(), extra=extra)

    # ------------------------------------------------------------------ events

    def batch(self, result: Result, seconds: float) -> None:
        """One engine run (every trigger, ``relay send``): rows by outcome, its duration, one log line."""
        self._count(result.route, (("received", result.received), ("landed", result.landed),
                                   ("rejected", result.rejected), ("failed", result.failed),
                                   ("time_out_of_window", result.time_out_of_window)))
        self.batch_duration.record(seconds * 1000.0, {"route": result.route})
        self._line("batch", route=result.route, batch_id=result.batch_id, received=result.received,
                   landed=result.landed, rejected=result.rejected, parked=result.parked,
                   deadlettered=result.deadlettered, failed=result.failed,
                   requests=result.requests, ms=round(seconds * 1000.0, 1))

    def replay_batch(self, route: str, batch_id: str, rows: int, landed: int, requeued: int, deadlettered: int,
                     seconds: float) -> None:
        """One replay of a parked batch: the batch duration and log line every path has (its rows are
        counted as replayed / requeued / dead-lettered, not received a second time)."""
        self.batch_duration.record(seconds * 1000.0, {"route": route})
        self._line("batch", route=route, batch_id=batch_id, stage="replay", received=rows, landed=landed,
                   rejected=0, parked=requeued, deadlettered=deadlettered, failed=0, requests=None,
                   ms=round(seconds * 1000.0, 1))

    def upload(self, stream: str, result: UploadResult, gzip_bytes: int, seconds: float) -> None:
        klass = status_class(result.status)
        self.uploads.add(1, {"stream": stream, "status_class": klass, "failure": result.failure or "none"})
        self.upload_duration.record(seconds * 1000.0, {"stream": stream, "status_class": klass})
        self.bytes.add(gzip_bytes, {"stream": stream, "outcome": "uploaded_gzip" if result.landed else "failed_gzip"})

    def parked(self, route: str, rows: int, nbytes: int, failure: str) -> None:
        self.rows.add(rows, {"route": route, "outcome": "parked"})
        self.bytes.add(nbytes, {"route": route, "outcome": "parked"})
        self._line("parked", route=route, rows=rows, bytes=nbytes, failure=failure)

    def deadlettered(self, route: str, rows: int, nbytes: int, failure: str, source: str) -> None:
        # stage "upload": refused at first upload (counts beside landed/parked); "replay": out of parked rows
        stage = "upload" if source == "upload" else "replay"
        self.rows.add(rows, {"route": route, "outcome": "deadlettered", "stage": stage})
        self.bytes.add(nbytes, {"route": route, "outcome": "deadlettered"})
        self._line("deadlettered", route=route, rows=rows, bytes=nbytes, failure=failure, source=source)

    def replayed(self, route: str, rows: int, nbytes: int, lag_seconds: float | None) -> None:
        self.rows.add(rows, {"route": route, "outcome": "replayed"})
        self.bytes.add(nbytes, {"route": route, "outcome": "replayed"})
        if lag_seconds is not None:
            self.replay_lag.record(lag_seconds, {"route": route})
        self._line("replayed", route=route, rows=rows, bytes=nbytes, lag_s=lag_seconds)

    def requeued(self, route: str, rows: int, attempt: int, failure: str, age_s: float | None = None) -> None:
        """``age_s``: seconds since the batch first failed (the parked-backlog alert reads it)."""
        self.rows.add(rows, {"route": route, "outcome": "requeued"})
        self._line("requeued", route=route, rows=rows, attempt=attempt, failure=failure,
                   age_s=None if age_s is None else round(age_s, 1))

