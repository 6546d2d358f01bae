"""The routes file (DESIGN 3.2): every validation rule names the route and the key it concerns.

Also the app settings (shared/settings.py) and the static-credential loopback rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import ConfigError, Route, is_loopback_url, load_config, parse_config
from shared.credentials import check_credential_fits
from shared.schema import COLUMN_TYPES, RESERVED_COLUMNS
from shared.settings import Settings, SettingsError

DCR_ID = "dcr-682fbae20f3428bcec4c117c57bea18d"
ENDPOINT = "https://relay-dce.eastus-1.ingest.monitor.azure.com"
ROUTE_KEYS_TEXT = (
    "auxiliary, columns, continue, dcr, endpoint, extra, format, id_column, map, match, name, on_type_error, "
    "original_time_column, schema, secret, signature, source, stream, time_field, where"
)
REPO_ROOT = Path(__file__).resolve().parents[2]


def route(**overrides: Any) -> dict[str, Any]:
    """A valid http route with inline columns; an override of None removes the key."""
    raw: dict[str, Any] = {
        "name": "r1",
        "source": "http",
        "match": "r1",
        "endpoint": ENDPOINT,
        "dcr": DCR_ID,
        "stream": "Custom-T",
        "columns": [
            {"name": "TimeGenerated", "type": "datetime"},
            {"name": "Message", "type": "string"},
            {"name": "Count", "type": "int"},
            {"name": "Raw", "type": "dynamic"},
            {"name": "RawText", "type": "string"},
        ],
    }
    for key, value in overrides.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def columns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in pairs]


def load(document: Any, env: dict[str, str] | None = None, base: Path = REPO_ROOT):
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    return parse_config(text, env or {}, base)


def problems_of(document: Any, env: dict[str, str] | None = None, base: Path = REPO_ROOT) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(document, env, base)
    return caught.value.problems


def only_problem(document: Any, env: dict[str, str] | None = None, base: Path = REPO_ROOT) -> str:
    problems = problems_of(document, env, base)
    assert len(problems) == 1, problems
    return problems[0]


def write_dcr(directory: Path, streams: dict[str, list[dict[str, str]]], name: str = "dcr.json") -> Path:
    path = directory / name
    declarations = {stream: {"columns": cols} for stream, cols in streams.items()}
    path.write_text(json.dumps({"properties": {"streamDeclarations": declarations}}), encoding="utf-8")
    return path


# --- a valid file -------------------------------------------------------------------------------


def test_valid_route_becomes_a_typed_route():
    """GIVEN one valid route WHEN parsed THEN a Route with its values and inline schema comes back."""
    config = load({"routes": [route(endpoint=ENDPOINT + "/", map={"Message": "msg.text"})]})

    (parsed,) = config.routes
    assert isinstance(parsed, Route)
    assert (parsed.name, parsed.source, parsed.match, parsed.dcr, parsed.stream) == (
        "r1", "http", "r1", DCR_ID, "Custom-T"
    )
    assert parsed.endpoint == ENDPOINT  # trailing slash stripped
    assert parsed.schema.names == ("TimeGenerated", "Message", "Count", "Raw", "RawText")
    assert dict(parsed.map) == {"Message": "msg.text"}
    assert (parsed.on_type_error, parsed.format, parsed.auxiliary, parsed.extra) == ("reject", "auto", False, None)


def test_defaults_fill_routes_and_a_route_overrides_them():
    """GIVEN defaults for endpoint and dcr WHEN one route sets its own endpoint THEN it wins, the other inherits."""
    other_dcr = "dcr-00000000000000000000000000000001"
    config = load({
        "defaults": {"endpoint": "https://default.example", "dcr": other_dcr},
        "routes": [route(endpoint=None, dcr=None),
                   route(name="r2", match="r2", endpoint="https://own.example", dcr=None)],
    })

    assert [(r.name, r.endpoint, r.dcr) for r in config.routes] == [
        ("r1", "https://default.example", other_dcr),
        ("r2", "https://own.example", other_dcr),
    ]


def test_http_route_lookup_and_routes_by_source():
    """GIVEN an http and a blob route WHEN looked up THEN http_route finds only http segments."""
    config = load({"routes": [route(), route(name="b1", source="blob", match="ingest/b1/*.ndjson")]})

    assert config.http_route("r1").name == "r1"
    assert config.http_route("ingest/b1/*.ndjson") is None
    assert [r.name for r in config.routes_for("blob")] == ["b1"]
    assert config.endpoints == frozenset({ENDPOINT})


def test_all_problems_are_reported_together():
    """GIVEN a route with three mistakes WHEN parsed THEN ConfigError lists all three, joined in str()."""
    problems = problems_of({"routes": [route(source="kafka", dcr="dcr-1", format="xml")]})

    assert problems == [
        "route 'r1': source: 'kafka' is not one of http, blob, eventhub",
        "route 'r1': dcr: 'dcr-1' is not a DCR immutable id like dcr-0123456789abcdef0123456789abcdef",
        "route 'r1': format: 'xml' is not one of auto, ndjson, json, records, csv",
    ]


# --- the document -------------------------------------------------------------------------------


def test_unknown_top_level_key():
    """GIVEN a top-level key other than defaults/routes WHEN parsed THEN it is named."""
    assert only_problem({"route": [], "routes": [route()]}) == "route: unknown top-level key (known: defaults, routes, unrouted)"


def test_key_not_allowed_in_defaults():
    """GIVEN defaults with a per-route key (stream) WHEN parsed THEN the key and the allowed ones are named."""
    problem = only_problem({"defaults": {"stream": "Custom-T"}, "routes": [route()]})

    assert problem == (
        "defaults.stream: not allowed in defaults "
        "(allowed: auxiliary, dcr, endpoint, extra, id_column, on_type_error, schema)"
    )


def test_defaults_must_be_a_mapping():
    """GIVEN defaults as a list WHEN parsed THEN 'defaults: must be a mapping'."""
    assert only_problem({"defaults": ["x"], "routes": [route()]}) == "defaults: must be a mapping"


@pytest.mark.parametrize("routes", [[], {"r1": {}}, "r1", None], ids=["empty", "mapping", "string", "missing"])
def test_routes_must_be_a_non_empty_list(routes):
    """GIVEN routes empty / not a list / absent WHEN parsed THEN 'routes: must be a non-empty list'."""
    document = {"defaults": {"endpoint": ENDPOINT}} if routes is None else {"routes": routes}
    assert only_problem(document) == "routes: must be a non-empty list"


def test_document_must_be_a_mapping():
    """GIVEN a YAML list at the top WHEN parsed THEN the file shape is explained."""
    assert only_problem("- name: r1\n") == "routes file must be a mapping with a 'routes' list"


def test_invalid_yaml():
    """GIVEN text that is not YAML WHEN parsed THEN the message says so and carries the parser's position."""
    problem = only_problem("routes: [\n  - name: r1\n")

    assert problem.startswith("routes file is not valid YAML: ")
    assert "line 2" in problem


