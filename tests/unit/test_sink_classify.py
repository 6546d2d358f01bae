"""Errors sorted by class (DESIGN 4, 5): 400/413 permanent, 401 new token, 403 names the missing role,
429/5xx/408/connection transient with Retry-After honoured.

Fakes sit below the network boundary only: azure-core's own exception types around a small fake
response carrying status_code, reason, headers and a text()/body().
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import orjson
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.utils import CaseInsensitiveDict

import shared.sink as sink_module
from shared.sink import classify, parse_retry_after

DCR = "dcr-682fbae20f3428bcec4c117c57bea18d"
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
           409: "Conflict", 413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class FakeResponse:
    """What azure-core reads from a transport response when it builds an HttpResponseError."""

    def __init__(self, status_code: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.reason = REASONS.get(status_code, "Unknown")
        self.headers = CaseInsensitiveDict(headers or {})
        self.content_type = "application/json"
        self.request = None
        self._body = body

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode(encoding or "utf-8")


def service_error(status: int, code: str | None = None, message: str | None = None,
                  headers: dict[str, str] | None = None, cls: type[HttpResponseError] = HttpResponseError):
    """An SDK exception for a service answer with the Logs Ingestion error body {"error":{"code","message"}}."""
    body = orjson.dumps({"error": {"code": code, "message": message}}) if code or message else b""
    return cls(response=FakeResponse(status, body, headers))


def attempt_of(error: Exception):
    outcome = classify(error, DCR)
    return (outcome.status, outcome.failure, outcome.permanent, outcome.message, outcome.retry_after)


# --- HTTP answers ------------------------------------------------------------------------------------------


def test_400_is_a_permanent_bad_request_with_the_service_reason():
    """GIVEN 400 InvalidStream WHEN classified THEN bad_request, permanent, the service's code and message kept."""
    error = service_error(400, "InvalidStream", "Stream Custom-X is not declared")

    assert attempt_of(error) == (400, "bad_request", True, "InvalidStream: Stream Custom-X is not declared", None)


def test_413_is_permanent_too_large():
    """GIVEN 413 ContentLengthLimitExceeded WHEN classified THEN too_large, permanent (never retried as is)."""
    error = service_error(413, "ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes")

    assert attempt_of(error) == (
        413, "too_large", True, "ContentLengthLimitExceeded: Maximum allowed content length: 1048576 bytes", None
    )


def test_403_names_the_missing_role_and_the_dcr():
    """GIVEN 403 OperationFailed WHEN classified THEN forbidden, NOT permanent (DESIGN 4: a role assignment takes
    up to 30 minutes to propagate, so it is parked and replayed within a grace window), and the message says
    which role is missing on which DCR and that assignments take up to 30 minutes."""
    error = service_error(403, "OperationFailed", "The authentication token provided does not have access")

    status, failure, permanent, message, retry_after = attempt_of(error)

    assert (status, failure, permanent, retry_after) == (403, "forbidden", False, None)
    assert message == (
        f"the relay's identity lacks the 'Monitoring Metrics Publisher' role on DCR {DCR} "
        "(a new role assignment can take up to 30 minutes to take effect): "
        "OperationFailed: The authentication token provided does not have access"
    )


@pytest.mark.parametrize("cls", [HttpResponseError, ResourceNotFoundError])
def test_404_is_permanent_not_found(cls):
    """GIVEN 404 (as the SDK maps it, ResourceNotFoundError, or plain) WHEN classified THEN not_found, permanent,
    and the message points at the route."""
    error = service_error(404, "NotFound", "Data collection rule not found", cls=cls)

    assert attempt_of(error) == (
        404, "not_found", True, "unknown DCR or stream (check the route): NotFound: Data collection rule not found", None
    )


@pytest.mark.parametrize("cls", [HttpResponseError, ClientAuthenticationError])
def test_401_is_unauthorized_and_not_permanent(cls):
    """GIVEN 401 WHEN classified THEN unauthorized and not permanent (the sink gets a new token once)."""
    error = service_error(401, "InvalidToken", "Token expired", cls=cls)

    assert attempt_of(error) == (401, "unauthorized", False, "token refused: InvalidToken: Token expired", None)


def test_429_with_retry_after():
    """GIVEN 429 with Retry-After: 7 WHEN classified THEN throttled, transient, wait 7 s."""
    error = service_error(429, "TooManyRequests", "Rate limit", headers={"Retry-After": "7"})

    assert attempt_of(error) == (429, "throttled", False, "TooManyRequests: Rate limit", 7.0)


def test_429_without_retry_after():
    """GIVEN 429 without Retry-After (the SDK would not retry it) WHEN classified THEN still throttled, transient,
    with no server-given wait (the sink backs off itself)."""
    assert attempt_of(service_error(429)) == (429, "throttled", False, "Operation returned an invalid status 'Too Many Requests'", None)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_transient_server_error(status):
    """GIVEN 500/502/503/504 WHEN classified THEN server_error, transient."""
    assert attempt_of(service_error(status)) == (
        status, "server_error", False, f"Operation returned an invalid status '{REASONS[status]}'", None
    )


def test_503_keeps_its_retry_after():
    """GIVEN 503 with Retry-After: 12 WHEN classified THEN the wait is kept."""
    assert classify(service_error(503, headers={"Retry-After": "12"}), DCR).retry_after == 12.0


def test_408_is_a_transient_timeout():
    """GIVEN 408 WHEN classified THEN timeout, transient."""
    assert attempt_of(service_error(408)) == (408, "timeout", False, "Operation returned an invalid status 'Request Timeout'", None)


