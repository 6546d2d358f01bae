"""The README's first command: run the relay locally on embedded defaults and show rows land.

Starts the Logs Ingestion emulator (HTTPS, local CA) with the relay's own DCR, hosts
the app's HTTP functions on loopback, pushes the samples in ``tests/events`` through
every trigger, and prints the rows each table received and what the emulator dropped.
``--serve`` keeps everything running for curl.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    table = "AzureResourceLogs_CL"
    before = len(run.emulator.rows(table)) if table in run.emulator.tables() else 0
    try:
        _user_function("eventhub_ingest")(batch)
        outcome = "returned"
    except Exception as error:  # shown, not fatal
        outcome = f"raised {type(error).__name__}: {error}"
    after = len(run.emulator.rows(table)) if table in run.emulator.tables() else 0
    run.lines.append(f"  {hub} partition 0 sequence 1-{len(batch)}: {len(batch)} events "
                     f"({', '.join(n.removesuffix('.json') for n in EVENTHUB_SAMPLES)}) -> {outcome}, "
                     f"{after - before} row(s) in {table}")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep the relay and emulator running for curl")
    parser.add_argument("--port", type=int, default=7071, help="port of the local function host (default 7071)")
    parser.add_argument("--emulator-port", type=int, default=4443)
    args = parser.parse_args(argv)

    from devtools.azurite import Azurite
    from devtools.localhost import FunctionHost
    from emulator.server import Emulator

    azurite = Azurite().start()
    emulator = Emulator([ROOT / "infra" / "dcr" / "relay.json"], STATE, port=args.emulator_port,
                        token=LOCAL_TOKEN).start()
    emulator.reset()
    env = local_settings(emulator, azurite)
    os.environ.update(env)
    import function_app
    from shared.runtime import reset_relay

    reset_relay()
    host = FunctionHost(function_app.app, port=args.port).start()
    print(f"Logs Ingestion emulator: {emulator.endpoint}  (CA: {emulator.ca_path})")
    print(f"Azurite (blob, queue):   {azurite.blob_url}  {azurite.queue_url}")
    print(f"Relay HTTP functions:    {host.url}/api/ingest/{{route}}   health: {host.url}/api/health")
    run = LocalRun(emulator, azurite, host.url, env)
    try:
        for title, step in STEPS:
            run.lines.append(f"\n{title}:")
            step(run)
            print("\n".join(run.lines))
            run.lines.clear()
        print_tables(emulator)
        if args.serve:
            print(f"\nServing. Try:\n  curl -s -X POST {host.url}/api/ingest/applogs -H 'Content-Type: application/json' "
                  "-d '{\"level\":\"info\",\"message\":\"hello\",\"timestamp\":\"2024-05-01T10:00:00Z\"}'\n"
                  f"  .venv/bin/relay emulator rows AppLogs_CL --state-dir .emulator\nCtrl-C stops.")
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    finally:
        host.stop()
        emulator.stop()
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
