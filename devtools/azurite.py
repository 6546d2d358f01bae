"""Start Azurite (the npm storage emulator) on loopback ports and wait until it listens.

Used by the local run and the tests: each gets its own in-memory instance, so runs
never share state and nothing needs cleaning up afterwards. Tests take free ports;
the local run asks for Azurite's usual ports (10000 blob, 10001 queue, 10002 table,
what ``UseDevelopmentStorage=true`` and Functions Core Tools expect) when they are free.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")


class AzuriteError(RuntimeError):
    pass


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise AzuriteError("azurite is not installed: run `bash scripts/bootstrap.sh` (installs it from npm)")


USUAL_PORTS: dict[str, int] = {"Blob": 10000, "Queue": 10001, "Table": 10002}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can something listen on ``host:port`` right now? (0 is always free: the OS picks.)"""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Azurite:
    """One in-memory Azurite process with blob, queue and table services (free ports unless given)."""

    def __init__(self, startup_seconds: float = 60.0, ports: dict[str, int] | None = None):
        self._startup_seconds = startup_seconds
        self._process: subprocess.Popen[str] | None = None
        self.ports = {"Blob": 0, "Queue": 0, "Table": 0, **(ports or {})}
        self.urls: dict[str, str] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Azurite:
        self._process = subprocess.Popen(
            [azurite_binary(), "--blobPort", str(self.ports["Blob"]), "--queuePort", str(self.ports["Queue"]),
             "--tablePort", str(self.ports["Table"]),
             "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + self._startup_seconds
        output: list[str] = []
        reader = threading.Thread(target=self._read, args=(output,), daemon=True)
        reader.start()
        while time.monotonic() < deadline:
            if {"Blob", "Queue", "Table"} <= set(self.urls):
                return self
            if self._process.poll() is not None:
                break
            reader.join(timeout=0.05)
        self.stop()
        raise AzuriteError("Azurite did not start: " + " | ".join(output[-10:]))

    def _read(self, output: list[str]) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            output.append(line.strip())
            match = _LISTENING.search(line)
            if match:
                self.urls[match.group(1)] = match.group(2).rstrip("/")

    @property
    def blob_url(self) -> str:
        return f"{self.urls['Blob']}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"{self.urls['Queue']}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};"
            f"TableEndpoint={self.urls['Table']}/{ACCOUNT};"
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
