"""Per-record routing: conditions compare JSON values, routes are tried in order, fan-out and unrouted."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from shared.config import ConfigError, parse_config
from shared.dispatch import Dispatcher
from shared.engine import Chunking, ChunkReport, Engine
from shared.records import Item, Record, Rejection, items
from shared.routing import MISSING, Condition, json_equal
from shared.sink import UploadResult

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [{"name": "TimeGenerated", "type": "datetime"}, {"name": "Category", "type": "string"},
           {"name": "N", "type": "long"}]


def route(name: str, **keys: Any) -> dict[str, Any]:
    return {"name": name, "source": "eventhub", "match": "*", "endpoint": "https://relay.example.com",
            "dcr": "dcr-" + "0" * 32, "stream": f"Custom-{name.title().replace('-', '')}", "columns": COLUMNS,
            "map": {"Category": "category", "N": "n"}, **keys}


def config_of(*routes: dict[str, Any], **top: Any) -> Any:
    return parse_config(yaml.safe_dump({"routes": list(routes), **top}), {}, ROOT)


def problems_of(*routes: dict[str, Any], **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config_of(*routes, **top)
    return raised.value.problems


class Landing:
    """Lands every request, keeping rows by stream."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def upload(self, endpoint: str, dcr: str, stream: str, gzipped_body: bytes, request_id: str) -> UploadResult:
        with self.lock:
            self.rows.setdefault(stream, []).extend(orjson.loads(zlib.decompress(gzipped_body, wbits=31)))
        return UploadResult(request_id, 1, status=204)


def land(config: Any, events: list[Any], **run: Any) -> tuple[Any, Landing]:
    """Events (or ready records) through the engine, routed as an Event Hub batch of hub ``hub``."""
    landing = Landing()
    engine = Engine(Dispatcher(landing), 1_000_000)
    ready = all(isinstance(e, (Record, Rejection)) for e in events)
    records = events if ready else items(events, {"_eventhub": {"event_hub": "hub"}})
    try:
        result = engine.run(config.router("eventhub", "hub"), records, **run)
    finally:
        engine.close()
    return result, landing


# --- conditions ---------------------------------------------------------------------------


@pytest.mark.parametrize(("left", "right", "equal"), [
    ("1", 1, False), (1, 1.0, True), (True, 1, False), (False, 0, False), (None, None, True),
    ("AuditEvent", "AuditEvent", True), (0, None, False),
])
def test_values_compare_as_the_json_types_they_are(left, right, equal):
    assert json_equal(left, right) is equal


def test_each_condition_form():
    assert Condition("c", equals=("a", "b")).holds("b")
    assert not Condition("c", equals=("a",)).holds(MISSING)
    assert Condition("c", prefix="Microsoft.").holds("Microsoft.KeyVault/vaults")
    assert not Condition("c", prefix="Microsoft.").holds(7)
    assert Condition("c", exists=True).holds(None) and not Condition("c", exists=True).holds(MISSING)
    assert Condition("c", exists=False).holds(MISSING)


@pytest.mark.parametrize(("where", "message"), [
    ({}, "where: must be a non-empty mapping"),
    ({"category": []}, "where.category: an empty list matches nothing"),
    ({"category": {"prefix": ""}}, "where.category: prefix must be a non-empty string"),
    ({"category": {"exists": "yes"}}, "where.category: exists must be true or false"),
    ({"category": {"like": "x"}}, "where.category: a mapping must be exactly one of"),
    ({"category": [{"a": 1}]}, "where.category: {'a': 1}: compare with a string, number, boolean or null"),
    ({"a..b": 1}, "where.a..b: 'a..b' must be a dotted path"),
])
def test_where_mistakes_are_named_with_their_key(where, message):
    (problem,) = problems_of(route("r1", where=where))
    assert problem.startswith(f"route 'r1': {message}"), problem


def test_continue_must_be_a_boolean_and_unrouted_a_route():
    assert problems_of(route("r1", **{"continue": "yes"})) == ["route 'r1': continue: 'yes' must be true or false"]
    assert problems_of(route("r1"), unrouted="nowhere") == [
        "unrouted: 'nowhere' must be 'reject' or the name of a route (the catch-all)"]


# --- routing through the engine ------------------------------------------------------------


def test_the_first_route_whose_where_holds_takes_the_record_and_the_rest_is_unrouted():
    # GIVEN audit events to one route, sign-ins to another, and nothing for the rest
    config = config_of(route("audit", where={"category": "AuditEvent"}),
                       route("signin", where={"category": ["SignInLogs", "NonInteractive"]}))
    events = [{"category": "AuditEvent", "n": 1}, {"category": "SignInLogs", "n": 2},
              {"category": "NonInteractive", "n": 3}, {"category": "Metrics", "n": 4}]
    # WHEN landed
    result, landing = land(config, events)
    # THEN each record went to its route, and the one nobody takes is rejected with the reason
    assert sorted(landing.rows) == ["Custom-Audit", "Custom-Signin"]
    assert [r["N"] for r in landing.rows["Custom-Signin"]] == [2, 3]
    assert result.rejections == [{"index": 3, "reason": "no route takes this record"}]
    assert result.routes["audit"].landed == 1 and result.routes["signin"].landed == 2
    assert (result.received, result.landed, result.rejected) == (4, 3, 1)


