"""Binding contract of function_app (DESIGN 3.1): routes, methods and auth levels users depend on."""

from __future__ import annotations

import json

import function_app


def bindings() -> dict[str, list[dict]]:
    function_app.app.functions_bindings = None
    return {
        f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()]
        for f in function_app.app.get_functions()
    }


def trigger(name: str) -> dict:
    return next(b for b in bindings()[name] if b["direction"] == "IN" and b["type"].endswith("Trigger"))


def test_ingest_route_is_post_and_options_with_function_key():
    binding = trigger("http_ingest")
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == "ingest/{route}"
    assert sorted(binding["methods"]) == ["OPTIONS", "POST"]
    assert binding["authLevel"] == "FUNCTION"


def test_health_is_anonymous_get():
    binding = trigger("health")
    assert (binding["route"], binding["methods"], binding["authLevel"]) == ("health", ["GET"], "ANONYMOUS")


def test_deep_health_is_a_get_behind_the_function_key():
    binding = trigger("health_deep")
    assert (binding["route"], binding["methods"], binding["authLevel"]) == ("health/deep", ["GET"], "FUNCTION")


def test_importing_the_app_reads_no_settings_and_loads_no_config(monkeypatch):
    import importlib

    import shared.runtime

    monkeypatch.setenv("RELAY_CONFIG", "/nonexistent/relay.yaml")
    shared.runtime.reset_relay()
    importlib.reload(function_app)
    assert shared.runtime._relay is None
