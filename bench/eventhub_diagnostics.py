"""Benchmark of issue 12, Event Hub shape: Azure diagnostic-log records through the Event Hub path, CPU only.

40,000 resource-log records of ~1.3 KB (``time`` with Azure's 7 fraction digits, ``resourceId``,
``category``, ``operationName``, ``resultType``, ``resultSignature``, ``durationMs`` (a string in
Key Vault's records, a number in Storage's), ``callerIpAddress``, ``correlationId``, an ``identity``
object, ``level``, ``location``, a ``properties`` object; Key Vault ``AuditEvent`` and Storage
``StorageRead``/``StorageWrite`` records, values varied per record, fixed seed), 20 records per
Event Hub event body as diagnostic settings write them (``{"records": [...]}``), 100 events per
trigger batch. Same bytes, same run:

* relay       - what the Event Hub trigger does per batch: ``handle_eventhub`` (trigger metadata,
                ``decode_event_body`` of each body, the router of the hub, ``Engine.run`` in the
                trigger's chunking) on a relay whose uploader accepts every request unsent (ISA-L
                gzip still runs in the upload threads);
* sdk         - the SDK sample path of an Event Hub function: stdlib ``json.loads`` of each body,
                its ``records``, a dict -> columns map (rename only, ``bench.cpu_path.dotted_mapper``:
                no coercion, no EventId, the time left as sent) with the rest in ``Properties``, the
                SDK's own ``_create_gzip_requests`` over the batch's records (under Python's default
                GC thresholds, as an SDK user's process has them);
* passthrough - ``orjson.loads`` of each body + ``orjson.dumps`` of its records + ISA-L gzip level 1,
                in as many requests as the relay sends, no per-field work;
* relay_no_event_id - the relay on the same route without ``id_column`` (what the SHA-256
                ``EventId`` of each record costs: the SDK path computes none);
* relay_default_gc - the relay under Python's default GC thresholds (what ``shared/gctune.py`` is worth).

The route is the shipped ``eventhub-diagnostics`` one (``time_field: time``, the resource-log
columns, ``extra: Properties``, ``id_column: EventId``) with its stream declared here (inline
``columns:``) and without ``Source: _eventhub``. The Event Hub trigger decodes bodies into dicts
whatever the route (``shared/eventhub_ingest.records``: on these records the typed path is the
slower), so the relay and its ablations take the fast path ``shared/fastpath.py``.

``--against DIR`` times the relay alone, this checkout against the code of the checkout DIR, on the
same batches (issue 12's Event Hub target is a multiple of the rate of commit 430b7a8, where it was
filed). The batches and the route are written to a temporary folder; each of the ``--repeat`` rounds
starts ``bench/tree_child.py eventhub`` of this checkout once per tree, taking turns (this tree, DIR,
this tree, ...), with ``PYTHONPATH`` and the working directory of that tree, so ``shared`` is its code
and the harness is the same. The child builds that tree's relay on a null uploader (``Engine`` or, before
the redesign, ``Processor``), applies its GC tuning, makes one untimed pass over every batch (what the
in-process run's first call does) and one timed pass. Each tree's best and median round are reported,
and the rows landed must be equal:

    python -m bench.eventhub_diagnostics --against ../old-430b7a8 --repeat 5
"""

from __future__ import annotations

import json
import random
import tempfile
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson
import yaml
from isal import igzip

from bench.common import (
    PYTHON_DEFAULT_GC,
    ROOT,
    against_lines,
    bench_main,
    contender_lines,
    in_turns,
    interleaved,
    load_average,
    ratio_line,
    say,
    with_gc_thresholds,
)
from bench.tree_child import HubEvent  # (the child's own, so both measure the same event type)

EVENTS = 40_000  # records (rows), not Event Hub events
RECORDS_PER_EVENT = 20
BATCH_EVENTS = 100
HUB = "insights-logs-bench"
SEED = 20261204
BASE = datetime(2026, 12, 3, 4, 20, 53, tzinfo=UTC)
COLUMNS = {"TimeGenerated": "datetime", "EventId": "string", "ResourceId": "string", "Category": "string",
           "OperationName": "string", "ResultType": "string", "Level": "string", "Location": "string",
           "CallerIpAddress": "string", "CorrelationId": "string", "DurationMs": "real", "Properties": "dynamic"}
MAP = {"ResourceId": "resourceId", "Category": "category", "OperationName": "operationName",
       "ResultType": "resultType", "Level": "level", "Location": "location", "CallerIpAddress": "callerIpAddress",
       "CorrelationId": "correlationId", "DurationMs": "durationMs"}