def test_other_4xx_is_permanent_rejected():
    """GIVEN 409 without Retry-After WHEN classified THEN rejected, permanent."""
    assert attempt_of(service_error(409, "Conflict", "No")) == (409, "rejected", True, "Conflict: No", None)


def test_other_4xx_with_retry_after_is_throttled():
    """GIVEN 409 with retry-after-ms WHEN classified THEN throttled, transient, with the wait."""
    assert attempt_of(service_error(409, headers={"retry-after-ms": "1500"}))[1:] == (
        "throttled", False, "Operation returned an invalid status 'Conflict'", 1.5
    )


def test_error_text_is_bounded():
    """GIVEN a service message of 5,000 characters WHEN classified THEN the message kept is 500 characters."""
    error = service_error(400, "E", "m" * 5000)

    assert len(classify(error, DCR).message) == 500


# --- no HTTP answer ---------------------------------------------------------------------------------------


def test_service_request_error_is_a_connection_failure():
    """GIVEN ServiceRequestError (nothing was sent) WHEN classified THEN connection, transient."""
    assert attempt_of(ServiceRequestError("Failed to establish a new connection")) == (
        None, "connection", False, "ServiceRequestError: request not sent", None
    )


def test_service_request_timeout_is_a_connection_failure():
    """GIVEN ServiceRequestTimeoutError (connect timeout) WHEN classified THEN connection, transient."""
    assert attempt_of(ServiceRequestTimeoutError("connect timeout"))[:3] == (None, "connection", False)


def test_service_response_error_connection_reset():
    """GIVEN ServiceResponseError 'Connection aborted' WHEN classified THEN connection, transient."""
    assert attempt_of(ServiceResponseError("Connection aborted.")) == (
        None, "connection", False, "ServiceResponseError: no complete response", None
    )


@pytest.mark.parametrize("error", [ServiceResponseTimeoutError("read"),
                                   ServiceResponseError("Read timed out. (read timeout=30)")],
                         ids=["timeout-class", "timed-out-message"])
def test_service_response_timeout(error):
    """GIVEN a response timeout (by class or by message) WHEN classified THEN timeout, transient."""
    assert attempt_of(error)[:3] == (None, "timeout", False)


def test_credential_failure_without_a_response():
    """GIVEN ClientAuthenticationError with no response (no token could be had) WHEN classified THEN credential."""
    assert attempt_of(ClientAuthenticationError(message="ManagedIdentityCredential authentication unavailable")) == (
        None, "credential", False, "could not get a token: ClientAuthenticationError", None
    )


def test_other_exceptions_are_not_swallowed():
    """GIVEN an exception that is no SDK transport/HTTP error WHEN classified THEN it is raised again."""
    with pytest.raises(KeyError):
        classify(KeyError("bug"), DCR)


# --- Retry-After parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "0"}, 0.0),
    ({"Retry-After": "2.5"}, 2.5),
    ({"Retry-After": "-3"}, 0.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"x-ms-retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "100", "Retry-After": "9"}, 0.1),
], ids=["seconds", "lowercase", "fraction", "negative", "ms", "x-ms-ms", "ms-wins"])
def test_parse_retry_after_numbers(headers, expected):
    """GIVEN Retry-After seconds or retry-after-ms WHEN parsed THEN seconds to wait (never negative)."""
    assert parse_retry_after(CaseInsensitiveDict(headers)) == expected


def test_parse_retry_after_http_date(monkeypatch):
    """GIVEN an HTTP-date 90 s after now WHEN parsed THEN 90 s."""
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(sink_module.time, "time", lambda: now.timestamp())

    assert parse_retry_after({"Retry-After": "Wed, 01 May 2024 10:01:30 GMT"}) == 90.0


def test_parse_retry_after_http_date_in_the_past_is_zero():
    """GIVEN an HTTP-date in the past WHEN parsed THEN 0 (retry now)."""
    past = format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True)

    assert parse_retry_after({"Retry-After": past}) == 0.0


@pytest.mark.parametrize("headers", [
    {"Retry-After": "soon"}, {"Retry-After": ""}, {"Retry-After": "nan"}, {"Retry-After": "inf"},
    {"retry-after-ms": "NaN"}, {}, None, "Retry-After: 5",
], ids=["word", "empty", "nan", "inf", "ms-nan", "none-set", "no-headers", "not-a-mapping"])
def test_parse_retry_after_garbage_is_none(headers):
    """GIVEN garbage, non-finite numbers (time.sleep(nan) raises) or no headers WHEN parsed THEN None."""
    assert parse_retry_after(headers) is None


def test_parse_retry_after_skips_garbage_for_the_next_header():
    """GIVEN a garbage retry-after-ms and a valid Retry-After WHEN parsed THEN the valid one is used."""
    assert parse_retry_after({"retry-after-ms": "soon", "Retry-After": "4"}) == 4.0


def test_403_is_permanent_when_the_grace_window_is_off():
    """GIVEN RELAY_FORBIDDEN_GRACE_MINUTES=0 (forbidden_transient=False) WHEN a 403 is classified THEN it is
    permanent: dead-lettered at once with the role hint."""
    error = service_error(403, "OperationFailed", "The authentication token provided does not have access")

    outcome = classify(error, DCR, forbidden_transient=False)

    assert (outcome.failure, outcome.permanent) == ("forbidden", True)
    assert "Monitoring Metrics Publisher" in outcome.message
