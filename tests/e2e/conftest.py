"""Helpers for calling the decorated HTTP functions with real ``func.HttpRequest`` objects."""

from __future__ import annotations

import gzip
from typing import Any

import azure.functions as func
import orjson
import pytest

from tests.conftest import user_function


class HttpCaller:
    """POST a body to /api/ingest/{route} the way the Functions host would hand it over."""

    def __init__(self) -> None:
        self.ingest = user_function("http_ingest")
        self.health = user_function("health")

    def post(self, route: str, body: bytes | Any, headers: dict[str, str] | None = None,
             gzipped: bool = False, method: str = "POST") -> tuple[int, dict[str, Any], dict[str, str]]:
        if not isinstance(body, bytes):
            body = orjson.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        request = func.HttpRequest(method, f"http://localhost/api/ingest/{route}", headers=headers,
                                   route_params={"route": route}, body=body)
        response = self.ingest(request)
        return response.status_code, orjson.loads(response.get_body() or b"{}"), dict(response.headers)


@pytest.fixture
def http(relay_env: dict[str, str]) -> HttpCaller:
    return HttpCaller()