SUBSCRIPTIONS = ("0B1F6471-1BF0-4DDA-AEC3-CB9272F09590", "5D2A9C18-7E44-4B0F-9A61-3C8E2F7D1B05")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
LOCATIONS = ("eastus", "westeurope", "uksouth", "southeastasia")
VAULTS = ("KV-CONTOSO-PROD", "KV-CONTOSO-DEV", "KV-PAYMENTS", "KV-SHARED-SECRETS")
VAULT_OPERATIONS = (("SecretGet", "7.4"), ("SecretGet", "7.4"), ("SecretList", "7.4"), ("KeySign", "7.4"),
                    ("VaultGet", "2023-07-01"), ("CertificateGet", "7.3"))
SECRETS = ("orders-db-password", "payments-api-key", "storage-connection", "jwt-signing-key", "smtp-password")
ACCOUNTS = ("contosodata", "contosologs", "fabrikamexports")
BLOB_OPERATIONS = (("StorageRead", "GetBlob"), ("StorageRead", "GetBlobProperties"), ("StorageRead", "ListBlobs"),
                   ("StorageWrite", "PutBlob"), ("StorageWrite", "PutBlock"))
VAULT_CLIENTS = ("azsdk-python-keyvault-secrets/4.8.0 Python/3.11.9 (Linux-5.15.0-azure-x86_64-with-glibc2.35)",
                 "azsdk-net-Security.KeyVault.Secrets/4.6.0 (.NET 8.0.4; Microsoft Windows 10.0.20348)",
                 "azure-resource-manager/2.0")
BLOB_CLIENTS = ("azsdk-python-storage-blob/12.19.0 Python/3.11.9 (Linux-5.15.0-azure-x86_64-with-glibc2.35)",
                "AzCopy/10.24.0 azsdk-go-azblob/v1.3.1 (go1.22.1; linux)",
                "Azure-Storage/9.3.0 (.NET 8.0.4; Microsoft Windows 10.0.20348)")
RESULTS = (("Success", "OK", 200), ("Success", "OK", 200), ("Success", "OK", 200), ("Success", "OK", 200),
           ("Failure", "Forbidden", 403), ("Failure", "NotFound", 404), ("Failure", "TooManyRequests", 429))


def _routes(id_column: bool) -> list[dict[str, Any]]:
    columns = [{"name": name, "type": kind} for name, kind in COLUMNS.items() if id_column or name != "EventId"]
    raw = {"name": "eventhub-diagnostics", "source": "eventhub", "match": "*", "endpoint": "https://127.0.0.1:1",
           "dcr": "dcr-" + "0" * 32, "stream": "Custom-AzureResourceLogs", "columns": columns,
           "time_field": "time", "map": MAP, "extra": "Properties"}
    return [{**raw, "id_column": "EventId"} if id_column else raw]


def build_config(id_column: bool = True) -> Any:
    """The benchmark's routes file: the one ``eventhub-diagnostics`` route (inline columns, no context path)."""
    from shared.config import parse_config

    return parse_config(yaml.safe_dump({"routes": _routes(id_column)}), {}, ROOT)


def build_route(id_column: bool = True) -> Any:
    """The benchmark's route: 9 mapped columns, ``time_field: time``, ``extra: Properties``, ``id_column: EventId``."""
    return build_config(id_column).routes[0]


