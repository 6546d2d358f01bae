"""Route plans: one route's normalization rule, decided once from its DCR stream and its settings."""

from __future__ import annotations

from shared.normalize import Normalizer
from shared.paths import MISSING, FieldPath
from shared.plan import RoutePlan

ROOTS = frozenset({"_http", "_blob"})


def test_plan_states_columns_paths_time_extra_and_id(make_route):
    """GIVEN a route with a map (a key, a dotted path, a context path), time_field, extra and id_column
    WHEN planned THEN the columns keep declaration order, computed columns are left to their options, and
    only keys read whole are consumed."""
    route = make_route({"TimeGenerated": "datetime", "Action": "string", "Repo": "string", "Kind": "string",
                         "Count": "int", "Raw": "dynamic", "Id": "string"},
                        map={"Action": "action", "Repo": "repository.full_name", "Kind": "_http.headers.x-kind"},
                        time_field="created_at", extra="Raw", id_column="Id")

    plan = RoutePlan.of(route)

    assert [(c.name, c.type, c.path.text) for c in plan.columns] == [
        ("Action", "string", "action"), ("Repo", "string", "repository.full_name"),
        ("Kind", "string", "_http.headers.x-kind"), ("Count", "int", "Count")]
    assert (plan.time.text, plan.stamp_time, plan.extra, plan.extra_as_text, plan.id_column) == (
        "created_at", True, "Raw", False, "Id")
    assert plan.consumed == {"action", "Count", "created_at"}
    assert plan.uses_context and not plan.move_bad_values


def test_paths_read_objects_and_arrays():
    """GIVEN paths with keys, ASCII and non-ASCII digits, and context roots WHEN read THEN values or MISSING."""
    event = {"a": [{"b": 1}, {"b": 2}], "0": "zero", "c": {"\u0661": "arabic one"}}

    assert FieldPath.parse("a.1.b", ROOTS).read(event, {}) == 2
    assert FieldPath.parse("a.2.b", ROOTS).read(event, {}) is MISSING
    assert FieldPath.parse("c.\u0661", ROOTS).read(event, {}) == "arabic one"  # a key, never a position
    assert FieldPath.parse("a.\u0661", ROOTS).read(event, {}) is MISSING  # (it used to raise ValueError)
    assert FieldPath.parse("0", ROOTS).key == "0"
    assert FieldPath.parse("_http.h", ROOTS).read(event, {"_http": {"h": "v"}}) == "v"
    assert FieldPath.parse("_http.h", ROOTS).key is None


def test_both_paths_read_the_same_plan(make_route):
    """GIVEN a normalizer WHEN built, fast or not THEN it holds its route's plan."""
    route = make_route({"A": "string"})

    assert Normalizer(route).plan == Normalizer(route, fast=False).plan == RoutePlan.of(route)
