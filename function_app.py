"""Azure Functions entry points: each trigger hands its input to the core in ``shared``.

Nothing here parses, uploads or reads settings at import time.
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob  # SDK-type binding: blobs are streamed, not read whole

from shared.blob_ingest import handle_blob
from shared.eventhub_ingest import handle_eventhub
from shared.health import anonymous_health, deep_health
from shared.http_ingest import HttpAnswer, handle_ingest
from shared.runtime import get_relay

app = func.FunctionApp()


def _response(answer: HttpAnswer) -> func.HttpResponse:
    return func.HttpResponse(
        answer.json, status_code=answer.status, headers=answer.headers, mimetype="application/json"
    )


@app.function_name("http_ingest")
@app.route(route="ingest/{route}", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def http_ingest(req: func.HttpRequest) -> func.HttpResponse:
    return _response(handle_ingest(req, get_relay))


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Configuration only; ``?deep=1`` is redirected to the keyed deep check."""
    return _response(anonymous_health(req.url, req.params, get_relay))


@app.function_name("health_deep")
@app.route(route="health/deep", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health_deep(req: func.HttpRequest) -> func.HttpResponse:
    """Storage, token and ingestion endpoint, with short timeouts; behind the function key."""
    return _response(deep_health(get_relay))


@app.function_name("poison_replay")
@app.queue_trigger(arg_name="msg", queue_name="%RELAY_POISON_QUEUE%", connection="RelayStorage")
def poison_replay(msg: func.QueueMessage) -> None:
    """Replay one parked batch; returns normally unless storage itself failed (then the host retries)."""
    from shared.poison.replay import handle_queue_message

    handle_queue_message(msg.get_body(), get_relay)


@app.function_name("blob_ingest")
@app.blob_trigger(arg_name="client", path="%RELAY_BLOB_CONTAINER%/{name}", connection="RelayStorage",
                  source=func.BlobSource.EVENT_GRID)
def blob_ingest(client: blob.BlobClient) -> None:
    """Stream one dropped file into its route; raises only when rows are not safe yet (the host
    retries and the run resumes from the blob's checkpoint)."""
    handle_blob(client, get_relay).raise_if_unsafe()


@app.function_name("eventhub_ingest")
@app.retry(strategy="exponential_backoff", max_retry_count="10", minimum_interval="00:00:10",
           maximum_interval="00:15:00")
@app.event_hub_message_trigger(arg_name="events", event_hub_name="%RELAY_EVENTHUB_NAME%",
                               connection="EventHubConnection", consumer_group="%RELAY_EVENTHUB_CONSUMER_GROUP%",
                               cardinality=func.Cardinality.MANY, data_type=func.DataType.BINARY)
def eventhub_ingest(events: list[func.EventHubEvent]) -> None:
    """Land a batch; bad events are rejected and failed uploads parked, so this returns normally.
    It raises only when rows could be neither uploaded nor parked: the retry policy then re-runs
    the batch before the host moves the partition checkpoint (which it does even on failure)."""
    handle_eventhub(events, get_relay).raise_if_unsafe()