def test_route_that_is_not_a_mapping():
    """GIVEN a route written as a string WHEN parsed THEN its position is named."""
    assert only_problem({"routes": [route(), "r2"]}) == "route #2: must be a mapping"


# --- route keys ---------------------------------------------------------------------------------


def test_unknown_route_key():
    """GIVEN a misspelt key WHEN parsed THEN the route, the key and the known keys are named."""
    problem = only_problem({"routes": [route(colums=[])]})

    assert problem == f"route 'r1': colums: unknown key (known: {ROUTE_KEYS_TEXT})"


def test_unknown_route_keys_of_mixed_types_are_all_reported():
    """GIVEN YAML keys that are not strings beside misspelt ones (YAML 1.1 reads `on:` as True)
    WHEN parsed THEN each is reported instead of sorting crashing on str < bool."""
    text = yaml.safe_dump({"routes": [route()]}, sort_keys=False) + "  on: reject\n  colour: red\n"

    problems = problems_of(text)

    assert problems == [
        f"route 'r1': True: unknown key (known: {ROUTE_KEYS_TEXT})",
        f"route 'r1': colour: unknown key (known: {ROUTE_KEYS_TEXT})",
    ]


@pytest.mark.parametrize("name", [None, "", "has space", "-leading-dash", "x" * 65, 42])
def test_missing_or_invalid_name(name):
    """GIVEN no name or one the rules refuse WHEN parsed THEN 'name: required ...' for that route."""
    raw = route(name=None) if name is None else route(name=name)
    label = f"route {name!r}" if isinstance(name, str) and name else "route #1"

    assert only_problem({"routes": [raw]}) == f"{label}: name: required: letters, digits, '_', '-', '.' (at most 64)"


def test_longest_allowed_name():
    """GIVEN a 64-character name WHEN parsed THEN it is accepted."""
    assert load({"routes": [route(name="n" * 64)]}).routes[0].name == "n" * 64


def test_duplicate_route_names():
    """GIVEN two routes called r1 WHEN parsed THEN the second is reported as a duplicate."""
    problem = only_problem({"routes": [route(), route(match="other")]})

    assert problem == "route 'r1': name: duplicate route name"


def test_unknown_source():
    """GIVEN source kafka WHEN parsed THEN the allowed sources are listed."""
    assert only_problem({"routes": [route(source="kafka")]}) == (
        "route 'r1': source: 'kafka' is not one of http, blob, eventhub"
    )


@pytest.mark.parametrize("match", [None, ""])
def test_missing_match(match):
    """GIVEN no match WHEN parsed THEN 'match: required ...'."""
    raw = route(match=None) if match is None else route(match=match)

    assert only_problem({"routes": [raw]}) == (
        "route 'r1': match: required: the path segment (http), a glob (blob) or an event hub name"
    )


@pytest.mark.parametrize("match", ["a/b", "git hub", "*"])
def test_http_match_must_be_one_path_segment(match):
    """GIVEN an http match with '/', a space or a glob WHEN parsed THEN it is refused as not one segment."""
    assert only_problem({"routes": [route(match=match)]}) == (
        f"route 'r1': match: {match!r} must be a single URL path segment of letters, digits, '_', '-', '.'"
    )


def test_blob_and_eventhub_matches_may_be_globs():
    """GIVEN a blob glob with '/' and an event hub '*' WHEN parsed THEN both are accepted."""
    config = load({"routes": [
        route(name="b", source="blob", match="ingest/github/*.ndjson*"),
        route(name="e", source="eventhub", match="*"),
    ]})

    assert [r.match for r in config.routes] == ["ingest/github/*.ndjson*", "*"]


def test_duplicate_http_match():
    """GIVEN two http routes answering the same segment WHEN parsed THEN the second is named."""
    problem = only_problem({"routes": [route(), route(name="r2", match="r1")]})

    assert problem == "route 'r2': match: another http route already answers 'r1'"


def test_same_match_on_different_sources_is_fine():
    """GIVEN an http and an eventhub route with the same match WHEN parsed THEN no conflict."""
    config = load({"routes": [route(), route(name="r2", source="eventhub")]})

    assert len(config.routes) == 2


def test_http_match_that_is_a_list_is_reported_not_crashed():
    """GIVEN `match: [a, b]` on an http route (unhashable) WHEN parsed THEN a ConfigError names it."""
    assert only_problem({"routes": [route(match=["a", "b"])]}) == (
        "route 'r1': match: required: the path segment (http), a glob (blob) or an event hub name"
    )


# --- endpoint -----------------------------------------------------------------------------------


def test_missing_endpoint():
    """GIVEN no endpoint in the route nor the defaults WHEN parsed THEN 'endpoint: required ...'."""
    assert only_problem({"routes": [route(endpoint=None)]}) == (
        "route 'r1': endpoint: required (here or in defaults): the DCE or DCR logs ingestion endpoint"
    )


@pytest.mark.parametrize("endpoint", ["http://relay.example.com", "ftp://127.0.0.1", "relay.example.com",
                                      "http://127.0.0.1.example.com"])
