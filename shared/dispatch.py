"""The dispatcher: gzip, upload and park one packed request; owns the upload pool.

Every request of every trigger and of replays goes out through :meth:`Dispatcher.upload`
(gzip with ISA-L, one call of the uploader, the observer told); first sends also go
through :meth:`Dispatcher.deliver`, which parks what did not land and says what became
of the rows (a :class:`Delivery`). Where a request runs is a policy of the caller: on
the calling thread (:meth:`deliver`: a lone webhook request, no thread hop) or on the
pool (:meth:`submit`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from isal import igzip

from .config import Route
from .packer import Request
from .records import Fate, Row
from .sink import UploadResult

log = logging.getLogger("relay.dispatch")
GZIP_LEVEL = 1  # ISA-L level 1: several times faster than zlib 6 at a similar ratio for JSON


class Uploader(Protocol):
    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        ...


class Parker(Protocol):
    """Keeps rows that could not be uploaded safe; raises if it cannot.

    Transient failures are parked for replay; permanent ones (``result.permanent``) are
    dead-lettered with their reason.
    """

    def park(self, route: Route, rows: Sequence[Row], result: UploadResult, batch_id: str) -> None:
        ...


class Observer(Protocol):
    """Told about every run and every upload (telemetry); must not raise into the relay."""

    def batch(self, result: Any, seconds: float) -> None: ...

    def upload(self, stream: str, result: UploadResult, gzip_bytes: int, seconds: float) -> None: ...


class NoObserver:
    def batch(self, result: Any, seconds: float) -> None:
        pass

    def upload(self, stream: str, result: UploadResult, gzip_bytes: int, seconds: float) -> None:
        pass


def gzip_body(body: bytes) -> bytes:
    return igzip.compress(body, compresslevel=GZIP_LEVEL)


@dataclass
class Delivery:
    """What became of one request's rows, and the failure to report when it did not land."""

    request: Request
    fate: Fate
    failure: dict[str, Any] | None = None


class Dispatcher:
    """Long-lived (one per worker process): the upload pool, the uploader and the parker."""

    def __init__(self, uploader: Uploader, parker: Parker | None = None, concurrency: int = 4,
                 observer: Observer | None = None):
        self.uploader = uploader
        self.parker = parker
        self.concurrency = concurrency
        self.observer: Observer = observer or NoObserver()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="relay-upload")

    def upload(self, route: Route | Any, request: Request) -> UploadResult:
        """Gzip (unless done) and send one request to ``route``'s endpoint, DCR and stream.

        ``route`` is anything with ``endpoint``, ``dcr`` and ``stream`` (a parked batch, on replay).
        An uploader that raises is a transient failure here, never an exception of the caller.
        """
        gzipped = request.gzipped if request.gzipped is not None else gzip_body(request.body or b"")
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            result = self.uploader.upload(route.endpoint, route.dcr, route.stream, gzipped, request_id)
        except Exception as error:  # the sink sorts service errors; anything else is treated as transient
            log.exception("upload of %d rows to %s failed unexpectedly", len(request), route.stream)
            result = UploadResult(request_id, 1, None, "error", False, f"{type(error).__name__}: {error}")
        try:
            self.observer.upload(route.stream, result, len(gzipped), time.perf_counter() - started)
        except Exception:
            log.exception("recording upload metrics failed")
        return result

    def deliver(self, route: Route, request: Request, batch_id: str) -> Delivery:
        """Upload one request; park its rows if it did not land. Runs on any thread."""
        result = self.upload(route, request)
        if result.landed:
            return Delivery(request, Fate.LANDED)
        failure = {
            "request_id": result.request_id, "rows": len(request), "class": result.failure,
            "status": result.status, "permanent": result.permanent, "message": result.message,
            "refs": f"{request.refs[0]} .. {request.refs[-1]}",
        }
        parked = self._park(route, request.rows(), result, batch_id)
        failure["parked"] = parked
        if not parked:
            return Delivery(request, Fate.FAILED, failure)
        # the poison store dead-letters what can never land
        return Delivery(request, Fate.DEADLETTERED if result.permanent else Fate.PARKED, failure)

    def submit(self, route: Route, request: Request, batch_id: str) -> Future[Delivery]:
        return self._pool.submit(self.deliver, route, request, batch_id)

    def gzip_together(self, requests: Sequence[Request]) -> None:
        """Gzip requests on the pool while the caller waits, then let their bodies go: gzip runs on
        the idle cores instead of contending for the GIL with the normalization one by one."""
        if len(requests) == 1:
            requests[0].gzipped, requests[0].body = gzip_body(requests[0].body or b""), None
            return
        futures = [self._pool.submit(gzip_body, request.body or b"") for request in requests]
        for request, future in zip(requests, futures, strict=True):
            request.gzipped, request.body = future.result(), None

    def _park(self, route: Route, rows: list[Row], result: UploadResult, batch_id: str) -> bool:
        if self.parker is None:
            return False
        try:
            self.parker.park(route, rows, result, batch_id)
            return True
        except Exception:  # the caller answers so the sender retries; the reason is logged here
            log.exception("parking %d rows of route %s (%s .. %s) failed", len(rows), route.name,
                          rows[0].ref if rows else "", rows[-1].ref if rows else "")
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=True)
