"""Azure Functions entry points: each trigger hands its input to the core in ``shared``.

Nothing here parses, uploads or reads settings at import time.
"""

from __future__ import annotations

import azure.functions as func

from shared.http_ingest import HttpAnswer, handle_health, handle_ingest
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
    return _response(handle_health(get_relay))


@app.function_name("poison_replay")
@app.queue_trigger(arg_name="msg", queue_name="%RELAY_POISON_QUEUE%", connection="RelayStorage")
def poison_replay(msg: func.QueueMessage) -> None:
    """Replay one parked batch; returns normally unless storage itself failed (then the host retries)."""
    from shared.poison.replay import handle_queue_message

    handle_queue_message(msg.get_body(), get_relay)