def test_non_https_endpoint_is_refused(endpoint):
    """GIVEN an endpoint that is neither https nor http on loopback WHEN parsed THEN it is refused."""
    assert only_problem({"routes": [route(endpoint=endpoint)]}) == (
        f"route 'r1': endpoint: {endpoint!r} must use https (http only for a loopback emulator)"
    )


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4443", "http://localhost:4443", "http://[::1]:4443",
                                      "http://127.0.0.2"])
def test_http_on_loopback_is_allowed(endpoint):
    """GIVEN http to a loopback emulator WHEN parsed THEN the route is accepted."""
    assert load({"routes": [route(endpoint=endpoint)]}).routes[0].endpoint == endpoint


@pytest.mark.parametrize("endpoint", ["https://relay.example.com", "https://10.1.2.3:8443/x", "https://localhost"])
def test_https_to_anywhere_is_allowed(endpoint):
    """GIVEN an https endpoint WHEN parsed THEN it is accepted whatever the host."""
    assert load({"routes": [route(endpoint=endpoint)]}).routes[0].endpoint == endpoint


def test_malformed_endpoint_url_is_reported_not_crashed():
    """GIVEN an endpoint with an unclosed IPv6 bracket WHEN parsed THEN a ConfigError names it."""
    assert only_problem({"routes": [route(endpoint="https://[::1:4443")]}) == (
        "route 'r1': endpoint: 'https://[::1:4443' is not a valid URL: Invalid IPv6 URL"
    )


# --- dcr and stream -----------------------------------------------------------------------------


@pytest.mark.parametrize("dcr", ["dcr-123", "DCR-682FBAE20F3428BCEC4C117C57BEA18D", "682fbae20f3428bcec4c117c57bea18d"])
def test_bad_dcr_id(dcr):
    """GIVEN a value that is not an immutable id WHEN parsed THEN the expected shape is shown."""
    assert only_problem({"routes": [route(dcr=dcr)]}) == (
        f"route 'r1': dcr: {dcr!r} is not a DCR immutable id like dcr-0123456789abcdef0123456789abcdef"
    )


@pytest.mark.parametrize("stream", ["MyTable", "Custom-", "Custom-My Table", "Other-T"])
def test_bad_stream_name(stream):
    """GIVEN a stream that is not Custom-/Microsoft-<name> WHEN parsed THEN it is refused."""
    assert only_problem({"routes": [route(stream=stream)]}) == (
        f"route 'r1': stream: {stream!r} must be a stream name like Custom-MyTable"
    )


def test_microsoft_stream_is_allowed():
    """GIVEN a Microsoft- stream WHEN parsed THEN it is accepted (any stream name, not forced to Custom-)."""
    assert load({"routes": [route(stream="Microsoft-Syslog")]}).routes[0].stream == "Microsoft-Syslog"


def test_missing_schema():
    """GIVEN neither schema nor columns WHEN parsed THEN 'schema: required ...'."""
    assert only_problem({"routes": [route(columns=None)]}) == (
        "route 'r1': schema: required: a DCR file with streamDeclarations, or inline columns"
    )


def test_stream_not_declared_in_dcr_file_lists_the_declared_ones():
    """GIVEN the real DCR file and a stream it does not declare WHEN parsed THEN the declared ones are listed."""
    problem = only_problem({"routes": [route(columns=None, schema="infra/dcr/relay.json", stream="Custom-Nope")]})

    assert problem == (
        "route 'r1': schema: stream 'Custom-Nope' is not declared in infra/dcr/relay.json "
        "(declared: Custom-AppLogs, Custom-AzureResourceLogs, Custom-CloudEvents, Custom-GitHubEvents, "
        "Custom-KeyVaultAudit, Custom-ResourceLogsArchive)"
    )


def test_schema_from_dcr_file_relative_to_base(tmp_path):
    """GIVEN a DCR file beside the routes (base) WHEN a route names it THEN its columns are the schema."""
    write_dcr(tmp_path, {"Custom-T": columns(("TimeGenerated", "datetime"), ("Level", "string"))})

    parsed = load({"routes": [route(columns=None, schema="dcr.json")]}, base=tmp_path).routes[0]

    assert [(c.name, c.type) for c in parsed.schema.columns] == [("TimeGenerated", "datetime"), ("Level", "string")]


def test_dcr_file_missing(tmp_path):
    """GIVEN a schema path that does not exist WHEN parsed THEN the resolved path is named."""
    problem = only_problem({"routes": [route(columns=None, schema="nope.json")]}, base=tmp_path)

    assert problem == f"route 'r1': schema: DCR file {str(tmp_path / 'nope.json')!r} does not exist"


def test_dcr_file_invalid_json(tmp_path):
    """GIVEN a DCR file that is not JSON WHEN parsed THEN 'is not valid JSON' with the path."""
    (tmp_path / "dcr.json").write_text("{not json", encoding="utf-8")

    problem = only_problem({"routes": [route(columns=None, schema="dcr.json")]}, base=tmp_path)

    assert problem.startswith(f"route 'r1': schema: DCR file {str(tmp_path / 'dcr.json')!r} is not valid JSON: ")


@pytest.mark.parametrize("document", [{"properties": {}}, {"properties": {"streamDeclarations": {}}}, [1]])
def test_dcr_file_without_stream_declarations(tmp_path, document):
    """GIVEN a DCR file with no (or empty) properties.streamDeclarations WHEN parsed THEN that is said."""
    (tmp_path / "dcr.json").write_text(json.dumps(document), encoding="utf-8")

    problem = only_problem({"routes": [route(columns=None, schema="dcr.json")]}, base=tmp_path)

    assert problem == (
        f"route 'r1': schema: DCR file {str(tmp_path / 'dcr.json')!r} has no properties.streamDeclarations"
    )


def test_dcr_file_with_a_bad_column_names_file_and_stream(tmp_path):
    """GIVEN a DCR file declaring a reserved column WHEN parsed THEN file, stream and column are named."""
    path = write_dcr(tmp_path, {"Custom-T": columns(("TimeGenerated", "datetime"), ("Type", "string"))})

    problem = only_problem({"routes": [route(columns=None, schema="dcr.json")]}, base=tmp_path)

    assert problem == (
        f"route 'r1': schema: DCR file {str(path)!r}: stream 'Custom-T': column name 'Type' is reserved by Azure Monitor"
    )