def _guid(rng: random.Random) -> str:
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((20, 40, 52, 10))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _time(moment: datetime, tick: int) -> str:
    """Azure's form: seven fraction digits and ``Z``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{tick}Z"


def _vault_record(rng: random.Random, moment: datetime, subscription: str) -> dict[str, Any]:
    vault, (operation, version) = rng.choice(VAULTS), rng.choice(VAULT_OPERATIONS)
    result, signature, status = rng.choice(RESULTS)
    secret, caller, upn = rng.choice(SECRETS), _ip(rng), f"{rng.choice(('jane.doe', 'ops', 'svc-orders'))}@contoso.com"
    host = f"https://{vault.lower()}.vault.azure.net"
    return {
        "time": _time(moment, rng.randrange(10)), "category": "AuditEvent", "operationName": operation,
        "operationVersion": version, "resultType": result, "resultSignature": signature, "resultDescription": "",
        "durationMs": str(rng.randrange(3, 400)), "callerIpAddress": caller, "correlationId": _guid(rng),
        "resourceId": f"/SUBSCRIPTIONS/{subscription}/RESOURCEGROUPS/RG-SECURITY/PROVIDERS/MICROSOFT.KEYVAULT/"
                      f"VAULTS/{vault}",
        "tenantId": TENANT, "location": rng.choice(LOCATIONS), "level": "Informational" if status < 400 else "Warning",
        "identity": {"claim": {"http://schemas.microsoft.com/identity/claims/objectidentifier": _guid(rng),
                               "appid": _guid(rng), "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": upn,
                               "ipaddr": caller}},
        "properties": {"id": f"{host}/secrets/{secret}/{rng.getrandbits(128):032x}", "clientInfo": rng.choice(VAULT_CLIENTS),
                       "httpStatusCode": status, "requestUri": f"{host}/secrets/{secret}/?api-version={version}",
                       "isAccessPolicyMatch": False, "isRbacAuthorized": status < 400, "tlsVersion": "TLS1_2",
                       "appliedAssignmentId": f"{rng.getrandbits(128):032x}"},
    }


def _blob_record(rng: random.Random, moment: datetime, subscription: str) -> dict[str, Any]:
    account, (category, operation) = rng.choice(ACCOUNTS), rng.choice(BLOB_OPERATIONS)
    result, signature, status = rng.choice(RESULTS)
    key = f"/{account}/exports/{moment:%Y/%m/%d}/part-{rng.randrange(10_000):05d}.json"
    return {
        "time": _time(moment, rng.randrange(10)), "category": category, "operationName": operation,
        "operationVersion": "2021-08-06", "resultType": result, "resultSignature": signature,
        "resultDescription": "" if status < 400 else f"{signature}: the request was refused",
        "durationMs": rng.randrange(1, 900), "callerIpAddress": f"{_ip(rng)}:{rng.randrange(1024, 65535)}",
        "correlationId": _guid(rng),
        "resourceId": f"/subscriptions/{subscription.lower()}/resourceGroups/rg-data/providers/Microsoft.Storage/"
                      f"storageAccounts/{account}/blobServices/default",
        "tenantId": TENANT, "location": rng.choice(LOCATIONS), "level": "Informational" if status < 400 else "Error",
        "identity": {"type": "OAuth", "tokenHash": f"sha256:{rng.getrandbits(64):016X}",
                     "requester": {"appId": _guid(rng), "objectId": _guid(rng), "tenantId": TENANT}},
        "properties": {"accountName": account, "userAgentHeader": rng.choice(BLOB_CLIENTS), "serviceType": "blob",
                       "objectKey": key, "serverLatencyMs": rng.randrange(1, 300),
                       "requestHeaderSize": rng.randrange(400, 2000), "responseBodySize": rng.randrange(0, 4 << 20),
                       "etag": f"0x8DC{rng.getrandbits(48):012X}", "tlsVersion": "TLS 1.2",
                       "lastModifiedTime": f"{moment - timedelta(minutes=rng.randrange(1, 900)):%Y/%m/%d %H:%M:%S.%f}0",
                       "uri": f"https://{account}.blob.core.windows.net{key[len(account) + 1:]}", "statusCode": status},
    }


def records(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    make = (_vault_record, _blob_record)
    return [make[rng.randrange(2)](rng, BASE + timedelta(microseconds=n * 2_137), SUBSCRIPTIONS[n % 2])
            for n in range(count)]


def batches(count: int = EVENTS, per_event: int = RECORDS_PER_EVENT, per_batch: int = BATCH_EVENTS) -> list[list[HubEvent]]:
    """Trigger batches (one partition each) of Event Hub events, each body a ``{"records": [...]}`` envelope."""
    generated = records(count)
    bodies = [orjson.dumps({"records": generated[first:first + per_event]}) for first in range(0, count, per_event)]
    out = []
    for number, first in enumerate(range(0, len(bodies), per_batch)):
        metadata = {"PartitionContext": json.dumps({
            "EventHubName": HUB, "ConsumerGroup": "$Default", "PartitionId": str(number % 4),
            "FullyQualifiedNamespace": "evhns-bench.servicebus.windows.net"})}
        out.append([HubEvent(body, sequence, str(4096 * sequence), BASE + timedelta(milliseconds=sequence),
                             metadata=metadata)
                    for sequence, body in enumerate(bodies[first:first + per_batch], start=first)])
    return out


def required_work(route: Any) -> Any:
    """A record's row made with the work the route asks for and nothing else: no type check, no coercion, no
    rejection. The SDK sample's mapping (``dotted_mapper``: mapped columns, the rest in ``extra``), the time read
    by ``fromisoformat`` and written in UTC, ``EventId`` hashed over the sorted-keys text, the row dumped."""
    from bench.cpu_path import dotted_mapper

    to_row, prefix = dotted_mapper(route), route.name.encode() + b"\n"
    time_key, id_column = route.time_field, route.id_column

    def row(record: dict[str, Any]) -> bytes:
        out = to_row(record)
        out["TimeGenerated"] = datetime.fromisoformat(record[time_key]).astimezone(UTC)
        if id_column:
            out[id_column] = sha256(prefix + orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        return orjson.dumps(out, option=orjson.OPT_UTC_Z)

    return row


def run(count: int = EVENTS, repeat: int = 5) -> dict[str, Any]:
    from azure.monitor.ingestion._helpers import _create_gzip_requests

    from bench.cpu_path import NullUploader, dotted_mapper
    from shared.dispatch import Dispatcher
    from shared.engine import Engine
    from shared.eventhub_ingest import handle_eventhub
    from shared.gctune import tune_for_batches
    from shared.runtime import Relay
    from shared.settings import Settings

    route = build_route()
    say(f"eventhub diagnostics: {count:,} records, {RECORDS_PER_EVENT} per event body, {BATCH_EVENTS} events per "
        "batch")
    posted = batches(count)
    settings = Settings(config_path=ROOT / "relay.yaml")
    uploader = NullUploader()

    def relay_on(config: Any) -> Relay:  # the relay as runtime.get_relay() builds it, with a null uploader
        engine = Engine(Dispatcher(uploader, concurrency=settings.upload_concurrency), settings.max_request_bytes)
        return Relay(settings, config, uploader, engine)  # the null uploader stands in for the sink

    relays = {"with_id": relay_on(build_config()), "no_id": relay_on(build_config(id_column=False))}
    tune_for_batches()  # what the worker does once in runtime.get_relay()
    to_row = dotted_mapper(route)

    def relay_with(which: str) -> Any:
        def relay() -> Any:
            uploader.requests = uploader.gzip_bytes = 0
            landed = rejected = rows = 0
            for batch in posted:
                result = handle_eventhub(batch, lambda: relays[which], HUB)
                landed, rejected, rows = landed + result.landed, rejected + result.rejected, rows + result.rows
            return landed, rejected, uploader.requests, rows

        return relay

    def sdk() -> Any:
        return [gzipped for batch in posted
                for gzipped, _ in _create_gzip_requests([to_row(record) for event in batch
                                                         for record in json.loads(event.get_body())["records"]])]

    relay = relay_with("with_id")
    landed, rejected, requests, _ = relay()
    per_request = max(1, -(-count // max(requests, 1)))

    def passthrough() -> Any:
        out = []
        for batch in posted:
            decoded = [record for event in batch for record in orjson.loads(event.get_body())["records"]]
            out += [igzip.compress(orjson.dumps(decoded[first:first + per_request]), 1)
                    for first in range(0, len(decoded), per_request)]
        return out

    required_row = required_work(route)

    def required_floor() -> Any:  # what any relay keeping this route's rule must do, with no check at all
        out = []
        for batch in posted:
            rows = [required_row(record) for event in batch for record in orjson.loads(event.get_body())["records"]]
            out += [igzip.compress(b"[" + b",".join(rows[first:first + per_request]) + b"]", 1)
                    for first in range(0, len(rows), per_request)]
        return out

    say(f"eventhub diagnostics: timing relay, sdk, passthrough, required floor ({repeat} rounds)")
    timings, results = interleaved({"relay": relay, "sdk": with_gc_thresholds(PYTHON_DEFAULT_GC, sdk),
                                    "passthrough": passthrough, "required_floor": required_floor,
                                    "relay_no_event_id": relay_with("no_id"),
                                    "relay_default_gc": with_gc_thresholds(PYTHON_DEFAULT_GC, relay)}, repeat)
    for each in relays.values():
        each.engine.close()
    rates = {name: count / timing.best for name, timing in timings.items()}
    landed, rejected, requests, rows = results["relay"]
    rates_gc = rates.get("relay_default_gc")
    input_bytes = sum(len(event.body) for batch in posted for event in batch)
    return {
        "events": count, "records_per_event": RECORDS_PER_EVENT, "batch_events": BATCH_EVENTS,
        "hub_events": sum(map(len, posted)), "batches": len(posted), "input_bytes": input_bytes,
        "bytes_per_event": round(input_bytes / count, 1), "repeat": repeat,
        **{name: {**timings[name].as_dict(), "rows_per_s": round(rates[name])} for name in timings},
        "relay_landed": landed, "relay_rejected": rejected, "relay_requests": requests, "relay_rows": rows,
        "sdk_requests": len(results["sdk"]), "passthrough_requests": len(results["passthrough"]),
        "relay_vs_sdk": round(rates["relay"] / rates["sdk"], 2),
        "relay_vs_passthrough": round(rates["relay"] / rates["passthrough"], 3),
        "relay_vs_required_floor": round(rates["relay"] / rates["required_floor"], 3),
        "required_floor_vs_passthrough": round(rates["required_floor"] / rates["passthrough"], 3),
        "relay_vs_no_event_id": round(rates["relay"] / rates["relay_no_event_id"], 3),
        "relay_vs_default_gc": round(rates["relay"] / rates_gc, 3) if rates_gc else None,
    }


def lines(result: dict[str, Any]) -> list[str]:
    rows = [f"{result['events']:,} diagnostic-log records of {result['bytes_per_event']:,} bytes on average, "
            f"{result['records_per_event']} per Event Hub event body ({result['hub_events']:,} events in "
            f"{result['batches']} batch{'es' if result['batches'] != 1 else ''} of {result['batch_events']}, {result['input_bytes'] / 1e6:.1f} MB), best of "
            f"{result['repeat']} interleaved runs:", ""]
    rows += contender_lines(result, (
        ("relay", "relay: handle_eventhub (decode_event_body + Engine.run, fast path, ISA-L gzip)"),
        ("sdk", "SDK sample path: json.loads + map + _create_gzip_requests"),
        ("passthrough", "passthrough: orjson.loads + orjson.dumps + ISA-L gzip"),
        ("required_floor", "required floor: orjson.loads + the route's own work with no check (map, UTC time, "
                           "Properties, EventId over the sorted-keys text, row dump) + ISA-L gzip"),
        ("relay_no_event_id", "ablation: relay on the route without id_column (no EventId)"),
        ("relay_default_gc", "ablation: relay under Python's default GC thresholds")), mb_per_s=True)
    rows += ["", ratio_line(result, f"{result['relay_requests']} requests; SDK {result['sdk_requests']} requests")
             + ". Event Hub bodies are decoded into dicts whatever the route (on these records the typed path is "
               "the slower)."]
    if "required_floor_vs_passthrough" in result:
        rows += ["", f"**Ceiling of relay / passthrough**: the required floor runs at "
                     f"{result['required_floor_vs_passthrough'] * 100:.0f}% of the passthrough, so no relay that keeps "
                     f"this route's rule passes that; the relay runs at {result['relay_vs_required_floor'] * 100:.0f}% "
                     "of the floor (within ~13% of its instructions: the notes below say where the time goes)."]
    return rows


def against(tree: Path, count: int = EVENTS, repeat: int = 5) -> list[str]:
    """``--against DIR``: the relay of this checkout and of ``tree`` on the same batches, in turns (module docstring)."""
    say(f"eventhub diagnostics --against: {count:,} records, {RECORDS_PER_EVENT} per event body, {BATCH_EVENTS} "
        f"events per batch; {repeat} rounds of this checkout and {tree}")
    posted = batches(count)
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-eventhub-against-") as name:  # ~55 MB of batches at 40k
        folder = Path(name)
        (folder / "batches.json").write_bytes(orjson.dumps({"hub": HUB, "batches": [
            [{"body": event.body.decode(), "sequence_number": event.sequence_number, "offset": event.offset,
              "enqueued_time": event.enqueued_time.isoformat(), "partition_key": event.partition_key,
              "metadata": event.metadata} for event in batch] for batch in posted]}))
        (folder / "routes.yaml").write_text(yaml.safe_dump({"routes": _routes(id_column=True)}), encoding="utf-8")
        trees, runs = in_turns(tree, repeat, count, ["eventhub", "--batches", str(folder / "batches.json"),
                                                     "--routes", str(folder / "routes.yaml")])
    return against_lines(f"{count:,} diagnostic-log records, {RECORDS_PER_EVENT} per Event Hub event body, "
                         f"{BATCH_EVENTS} events per batch, relay (handle_eventhub, null uploader) of each checkout "
                         f"in turns, {repeat} rounds (a child per round and tree: one untimed pass, one timed; load "
                         f"average at start {load}):", trees, runs, count)


if __name__ == "__main__":
    bench_main(__doc__ + "\n--events counts diagnostic-log records (rows).", EVENTS, run, lines, against)
