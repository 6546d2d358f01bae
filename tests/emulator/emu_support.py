"""Helpers for the emulator's tests: DCR documents written by the tests and a raw HTTPS client.

A uniquely named module (not conftest) so test modules can import it however many
conftest.py files the whole test tree has.
"""

from __future__ import annotations

import gzip
import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[2]

RELAY_DCR = ROOT / "infra" / "dcr" / "relay.json"
API = "api-version=2023-01-01"
TEST_TOKEN = "test-token"  # any bearer token passes unless the emulator was given one


def columns(**types: str) -> list[dict[str, str]]:
    return [{"name": name, "type": typ} for name, typ in types.items()]


EVENT_COLUMNS = columns(
    TimeGenerated="datetime",
    Level="string",
    Message="string",
    Code="int",
    DurationMs="real",
    Ok="boolean",
    Props="dynamic",
)

TEST_DCR: dict[str, Any] = {
    "location": "eastus",
    "kind": "Direct",
    "properties": {
        "streamDeclarations": {
            "Custom-Typed": {
                "columns": columns(
                    TimeGenerated="datetime",
                    S="string",
                    I="int",
                    L="long",
                    R="real",
                    B="boolean",
                    D="dynamic",
                )
            },
            "Custom-Events": {"columns": EVENT_COLUMNS},
        },
        "dataFlows": [
            {"streams": ["Custom-Typed"], "outputStream": "Custom-Typed_CL", "transformKql": "source"},
            {"streams": ["Custom-Events"], "outputStream": "Custom-Events_CL", "transformKql": "source"},
            {
                "streams": ["Custom-Events"],
                "outputStream": "Custom-Where_CL",
                "transformKql": 'source | where Level != "debug" and (Code >= 500 or Ok == false)',
            },
            {
                "streams": ["Custom-Events"],
                "outputStream": "Custom-Extend_CL",
                "transformKql": (
                    "source | extend Upper = toupper(Message), Summary = strcat(Level, ':', tostring(Code)),"
                    " Half = DurationMs / 2, Region = tostring(Props.region),"
                    " FirstTag = tostring(Props['tags'][0]),"
                    " IsError = Code >= 500"
                ),
            },
            {
                "streams": ["Custom-Events"],
                "outputStream": "Custom-Project_CL",
                "transformKql": (
                    "source | project TimeGenerated, Msg = tolower(Message), CodeL = tolong(Code)"
                ),
            },
        ],
    },
}


def write_dcr(directory: Path, name: str = "test", document: dict[str, Any] | None = None) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(document or TEST_DCR), encoding="utf-8")
    return path


def single_flow_dcr(kql: str, cols: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A DCR with one stream (Custom-In) and one flow into Out_CL through ``kql``."""
    return {
        "properties": {
            "streamDeclarations": {"Custom-In": {"columns": cols or EVENT_COLUMNS}},
            "dataFlows": [{"streams": ["Custom-In"], "outputStream": "Custom-Out_CL", "transformKql": kql}],
        }
    }


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


class RawClient:
    """Plain http.client over TLS that trusts only the emulator's CA: no SDK behaviour in the way."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.context = ssl.create_default_context(cafile=str(emu.ca_path))
        self.dcr_id = next(iter(emu.dcr_ids.values()))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Reply:
        conn = http.client.HTTPSConnection("127.0.0.1", self.emu.port, context=self.context, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def ingest(
        self,
        stream: str,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        gzipped: bool = False,
        token: str | None = TEST_TOKEN,
        content_type: str | None = "application/json",
        dcr: str | None = None,
        query: str = API,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Reply:
        body = raw if raw is not None else json.dumps(payload).encode("utf-8")
        sent = {**(headers or {})}
        if gzipped:
            body = gzip.compress(body)
            sent["Content-Encoding"] = "gzip"
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if content_type is not None:
            sent["Content-Type"] = content_type
        path = f"/dataCollectionRules/{dcr or self.dcr_id}/streams/{stream}"
        if query:
            path += "?" + query
        return self.request("POST", path, body, sent, timeout=timeout)

    def control(self, method: str, path: str, payload: Any = None) -> Reply:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.request(method, f"/_emulator/{path}", body, headers)