@pytest.mark.parametrize("schema", ["", "."], ids=["empty-after-substitution", "directory"])
def test_dcr_path_that_is_a_directory_is_reported_not_crashed(tmp_path, schema):
    """GIVEN a schema path that resolves to a directory (e.g. an unset ${VAR} gives '') WHEN parsed
    THEN a ConfigError says the file cannot be read (instead of IsADirectoryError escaping)."""
    problem = only_problem({"routes": [route(columns=None, schema=schema)]}, base=tmp_path)

    assert problem == f"route 'r1': schema: DCR file {str(tmp_path / schema)!r} cannot be read: Is a directory"


def test_each_dcr_file_is_read_once_per_load(tmp_path, monkeypatch):
    """GIVEN two routes on one DCR file WHEN parsed THEN the file is read once."""
    import shared.config as config_module

    write_dcr(tmp_path, {"Custom-T": columns(("Message", "string"))})
    calls: list[Path] = []
    real = config_module.load_dcr_streams
    monkeypatch.setattr(config_module, "load_dcr_streams", lambda path: calls.append(path) or real(path))

    load({"routes": [route(columns=None, schema="dcr.json"), route(name="r2", match="r2", columns=None,
                                                                    schema="dcr.json")]}, base=tmp_path)

    assert calls == [tmp_path / "dcr.json"]


# --- inline columns: the service's column rules (DESIGN 4) ---------------------------------------


@pytest.mark.parametrize("name", ["1abc", "_Private", "has-dash", "Ünïcode", "x" * 46])
def test_inline_column_with_a_bad_name(name):
    """GIVEN a column name that does not start with a letter, has other characters or is 46 long
    WHEN parsed THEN 'columns:' names the stream and the column."""
    problem = only_problem({"routes": [route(columns=columns((name, "string")))]})

    assert problem == (
        f"route 'r1': columns: inline columns: stream 'Custom-T': column name {name!r} "
        "must start with a letter and have at most 45 letters, digits or '_'"
    )


def test_inline_column_of_45_characters_is_allowed():
    """GIVEN a 45-character column name WHEN parsed THEN it is accepted (the limit is inclusive)."""
    assert load({"routes": [route(columns=columns(("x" * 45, "string")))]}).routes[0].schema.names == ("x" * 45,)


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_inline_column_with_a_reserved_name(name):
    """GIVEN each reserved name WHEN used as a column THEN it is refused as reserved by Azure Monitor."""
    assert name in {"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}
    problem = only_problem({"routes": [route(columns=columns(("Message", "string"), (name, "string")))]})

    assert problem == (
        f"route 'r1': columns: inline columns: stream 'Custom-T': column name {name!r} is reserved by Azure Monitor"
    )


def test_reserved_names_are_exactly_the_documented_seven():
    """GIVEN the service's reserved names WHEN compared THEN the module has exactly those."""
    assert frozenset({"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}) == (
        RESERVED_COLUMNS
    )


@pytest.mark.parametrize("kind", ["text", "String", "float", None])
def test_inline_column_with_a_bad_type(kind):
    """GIVEN a column type the service does not have WHEN parsed THEN the allowed types are listed."""
    raw_columns = [{"name": "A", "type": kind}] if kind is not None else [{"name": "A"}]

    problem = only_problem({"routes": [route(columns=raw_columns)]})

    assert problem == (
        f"route 'r1': columns: inline columns: stream 'Custom-T' column 'A': type {kind!r} is not one of "
        "string, int, long, real, boolean, datetime, dynamic"
    )


def test_every_service_column_type_is_accepted():
    """GIVEN one column of each documented type WHEN parsed THEN all are accepted."""
    kinds = ("string", "int", "long", "real", "boolean", "datetime", "dynamic")
    assert kinds == COLUMN_TYPES
    parsed = load({"routes": [route(columns=columns(*((f"C{i}", k) for i, k in enumerate(kinds))))]}).routes[0]

    assert tuple(c.type for c in parsed.schema.columns) == kinds


@pytest.mark.parametrize("second", ["Message", "message", "MESSAGE"])
def test_inline_duplicate_column(second):
    """GIVEN a column declared twice (names compare case-insensitively) WHEN parsed THEN refused."""
    problem = only_problem({"routes": [route(columns=columns(("Message", "string"), (second, "int")))]})

    assert problem == f"route 'r1': columns: inline columns: stream 'Custom-T' declares column {second!r} twice"


def test_more_than_500_columns():
    """GIVEN 501 columns WHEN parsed THEN the count and the limit are named."""
    problem = only_problem({"routes": [route(columns=columns(*((f"C{i}", "string") for i in range(501))))]})

    assert problem == "route 'r1': columns: inline columns: stream 'Custom-T' declares 501 columns, limit 500"


def test_exactly_500_columns_is_allowed():
    """GIVEN 500 columns WHEN parsed THEN accepted."""
    parsed = load({"routes": [route(columns=columns(*((f"C{i}", "string") for i in range(500))))]}).routes[0]

    assert len(parsed.schema.columns) == 500


@pytest.mark.parametrize("raw_columns", [[], "Message:string"], ids=["empty", "not-a-list"])
def test_inline_columns_must_be_a_non_empty_list(raw_columns):
    """GIVEN columns empty or not a list WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(columns=raw_columns)]}) == (
        "route 'r1': columns: inline columns: stream 'Custom-T' must declare a non-empty list of columns"
    )


def test_inline_column_that_is_not_an_object():
    """GIVEN a column written as a string WHEN parsed THEN its index is named."""
    assert only_problem({"routes": [route(columns=[{"name": "A", "type": "string"}, "B"])]}) == (
        "route 'r1': columns: inline columns: stream 'Custom-T' column #1 must be an object with name and type"
    )


# --- map, extra, id_column, time_field ----------------------------------------------------------


def test_map_column_not_declared():
    """GIVEN map to a column the stream lacks WHEN parsed THEN the column and stream are named."""
    assert only_problem({"routes": [route(map={"Nope": "a.b"})]}) == (
        "route 'r1': map.Nope: column is not declared in stream Custom-T"
    )


@pytest.mark.parametrize("path", ["", ".a", "a.", 5, None])
def test_map_path_invalid(path):
    """GIVEN an empty, dot-edged or non-string path WHEN parsed THEN the column's map key is named."""
    assert only_problem({"routes": [route(map={"Message": path})]}) == (
        f"route 'r1': map.Message: {path!r} must be a dotted path like repository.full_name"
    )


def test_map_must_be_a_mapping():
    """GIVEN map as a list WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(map=["Message"])]}) == (
        "route 'r1': map: must be a mapping of column: dotted.path"
    )


def test_extra_not_declared():
    """GIVEN extra naming an undeclared column WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(extra="Props")]}) == (
        "route 'r1': extra: column 'Props' is not declared in stream Custom-T"
    )


