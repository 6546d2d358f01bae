"""The Logs Ingestion emulator in its own process, so its work does not share the GIL with the client measured.

``EmulatorProcess(dcr_files, state_dir, token)`` starts ``emulator.server.Emulator`` in a
spawned child and exposes the parts the benchmarks use: ``endpoint``, ``ca_path``,
``dcr_ids``, ``add_fault(**rule)``, ``reset()``, ``count(table)``, ``requests()``, ``stop()``.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def _serve(conn: Connection, dcr_files: list[str], state_dir: str, token: str | None) -> None:
    from emulator.server import Emulator

    emulator = Emulator(dcr_files, state_dir, port=0, token=token).start()
    conn.send({"endpoint": emulator.endpoint, "ca_path": str(emulator.ca_path), "dcr_ids": emulator.dcr_ids})
    try:
        while True:
            command, argument = conn.recv()
            if command == "stop":
                break
            try:
                if command == "add_fault":
                    conn.send(("ok", emulator.add_fault(**argument)))
                elif command == "reset":
                    emulator.reset()
                    conn.send(("ok", None))
                elif command == "count":
                    conn.send(("ok", len(emulator.rows(argument)) if argument in emulator.tables() else 0))
                elif command == "requests":
                    conn.send(("ok", emulator.requests()))
                else:
                    conn.send(("error", f"unknown command {command!r}"))
            except Exception as error:  # report to the parent instead of dying silently
                conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        emulator.stop()
        conn.send(("stopped", None))


class EmulatorProcess:
    def __init__(self, dcr_files: list[Path], state_dir: Path, token: str | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, [str(f) for f in dcr_files], str(state_dir), token),
            name="bench-emulator", daemon=True,
        )
        self._process.start()
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("the emulator process did not start within 60 s")
        info = self._conn.recv()
        self.endpoint: str = info["endpoint"]
        self.ca_path = Path(info["ca_path"])
        self.dcr_ids: dict[str, str] = info["dcr_ids"]

    def _call(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator {command}: {value}")
        return value

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        return self._call("add_fault", rule)

    def reset(self) -> None:
        self._call("reset")

    def count(self, table: str) -> int:
        return self._call("count", table)

    def requests(self) -> list[dict[str, Any]]:
        return self._call("requests")

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("stop", None))
                self._conn.poll(30)
            except (BrokenPipeError, EOFError, OSError):
                pass
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
