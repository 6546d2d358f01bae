"""The README's first command: run the relay locally on embedded defaults and show rows land.

Starts the Logs Ingestion emulator (HTTPS, local CA) with the relay's own DCR, hosts
the app's HTTP functions on loopback, pushes the samples in ``tests/events`` through
every trigger, and prints the rows each table received and what the emulator dropped.
``--serve`` keeps everything running for curl (``make serve``).

Local conventions of Azure Functions: Azurite on its usual ports (10000-10002) when they
are free (it says which it used when not), a ``local.settings.json`` matching what runs
(written only when absent or written by an earlier run: never one the user wrote), and
the emulator recorded in ``.emulator/emulator.json`` so ``relay emulator fault`` finds
it. Ctrl-C, SIGTERM, SIGHUP or the parent (make) going away stop every child process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.azurite import USUAL_PORTS
from shared.signatures import github_signature

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
STATE = ROOT / ".emulator"
LOCAL_TOKEN = "local-emulator-token"


@dataclass
class LocalRun:
    """What the steps share: the emulator, Azurite, the function host and the settings in force."""

    emulator: Any
    azurite: Any
    host_url: str
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)


def local_settings(emulator: Any, azurite: Any) -> dict[str, str]:
    """local.settings.sample.json, pointed at this run's emulator and Azurite."""
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    values.update({
        "RelayStorage": azurite.connection_string,
        "AzureWebJobsStorage": azurite.connection_string,
        "LOGS_INGESTION_ENDPOINT": emulator.endpoint,
        "RELAY_CA_BUNDLE": str(emulator.ca_path),
        "DCR_IMMUTABLE_ID": emulator.dcr_ids["relay"],
        "RELAY_STATIC_TOKEN": LOCAL_TOKEN,
        "RELAY_CONFIG": str(ROOT / "relay.yaml"),
    })
    return values


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def http_samples(run: LocalRun) -> None:
    """Webhooks: GitHub (signed), Event Grid (handshake + events), CloudEvents, NDJSON app logs (gzip)."""
    secret = run.env["GITHUB_WEBHOOK_SECRET"]
    samples: list[tuple[str, str, dict[str, str], bool]] = [
        ("github", "github_push.json", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}, False),
        ("github", "github_issues_opened.json", {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-2"}, False),
        ("eventgrid", "eventgrid_subscription_validation.json", {"aeg-event-type": "SubscriptionValidation"}, False),
        ("eventgrid", "eventgrid_blob_created.json", {"aeg-event-type": "Notification"}, False),
        ("cloudevents", "cloudevent_structured.json", {"Content-Type": "application/cloudevents+json"}, False),
        ("cloudevents", "cloudevents_batch.json", {"Content-Type": "application/cloudevents-batch+json"}, False),
        ("applogs", "applogs.ndjson", {"Content-Type": "application/x-ndjson"}, True),
    ]
    for route, name, headers, compress in samples:
        body = (EVENTS / name).read_bytes()
        headers = {"Content-Type": "application/json", **headers}
        if route == "github":
            headers["X-Hub-Signature-256"] = github_signature(secret, body)
        if compress:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        status, answer = post(f"{run.host_url}/api/ingest/{route}", body, headers)
        counts = {k: answer[k] for k in ("accepted", "rejected", "parked") if k in answer}
        shown = counts or {k: v for k, v in answer.items() if k != "request_id"}
        run.lines.append(f"  POST /api/ingest/{route:<12} {name:<42} -> {status} {json.dumps(shown)}")


def _user_function(name: str) -> Callable[..., Any]:
    """The decorated function ``name`` of the app, as the host would call it."""
    import function_app

    function_app.app.functions_bindings = None
    return next(f.get_user_function() for f in function_app.app.get_functions() if f.get_function_name() == name)


#: Files dropped into the watched container: (blob path, sample in tests/events, gzip it).
BLOB_SAMPLES = [
    ("applogs/2024/05/01/applogs.ndjson.gz", "applogs.ndjson", True),
    ("applogs/2024/05/01/applogs.csv", "applogs.csv", False),
    ("resourcelogs/keyvault/y=2024/m=05/d=01/h=10/PT1H.json", "resourcelogs_PT1H.json", False),
    ("resourcelogs/activity/2024-05-01.json.gz", "activitylog_administrative.json", True),
]


def blob_samples(run: LocalRun) -> None:
    """Blob trigger: drop files into Azurite and run blob_ingest on each. Locally there is no Event Grid,
    so the function gets the BlobClient the SDK-type binding would give it."""
    import contextlib

    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    from shared.blob_ingest import CheckpointStore

    container = run.env.get("RELAY_BLOB_CONTAINER") or "ingest"
    service = BlobServiceClient.from_connection_string(run.env["RelayStorage"])
    with contextlib.suppress(ResourceExistsError):
        service.create_container(container)
    blob_ingest = _user_function("blob_ingest")
    for path, name, compress in BLOB_SAMPLES:
        data = (EVENTS / name).read_bytes()
        client = service.get_blob_client(container, path)
        client.upload_blob(gzip.compress(data) if compress else data, overwrite=True)
        try:
            blob_ingest(client)
            outcome = "ok"
        except Exception as error:  # shown, not fatal: the other samples still run
            outcome = f"raised {type(error).__name__}: {error}"
        progress = CheckpointStore.beside(client).load(f"{container}/{path}")
        counts = {k: getattr(progress, k) for k in ("landed", "rejected", "parked")} if progress else {}
        run.lines.append(f"  {container}/{path:<56} -> {outcome} {json.dumps(counts)}")


#: Diagnostic-settings events in one Event Hub batch (each body is a {"records": [...]} envelope).
EVENTHUB_SAMPLES = [
    "diag_keyvault_auditevent.json",
    "diag_appservice_httplogs.json",
    "diag_sql_security_audit.json",
    "diag_storage_blob_logs.json",
    "activitylog_administrative.json",
]


def eventhub_batch(bodies: list[bytes], hub: str, partition: str = "0", first_sequence: int = 1) -> list[Any]:
    """A cardinality-many batch as the worker builds it: real EventHubEvents sharing the trigger metadata."""
    from datetime import UTC, datetime, timedelta

    import azure.functions as func
    from azure.functions.meta import Datum

    now = datetime.now(UTC)
    metadata = {
        "PartitionContext": Datum(json.dumps({"EventHubName": hub, "ConsumerGroup": "$Default",
                                              "PartitionId": partition}), "json"),
        "PropertiesArray": Datum(json.dumps([{"source": "make run"} for _ in bodies]), "json"),
    }
    return [
        func.EventHubEvent(body=body, trigger_metadata=metadata, enqueued_time=now + timedelta(milliseconds=i),
                           partition_key=None, sequence_number=first_sequence + i,
                           offset=str(1024 * (first_sequence + i)), iothub_metadata=None)
        for i, body in enumerate(bodies)
    ]


def eventhub_samples(run: LocalRun) -> None:
    """Event Hub trigger: one batch of diagnostic-settings events (Key Vault, App Service, SQL, Storage,
    Activity Log) through eventhub_ingest, as the host hands it over."""
    hub = run.env.get("RELAY_EVENTHUB_NAME") or "relay-events"
    batch = eventhub_batch([(EVENTS / name).read_bytes() for name in EVENTHUB_SAMPLES], hub)
    tables = ("ResourceLogsArchive_CL", "KeyVaultAudit_CL", "AzureResourceLogs_CL")  # routed per record

    def counts() -> list[int]:
        return [len(run.emulator.rows(t)) if t in run.emulator.tables() else 0 for t in tables]

    before = counts()
    try:
        _user_function("eventhub_ingest")(batch)
        outcome = "returned"
    except Exception as error:  # shown, not fatal
        outcome = f"raised {type(error).__name__}: {error}"
    landed = ", ".join(f"{after - was} in {t}" for t, was, after in zip(tables, before, counts(), strict=True))
    run.lines.append(f"  {hub} partition 0 sequence 1-{len(batch)}: {len(batch)} events "
                     f"({', '.join(n.removesuffix('.json') for n in EVENTHUB_SAMPLES)}) -> {outcome}, "
                     f"rows routed per record: {landed}")


def poison_sample(run: LocalRun) -> None:
    """The service throttles for a while: the batch is parked (202), then replayed once it heals."""
    from shared.runtime import get_relay

    # A Retry-After beyond the in-line retry budget parks at once instead of holding the sender.
    run.emulator.add_fault(stream="Custom-AppLogs", status=429, retry_after=600, count=1000)
    events = [{"timestamp": "2024-05-01T11:00:00Z", "level": "error", "message": f"during an outage #{n}",
               "service": "orders-api", "status": 503} for n in range(3)]
    status, answer = post(f"{run.host_url}/api/ingest/applogs", json.dumps(events).encode(),
                          {"Content-Type": "application/json"})
    run.emulator.clear_faults()
    run.lines.append(f"  service answers 429 (Retry-After 600): POST /api/ingest/applogs -> {status} "
                     f"{json.dumps({k: answer.get(k) for k in ('accepted', 'parked')})}")
    relay = get_relay()
    if relay.poison is None or relay.replayer is None:
        run.lines.append("  (no RelayStorage: nothing was parked)")
        return
    for batch in relay.poison.list_parked():
        result = relay.replayer.replay(batch, force=True)  # what `relay poison replay` does
        run.lines.append(f"  service healed: replayed parked batch {batch.id} -> {result.status}, "
                         f"{result.landed} row(s) landed")


#: Steps of the local run, in order; each pushes samples through one kind of trigger.
STEPS: list[tuple[str, Callable[[LocalRun], None]]] = [
    ("HTTP trigger (webhooks)", http_samples),
    ("Blob trigger (files dropped in storage)", blob_samples),
    ("Event Hub trigger (diagnostic settings batch)", eventhub_samples),
    ("Poison store (an outage, then replay)", poison_sample),
]


def print_tables(emulator: Any) -> None:
    print("\nRows in the emulator's Log Analytics tables:")
    for table in emulator.tables():
        rows = emulator.rows(table)
        print(f"\n  {table}: {len(rows)} row(s)")
        for row in rows[:3]:
            text = json.dumps(row, default=str)
            print(f"    {text[:160]}{'...' if len(text) > 160 else ''}")
    drops = emulator.drops()
    print(f"\nValues the service would have dropped (emulator drop report): {len(drops)}")
    for drop in drops[:10]:
        print(f"  {drop}")


#: Marks a local.settings.json this script wrote, so a later run may rewrite it. A file without it is the
#: user's own and is never overwritten.
WRITTEN_BY_KEY = "_writtenBy"
WRITTEN_BY = ("make serve (devtools/run_local.py): rewritten on each run to match the running emulator and "
              "Azurite; delete this key to keep your own edits")


FUNC_START_DISABLED = {"AzureWebJobs.blob_ingest.Disabled": "true", "AzureWebJobs.eventhub_ingest.Disabled": "true"}


def pick_ports(wanted: dict[str, int], is_free: Callable[[int], bool]) -> tuple[dict[str, int], list[str]]:
    """Each wanted port if it is free, else 0 (the OS picks one), with a note for each port given up."""
    chosen: dict[str, int] = {}
    notes: list[str] = []
    for name, port in wanted.items():
        if port and not is_free(port):
            chosen[name] = 0
            notes.append(f"{name.lower()} port {port} is taken")
        else:
            chosen[name] = port
    return chosen, notes


def write_local_settings(path: Path, values: dict[str, str]) -> str:
    """Write ``path`` (Functions' local.settings.json) unless the user wrote it; returns what was done."""
    if path.exists():
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            current = None
        if not isinstance(current, dict) or WRITTEN_BY_KEY not in current:
            return f"{path} is yours (no {WRITTEN_BY_KEY} key): left unchanged"
        action = "rewrote"
    else:
        action = "wrote"
    document = {WRITTEN_BY_KEY: WRITTEN_BY, "IsEncrypted": False, "Values": values}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return f"{action} {path}"


def write_emulator_runtime(state_dir: Path, emulator: Any) -> Path:
    """What `relay emulator serve` writes, so `relay emulator fault|clear-faults|reset` find this emulator."""
    from emulator.cli import RUNTIME_FILE

    runtime = state_dir / RUNTIME_FILE
    runtime.write_text(json.dumps({"endpoint": emulator.endpoint, "ca": str(Path(emulator.ca_path).resolve()),
                                   "pid": os.getpid(), "dcrs": emulator.dcr_ids}, indent=2) + "\n",
                       encoding="utf-8")
    return runtime


def remove_emulator_runtime(runtime: Path) -> None:
    """Forget the runtime file if it is still ours (another emulator may have replaced it)."""
    try:
        if json.loads(runtime.read_text(encoding="utf-8")).get("pid") == os.getpid():
            runtime.unlink()
    except (OSError, ValueError):
        pass


class Stop(Exception):
    """SIGTERM (or SIGHUP) arrived: unwind so every child process is stopped."""


def _raise_stop(signum: int, _frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def wait_until_stopped(parent: int) -> None:
    """Serve until Ctrl-C / SIGTERM, or until the parent (make) is gone: never leave children behind."""
    stopped = threading.Event()
    while not stopped.wait(0.5):
        if os.getppid() != parent:
            raise Stop("parent process exited")


def _ports(text: str) -> dict[str, int]:
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3 or not all(0 <= p <= 65535 for p in parts):
        raise argparse.ArgumentTypeError("give three ports: BLOB,QUEUE,TABLE (0 = any free port)")
    return dict(zip(("Blob", "Queue", "Table"), parts, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep the relay and emulator running for curl")
    parser.add_argument("--port", type=int, default=7071, help="port of the local function host (default 7071)")
    parser.add_argument("--emulator-port", type=int, default=4443)
    parser.add_argument("--azurite-ports", type=_ports, default=dict(USUAL_PORTS), metavar="BLOB,QUEUE,TABLE",
                        help="Azurite's ports when free (default Azurite's usual 10000,10001,10002)")
    parser.add_argument("--state-dir", type=Path, default=STATE, help="emulator state (default .emulator)")
    parser.add_argument("--settings-file", type=Path, default=ROOT / "local.settings.json",
                        help="local.settings.json to write for relay commands and func start (never one you wrote)")
    parser.add_argument("--no-samples", action="store_true", help="start everything but push no samples")
    args = parser.parse_args(argv)

    from devtools.azurite import Azurite, port_is_free
    from devtools.localhost import FunctionHost
    from emulator.server import Emulator

    parent = os.getppid()
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    azurite = emulator = host = None
    runtime: Path | None = None
    try:
        ports, notes = pick_ports(args.azurite_ports, port_is_free)
        azurite = Azurite(ports=ports).start()
        if notes:
            print(f"Azurite's usual ports are not all free ({'; '.join(notes)}): it listens on "
                  f"blob {azurite.urls['Blob']}, queue {azurite.urls['Queue']}, table {azurite.urls['Table']}")
        emulator_port = args.emulator_port
        if not port_is_free(emulator_port):
            print(f"emulator port {emulator_port} is taken: the emulator takes a free port")
            emulator_port = 0
        args.state_dir.mkdir(parents=True, exist_ok=True)
        emulator = Emulator([ROOT / "infra" / "dcr" / "relay.json"], args.state_dir, port=emulator_port,
                            token=LOCAL_TOKEN).start()
        emulator.reset()
        runtime = write_emulator_runtime(args.state_dir, emulator)
        env = local_settings(emulator, azurite)
        # for `func start` beside this run: no Event Grid fires the blob trigger and no Event Hubs namespace
        # runs locally, so the host would only log listener errors for these two
        settings_note = write_local_settings(args.settings_file, {**env, **FUNC_START_DISABLED})
        os.environ.update(env)
        import function_app
        from shared.runtime import get_relay, reset_relay

        reset_relay()
        relay = get_relay()
        if relay.poison is not None:  # as the deployment does: `relay poison list` finds an empty store, not none
            relay.poison.ensure()
        host = FunctionHost(function_app.app, port=args.port).start()
        print(f"Logs Ingestion emulator: {emulator.endpoint}  (CA: {emulator.ca_path}, state: {args.state_dir})")
        print(f"Azurite (blob, queue):   {azurite.blob_url}  {azurite.queue_url}  (pid {azurite.pid})")
        print(f"Relay HTTP functions:    {host.url}/api/ingest/{{route}}   health: {host.url}/api/health")
        print(f"Settings: {settings_note}", flush=True)
        run = LocalRun(emulator, azurite, host.url, env)
        steps = [] if args.no_samples else STEPS
        for title, step in steps:
            run.lines.append(f"\n{title}:")
            step(run)
            print("\n".join(run.lines))
            run.lines.clear()
        if steps:
            print_tables(emulator)
        if args.serve:
            print(f"\nServing. Try:\n  curl -s -X POST {host.url}/api/ingest/applogs -H 'Content-Type: application/json' "
                  "-d '{\"level\":\"info\",\"message\":\"hello\",\"timestamp\":\"2024-05-01T10:00:00Z\"}'\n"
                  "  .venv/bin/relay emulator rows AppLogs_CL\n  .venv/bin/relay poison list\n"
                  "Ctrl-C (or SIGTERM) stops everything.", flush=True)
            wait_until_stopped(parent)
    except (KeyboardInterrupt, Stop) as why:
        print(f"\nstopping ({why or 'SIGINT'})", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if host is not None:
            host.stop()
        if emulator is not None:
            emulator.stop()
        if runtime is not None:
            remove_emulator_runtime(runtime)
        if azurite is not None:
            azurite.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