def test_extra_of_the_wrong_type():
    """GIVEN extra naming an int column WHEN parsed THEN the column's type and the allowed ones are named."""
    assert only_problem({"routes": [route(extra="Count")]}) == (
        "route 'r1': extra: column 'Count' is int, must be dynamic or string"
    )


@pytest.mark.parametrize("column", ["Raw", "RawText"])
def test_extra_may_be_dynamic_or_string(column):
    """GIVEN extra on a dynamic or string column WHEN parsed THEN accepted."""
    assert load({"routes": [route(extra=column)]}).routes[0].extra == column


def test_id_column_of_the_wrong_type():
    """GIVEN id_column on a dynamic column WHEN parsed THEN it must be string."""
    assert only_problem({"routes": [route(id_column="Raw")]}) == (
        "route 'r1': id_column: column 'Raw' is dynamic, must be string"
    )


def test_id_column_not_declared():
    """GIVEN id_column naming an undeclared column WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(id_column="EventId")]}) == (
        "route 'r1': id_column: column 'EventId' is not declared in stream Custom-T"
    )


@pytest.mark.parametrize("key", ["extra", "id_column"])
def test_extra_or_id_column_that_is_not_a_string_is_reported_not_crashed(key):
    """GIVEN extra / id_column as a mapping (unhashable) WHEN parsed THEN a ConfigError names the key."""
    assert only_problem({"routes": [route(**{key: {"a": 1}})]}) == (
        f"route 'r1': {key}: column {{'a': 1}} is not declared in stream Custom-T"
    )


def test_time_field_when_stream_lacks_time_generated():
    """GIVEN time_field on a stream without TimeGenerated WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(columns=columns(("Message", "string")), time_field="ts")]}) == (
        "route 'r1': time_field: stream Custom-T does not declare TimeGenerated as datetime"
    )


def test_time_field_when_time_generated_is_not_datetime():
    """GIVEN TimeGenerated declared as string WHEN time_field is set THEN refused."""
    problem = only_problem({"routes": [route(columns=columns(("TimeGenerated", "string")), time_field="ts")]})

    assert problem == "route 'r1': time_field: stream Custom-T does not declare TimeGenerated as datetime"


@pytest.mark.parametrize("time_field", ["", 5])
def test_time_field_must_be_a_path(time_field):
    """GIVEN an empty or non-string time_field WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(time_field=time_field)]}) == (
        "route 'r1': time_field: must be a dotted path like created_at"
    )


# --- flags --------------------------------------------------------------------------------------


def test_on_type_error_invalid():
    """GIVEN on_type_error drop WHEN parsed THEN the policies are listed."""
    assert only_problem({"routes": [route(on_type_error="drop")]}) == (
        "route 'r1': on_type_error: 'drop' is not one of reject, extra"
    )


def test_on_type_error_extra_without_extra_column():
    """GIVEN on_type_error extra and no extra column WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(on_type_error="extra")]}) == (
        "route 'r1': on_type_error: 'extra' needs the route's extra column"
    )


def test_on_type_error_extra_from_defaults_with_extra():
    """GIVEN defaults on_type_error extra + extra WHEN parsed THEN the route carries both."""
    parsed = load({"defaults": {"on_type_error": "extra", "extra": "Raw"}, "routes": [route()]}).routes[0]

    assert (parsed.on_type_error, parsed.extra) == ("extra", "Raw")


@pytest.mark.parametrize("value", ["sometimes", 1, "true"])
def test_auxiliary_must_be_a_boolean(value):
    """GIVEN auxiliary as a string or number WHEN parsed THEN 'must be true or false'."""
    assert only_problem({"routes": [route(auxiliary=value)]}) == (
        f"route 'r1': auxiliary: {value!r} must be true or false"
    )


def test_auxiliary_true():
    """GIVEN auxiliary: true WHEN parsed THEN the flag is set."""
    assert load({"routes": [route(auxiliary=True)]}).routes[0].auxiliary is True


@pytest.mark.parametrize("secret", ["", 123])
def test_secret_must_be_a_non_empty_string(secret):
    """GIVEN an empty or numeric secret WHEN parsed THEN refused."""
    assert only_problem({"routes": [route(secret=secret)]}) == (
        "route 'r1': secret: must be a non-empty string when given"
    )


def test_secret_is_not_shown_in_the_route_repr():
    """GIVEN a route with a secret WHEN repr'd THEN the secret does not appear."""
    parsed = load({"routes": [route(secret="s3cr3t-value")]}).routes[0]

    assert parsed.secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(parsed)


def test_format_invalid():
    """GIVEN format xml WHEN parsed THEN the formats are listed."""
    assert only_problem({"routes": [route(format="xml")]}) == (
        "route 'r1': format: 'xml' is not one of auto, ndjson, json, records, csv"
    )


# --- ${VAR} substitution ------------------------------------------------------------------------


def test_variable_is_substituted():
    """GIVEN ${ENDPOINT} and the variable set WHEN parsed THEN its value is used (also mid-string)."""
    config = load({"routes": [route(endpoint="${ENDPOINT}", match="${PREFIX}-hook")]},
                  env={"ENDPOINT": "https://from-env.example", "PREFIX": "gh"})

    assert (config.routes[0].endpoint, config.routes[0].match) == ("https://from-env.example", "gh-hook")