def test_continue_fans_a_record_out_and_totals_count_it_once_per_route():
    # GIVEN an archive route that takes everything and passes it on, then a filtered one
    config = config_of(route("archive", **{"continue": True}), route("audit", where={"category": "AuditEvent"}),
                       route("rest"))
    events = [{"category": "AuditEvent", "n": 1}, {"category": "Other", "n": 2}]
    # WHEN landed
    result, landing = land(config, events)
    # THEN every record is archived, and each also lands in the first later route that takes it
    assert {stream: [r["N"] for r in rows] for stream, rows in landing.rows.items()} == {
        "Custom-Archive": [1, 2], "Custom-Audit": [1], "Custom-Rest": [2]}
    assert result.summary()["routes"] == {
        "archive": {"received": 2, "accepted": 2, "rejected": 0, "parked": 0, "deadlettered": 0, "failed": 0},
        "audit": {"received": 1, "accepted": 1, "rejected": 0, "parked": 0, "deadlettered": 0, "failed": 0},
        "rest": {"received": 1, "accepted": 1, "rejected": 0, "parked": 0, "deadlettered": 0, "failed": 0}}
    assert (result.received, result.landed) == (4, 4)
    for counts in [result, *result.routes.values()]:
        assert counts.received == counts.landed + counts.rejected + counts.parked + counts.deadlettered + counts.failed


def test_unrouted_records_go_to_the_catch_all_route_when_the_file_names_one():
    config = config_of(route("audit", where={"category": "AuditEvent"}), route("other"), unrouted="other")
    events = [{"category": "AuditEvent", "n": 1}, {"category": "Metrics", "n": 2}]
    result, landing = land(config, events)
    assert [r["N"] for r in landing.rows["Custom-Other"]] == [2] and result.rejected == 0


def test_conditions_read_trigger_metadata_and_nested_paths():
    config = config_of(route("by-hub", where={"_eventhub.event_hub": "hub", "properties.kind": {"prefix": "k"}}))
    result, landing = land(config, [{"n": 1, "properties": {"kind": "kv"}}, {"n": 2, "properties": {"kind": "x"}}])
    assert [r["N"] for r in landing.rows["Custom-ByHub"]] == [1] and result.rejected == 1


def test_a_chunk_split_among_routes_is_reported_once_all_its_routes_answered():
    config = config_of(route("archive", **{"continue": True}), route("audit", where={"category": "AuditEvent"}))
    reports: list[ChunkReport] = []
    records: list[Any] = [Record(Item(n), {"category": "AuditEvent" if n % 2 else "x", "n": n}) for n in range(6)]
    records.insert(3, Rejection(Item(99), "not valid JSON"))
    result, _ = land(config, records, chunking=Chunking(rows=4), on_chunk=reports.append)
    assert sorted(r.number for r in reports) == [1, 2]
    assert sum(r.landed + r.rejected for r in reports) == result.landed + result.rejected == 10


# --- TimeGenerated far from the ingestion time ------------------------------------------------


def test_times_the_service_would_replace_are_counted_and_can_be_kept_in_a_column_of_their_own():
    # GIVEN a route that keeps the original time beside TimeGenerated
    columns = [*COLUMNS, {"name": "OriginalTime", "type": "datetime"}]
    config = config_of(route("times", columns=columns, time_field="ts", original_time_column="OriginalTime"))
    events = [{"ts": "2001-01-01T00:00:00Z", "n": 1}, {"ts": "2999-01-01T00:00:00Z", "n": 2},
              {"n": 3}]  # the third has no time: stamped with the ingestion time, in the window
    # WHEN landed
    result, landing = land(config, events)
    # THEN the two far times are counted, and each row keeps its original time in its own column
    assert result.time_out_of_window == 2 and result.summary()["time_out_of_window"] == 2
    rows = sorted(landing.rows["Custom-Times"], key=lambda row: row["N"])
    assert [row.get("OriginalTime") for row in rows] == ["2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z", None]


@pytest.mark.parametrize(("keys", "message"), [
    ({"original_time_column": "OriginalTime"}, "original_time_column: needs time_field"),
    ({"original_time_column": "Category", "time_field": "ts"},
     "original_time_column: 'Category' must be a datetime column the stream declares"),
])
def test_original_time_column_mistakes(keys, message):
    (problem,) = problems_of(route("r1", **keys))
    assert problem.startswith(f"route 'r1': {message}")


def http_route(name: str, **keys: Any) -> dict[str, Any]:
    return {**route(name, **keys), "source": "http", "match": "hooks"}


def test_http_routes_may_share_a_path_when_the_earlier_ones_pass_records_on():
    config = config_of(http_route("alerts", where={"kind": "alert"}), http_route("others"))
    assert [d.route.name for d in config.router("http", "hooks").candidates] == ["alerts", "others"]
    assert problems_of(http_route("a", where={"kind": "x"}), http_route("b", secret="s")) == [
        "route 'b': secret: http routes answering 'hooks' must verify the same secret"]