def test_missing_variable_names_the_variable_and_route():
    """GIVEN ${LOGS_X} unset WHEN parsed THEN one message names the variable, the route and the key
    (not again as a bad endpoint)."""
    assert only_problem({"routes": [route(endpoint="${LOGS_X}")]}) == (
        "route 'r1': endpoint: environment variable LOGS_X is not set"
    )


def test_missing_variable_in_a_dcr_schema_path_is_reported_once():
    """GIVEN schema: ${DCR_FILE} unset WHEN parsed THEN only the variable is reported (no crash on the path)."""
    assert only_problem({"routes": [route(columns=None, schema="${DCR_FILE}")]}) == (
        "route 'r1': schema: environment variable DCR_FILE is not set"
    )


def test_missing_variable_in_defaults():
    """GIVEN ${DCR_IMMUTABLE_ID} in defaults, unset WHEN parsed THEN 'defaults.dcr' is named."""
    problems = problems_of({"defaults": {"dcr": "${DCR_IMMUTABLE_ID}"}, "routes": [route(dcr=None)]})

    assert problems[0] == "defaults.dcr: environment variable DCR_IMMUTABLE_ID is not set"


def test_empty_variable_counts_as_missing():
    """GIVEN a variable set to '' WHEN parsed THEN it is reported as not set."""
    assert only_problem({"routes": [route(secret="${SECRET}")]}, env={"SECRET": ""}) == (
        "route 'r1': secret: environment variable SECRET is not set"
    )


@pytest.mark.parametrize("env", [{}, {"ENDPOINT": ""}])
def test_variable_default(env):
    """GIVEN ${ENDPOINT:-https://fallback.example} and ENDPOINT unset or empty WHEN parsed THEN the default."""
    config = load({"routes": [route(endpoint="${ENDPOINT:-https://fallback.example}")]}, env=env)

    assert config.routes[0].endpoint == "https://fallback.example"


def test_variable_default_loses_to_a_set_variable():
    """GIVEN ${ENDPOINT:-...} and ENDPOINT set WHEN parsed THEN the variable wins."""
    config = load({"routes": [route(endpoint="${ENDPOINT:-https://fallback.example}")]},
                  env={"ENDPOINT": "https://set.example"})

    assert config.routes[0].endpoint == "https://set.example"


def test_variables_in_nested_values():
    """GIVEN ${VAR} inside map values WHEN parsed THEN they are substituted too."""
    config = load({"routes": [route(map={"Message": "${MSG_PATH}"})]}, env={"MSG_PATH": "payload.text"})

    assert dict(config.routes[0].map) == {"Message": "payload.text"}


# --- files ---------------------------------------------------------------------------------------


def test_missing_routes_file(tmp_path):
    """GIVEN a routes path that does not exist WHEN loaded THEN the message names it and RELAY_CONFIG."""
    path = tmp_path / "relay.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert caught.value.problems == [f"routes file {str(path)!r} does not exist (set RELAY_CONFIG)"]


def test_routes_file_not_utf8(tmp_path):
    """GIVEN a routes file in Latin-1 WHEN loaded THEN 'is not UTF-8'."""
    path = tmp_path / "relay.yaml"
    path.write_bytes("routes: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert caught.value.problems == [f"routes file {str(path)!r} is not UTF-8"]


def test_load_config_resolves_dcr_files_beside_the_routes_file(tmp_path):
    """GIVEN relay.yaml and dcr.json in one folder WHEN loaded without base THEN the folder is the base."""
    write_dcr(tmp_path, {"Custom-T": columns(("Message", "string"))})
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump({"routes": [route(columns=None, schema="dcr.json")]}), encoding="utf-8")

    config = load_config(path, {})

    assert (config.path, config.routes[0].schema.names) == (path, ("Message",))


def test_the_repository_relay_yaml_validates(relay_env, repo_root):
    """GIVEN the shipped relay.yaml and its variables WHEN loaded THEN it validates, with the four webhook routes."""
    config = load_config(repo_root / "relay.yaml", relay_env, base=repo_root)

    assert [(r.name, r.source, r.match, r.stream) for r in config.routes_for("http")] == [
        ("github", "http", "github", "Custom-GitHubEvents"),
        ("cloudevents", "http", "cloudevents", "Custom-CloudEvents"),
        ("eventgrid", "http", "eventgrid", "Custom-CloudEvents"),
        ("applogs", "http", "applogs", "Custom-AppLogs"),
    ]
    assert {r.endpoint for r in config.routes} == {"https://127.0.0.1:4443"}
    assert {r.dcr for r in config.routes} == {DCR_ID}
    github = config.http_route("github")
    assert (github.secret, github.extra, github.id_column) == ("x", "RawData", "EventId")


def test_the_repository_relay_yaml_without_variables_names_each_missing_one(repo_root):
    """GIVEN relay.yaml and no variables WHEN loaded THEN each missing variable is reported with its place,
    and nothing else (no follow-on errors about the empty values)."""
    with pytest.raises(ConfigError) as caught:
        load_config(repo_root / "relay.yaml", {}, base=repo_root)

    problems = caught.value.problems
    assert problems[:3] == [
        "defaults.endpoint: environment variable LOGS_INGESTION_ENDPOINT is not set",
        "defaults.dcr: environment variable DCR_IMMUTABLE_ID is not set",
        "route 'github': secret: environment variable GITHUB_WEBHOOK_SECRET is not set",
    ]
    assert all("environment variable" in p and p.endswith(" is not set") for p in problems), problems


# --- app settings (shared/settings.py) ------------------------------------------------------------


def test_settings_defaults(tmp_path):
    """GIVEN no settings WHEN read THEN the documented defaults apply."""
    settings = Settings.from_env({}, app_dir=tmp_path)

    assert settings == Settings(config_path=tmp_path / "relay.yaml")
    assert (settings.credential, settings.cloud, settings.max_request_bytes, settings.max_replays) == (
        "managed_identity", "public", 1_000_000, 5
    )
    assert (settings.poison_queue, settings.poison_container, settings.deadletter_container) == (
        "relay-poison", "relay-poison", "relay-deadletter"
    )


def test_settings_relative_config_path_is_under_the_app_dir(tmp_path):
    """GIVEN RELAY_CONFIG relative WHEN read THEN it resolves under the app dir; absolute stays."""
    assert Settings.from_env({"RELAY_CONFIG": "conf/r.yaml"}, app_dir=tmp_path).config_path == tmp_path / "conf/r.yaml"
    absolute = tmp_path / "abs.yaml"
    assert Settings.from_env({"RELAY_CONFIG": str(absolute)}, app_dir=Path("/nonexistent")).config_path == absolute


@pytest.mark.parametrize("name", ["RELAY_MAX_BODY_BYTES", "RELAY_UPLOAD_CONCURRENCY", "RELAY_MAX_REPLAYS",
                                  "RELAY_UPLOAD_DEADLINE_SECONDS", "RELAY_UPLOAD_TIMEOUT_SECONDS"])
def test_settings_bad_int(name, tmp_path):
    """GIVEN an integer setting that is not a number WHEN read THEN the setting and value are named."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: "four"}, app_dir=tmp_path)

    assert str(caught.value) == f"setting {name}: 'four' is not an integer"


def test_settings_int_below_minimum(tmp_path):
    """GIVEN RELAY_MAX_REPLAYS=0 WHEN read THEN 'must be at least 1'."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_MAX_REPLAYS": "0"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_MAX_REPLAYS: must be at least 1, got 0"


def test_settings_max_request_bytes_below_minimum(tmp_path):
    """GIVEN RELAY_MAX_REQUEST_BYTES=1023 WHEN read THEN its minimum 1024 is named."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_MAX_REQUEST_BYTES": "1023"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_MAX_REQUEST_BYTES: must be at least 1024, got 1023"


def test_settings_max_request_bytes_over_the_service_limit(tmp_path):
    """GIVEN RELAY_MAX_REQUEST_BYTES one over 1048576 WHEN read THEN refused (the service's 1 MB limit)."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_MAX_REQUEST_BYTES": "1048577"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_MAX_REQUEST_BYTES: the service refuses calls over 1048576 bytes"


def test_settings_max_request_bytes_at_the_service_limit(tmp_path):
    """GIVEN RELAY_MAX_REQUEST_BYTES=1048576 WHEN read THEN accepted."""
    assert Settings.from_env({"RELAY_MAX_REQUEST_BYTES": "1048576"}, app_dir=tmp_path).max_request_bytes == 1048576


def test_settings_bad_cloud(tmp_path):
    """GIVEN RELAY_CLOUD=germany WHEN read THEN the clouds are listed."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_CLOUD": "germany"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_CLOUD: 'germany' is not one of public, china, usgov"


def test_settings_bad_credential(tmp_path):
    """GIVEN RELAY_CREDENTIAL=client_secret WHEN read THEN the kinds are listed."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_CREDENTIAL": "client_secret"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_CREDENTIAL: 'client_secret' is not one of managed_identity, default, static"


def test_settings_static_without_token(tmp_path):
    """GIVEN RELAY_CREDENTIAL=static and no RELAY_STATIC_TOKEN WHEN read THEN the token is required."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_CREDENTIAL": "static"}, app_dir=tmp_path)

    assert str(caught.value) == "setting RELAY_STATIC_TOKEN: required when RELAY_CREDENTIAL=static"


def test_settings_static_with_token(tmp_path):
    """GIVEN static and a token WHEN read THEN both are kept."""
    settings = Settings.from_env({"RELAY_CREDENTIAL": "static", "RELAY_STATIC_TOKEN": "tok"}, app_dir=tmp_path)

    assert (settings.credential, settings.static_token) == ("static", "tok")


def test_settings_ca_bundle_missing_file(tmp_path):
    """GIVEN RELAY_CA_BUNDLE naming a missing file WHEN read THEN the path is named."""
    missing = str(tmp_path / "ca.pem")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RELAY_CA_BUNDLE": missing}, app_dir=tmp_path)

    assert str(caught.value) == f"setting RELAY_CA_BUNDLE: file {missing!r} does not exist"


def test_settings_ca_bundle_present(tmp_path):
    """GIVEN RELAY_CA_BUNDLE naming a file WHEN read THEN it is kept."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")

    assert Settings.from_env({"RELAY_CA_BUNDLE": str(bundle)}, app_dir=tmp_path).ca_bundle == str(bundle)


@pytest.mark.parametrize(("cloud", "scope"), [
    (None, "https://monitor.azure.com/.default"),
    ("public", "https://monitor.azure.com/.default"),
    ("china", "https://monitor.azure.cn/.default"),
    ("usgov", "https://monitor.azure.us/.default"),
])
def test_settings_token_scope_per_cloud(cloud, scope, tmp_path):
    """GIVEN RELAY_CLOUD WHEN read THEN the token scope is that cloud's monitor audience."""
    env = {} if cloud is None else {"RELAY_CLOUD": cloud}

    assert Settings.from_env(env, app_dir=tmp_path).token_scope == scope


# --- static credential only on loopback (shared/credentials.py) ---------------------------------------


def _config_with(endpoints: list[str]):
    return load({"routes": [route(name=f"r{i}", match=f"r{i}", endpoint=e) for i, e in enumerate(endpoints)]})


def test_static_credential_refused_for_a_remote_endpoint(tmp_path):
    """GIVEN static and one remote endpoint beside a loopback one WHEN checked THEN the remote one is named."""
    settings = Settings(config_path=tmp_path / "r.yaml", credential="static", static_token="t")
    config = _config_with(["https://127.0.0.1:4443", ENDPOINT])

    with pytest.raises(SettingsError) as caught:
        check_credential_fits(settings, config)

    assert str(caught.value) == (
        "setting RELAY_CREDENTIAL: 'static' is allowed only when every endpoint is on a loopback address; "
        f"these are not: {ENDPOINT}"
    )


@pytest.mark.parametrize("endpoint", ["https://127.0.0.1:4443", "https://localhost:4443", "https://[::1]:4443",
                                      "http://localhost"])
def test_static_credential_allowed_on_loopback(endpoint, tmp_path):
    """GIVEN static and a loopback endpoint WHEN checked THEN no error."""
    settings = Settings(config_path=tmp_path / "r.yaml", credential="static", static_token="t")

    assert check_credential_fits(settings, _config_with([endpoint])) is None


def test_managed_identity_may_use_remote_endpoints(tmp_path):
    """GIVEN the managed identity credential and a remote endpoint WHEN checked THEN no error."""
    settings = Settings(config_path=tmp_path / "r.yaml")

    assert check_credential_fits(settings, _config_with([ENDPOINT])) is None


@pytest.mark.parametrize(("url", "expected"), [
    ("https://127.0.0.1", True), ("https://127.8.9.10:1", True), ("https://localhost", True),
    ("https://[::1]", True), ("https://localhost.evil.example", False), ("https://127.0.0.1@evil.example", False),
    ("https://10.0.0.1", False), ("https://[::1", False),
])
def test_is_loopback_url(url, expected):
    """GIVEN URLs WHEN checked THEN only loopback hosts count (userinfo tricks and look-alikes do not)."""
    assert is_loopback_url(url) is expected


def test_unresolved_key_vault_reference_is_refused_as_secret(tmp_path):
    """GIVEN a secret that is still the literal Key Vault reference App Service passes on before the
    role takes effect, WHEN the routes load, THEN it is refused instead of becoming a guessable secret."""
    import pytest

    from shared.config import ConfigError, parse_config

    text = (
        "routes:\n  - name: gh\n    source: http\n    match: gh\n    endpoint: https://x.example\n"
        "    dcr: dcr-0123456789abcdef0123456789abcdef\n    stream: Custom-T\n"
        "    columns: [{name: A, type: string}]\n"
        "    secret: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/gh/)'\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, {}, tmp_path)
    assert "route 'gh': secret: is an unresolved Key Vault reference" in str(error.value)


def test_map_of_a_computed_column_is_reported(tmp_path):
    """GIVEN a route that maps the columns time_field, extra and id_column already fill,
    WHEN it loads, THEN each such map entry is reported instead of being ignored."""
    import pytest

    from shared.config import ConfigError, parse_config

    text = (
        "routes:\n  - name: r\n    source: http\n    match: r\n    endpoint: https://x.example\n"
        "    dcr: dcr-0123456789abcdef0123456789abcdef\n    stream: Custom-T\n"
        "    columns: [{name: TimeGenerated, type: datetime}, {name: X, type: dynamic}, {name: Id, type: string}]\n"
        "    time_field: t\n    extra: X\n    id_column: Id\n    map: {TimeGenerated: a, X: b, Id: c}\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, {}, tmp_path)
    problems = error.value.problems
    assert "route 'r': map.TimeGenerated: column is filled by time_field; remove it from map" in problems
    assert "route 'r': map.X: column is filled by extra; remove it from map" in problems
    assert "route 'r': map.Id: column is filled by id_column; remove it from map" in problems


# --- signature: (issue 14) --------------------------------------------------------------------------------


def _signed_route(signature: str, extra: str = "") -> str:
    return f"""
defaults:
  endpoint: https://example.ingest.monitor.azure.com
  dcr: dcr-00000000000000000000000000000000
routes:
  - name: shop
    source: http
    match: shop
    stream: Custom-T
    columns: [{{name: TimeGenerated, type: datetime}}, {{name: Raw, type: dynamic}}]
    extra: Raw
{extra}    signature: {signature}
"""


def test_a_signature_block_becomes_the_routes_scheme(tmp_path):
    config = parse_config(_signed_route(
        "{secret: s3cret, header: X-Slack-Signature, prefix: 'v0=', timestamp_header: X-Slack-Request-Timestamp,"
        " signed: 'v0:{timestamp}:{body}', tolerance: 120}"), {}, tmp_path)
    scheme = config.routes[0].signature
    assert (scheme.header, scheme.prefix, scheme.encoding, scheme.timestamp_header, scheme.signed, scheme.tolerance) == (
        "X-Slack-Signature", "v0=", "hex", "X-Slack-Request-Timestamp", "v0:{timestamp}:{body}", 120)
    assert "s3cret" not in repr(config.routes[0])


@pytest.mark.parametrize("signature, extra, message", [
    ("{header: X-Sig}", "", "signature.secret: required"),
    ("{secret: s, header: 'X Sig'}", "", "signature.header: 'X Sig' must be an HTTP header name"),
    ("{secret: s, header: X-Sig, encoding: base32}", "", "signature.encoding: 'base32' is not one of hex, base64"),
    ("{secret: s, header: X-Sig, timestamp_header: X-Ts, signed: '{body}'}", "", "signature.signed:"),
    ("{secret: s, header: X-Sig, signed: '{timestamp}.{body}'}", "", "signature.signed:"),
    ("{secret: s, header: X-Sig, timestamp_header: X-Ts, tolerance: 0}", "", "signature.tolerance: 0 must be"),
    ("{secret: s, header: X-Sig, algorithm: sha1}", "", "signature.algorithm: unknown key"),
    ("{secret: s, header: X-Sig}", "    secret: gh\n", "signature: use secret"),
    ("{secret: '@Microsoft.KeyVault(SecretUri=https://v/s)', header: X-Sig}", "", "unresolved Key Vault reference"),
    ("just-a-string", "", "signature: must be a mapping"),
], ids=["no-secret", "bad-header", "bad-encoding", "unsigned-timestamp", "timestamp-without-header", "tolerance",
        "unknown-key", "both", "keyvault", "not-a-mapping"])
def test_signature_problems_name_the_route_and_key(tmp_path, signature, extra, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(_signed_route(signature, extra), {}, tmp_path)
    assert any(p.startswith("route 'shop': ") and message in p for p in caught.value.problems), caught.value.problems
