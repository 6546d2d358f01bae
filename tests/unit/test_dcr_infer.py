"""``relay dcr init`` inference and merging (relay_cli.dcr_infer, relay_cli.dcr_file), no I/O.

Service facts (DESIGN 4): column names start with a letter, <= 45 letters/digits/_; reserved
_ResourceId id _SubscriptionId TenantId Type UniqueId Title; custom columns on Azure tables end in
_CF; <= 500 columns; int is 32-bit, long 64-bit, real a finite double.
"""

from __future__ import annotations

import pytest

from relay_cli.dcr_file import DcrFileError, merge_stream, merge_table_plan, output_stream_for, route_snippet
from relay_cli.dcr_infer import (
    InferenceError,
    classify,
    column_type,
    fits,
    infer,
    name_columns,
    sanitize,
)
from shared.schema import RESERVED_COLUMNS, column_name_problem, parse_columns


def json_samples(*events):
    return [(event, False) for event in events]


def types(inference) -> dict[str, str]:
    return {column.name: column.type for column in inference.columns}


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "expected"), [
    ([1, 2, -(2**31)], "int"),
    ([1, 2**31], "long"),                      # beyond 32 bits widens to long
    ([1, 2.5], "real"),                        # int -> real
    ([2**40, 0.5], "real"),                    # long -> real while exact
    ([True, False], "boolean"),
    (["2024-05-01T10:00:00Z", "2024-05-01 10:00:00.1234567+02:00", "2024-05-01T10:00:00.123-0700"], "datetime"),
    (["2024-05-01T10:00:00Z", "hello"], "string"),
    (["a", "b"], "string"),
    ([{"a": 1}, {"b": 2}], "dynamic"),
    ([[1, 2], [3]], "dynamic"),
    ([1, 2.5, "x"], "dynamic"),                # mixed int/float/string
    ([None, 3], "int"),                        # nulls say nothing about the type
])
def test_type_across_samples(values, expected):
    # GIVEN one field with these values across samples WHEN inferred THEN the narrowest type holding all of them
    inference = infer(json_samples(*({"f": value} for value in values)))
    assert types(inference)["F"] == expected


def test_integers_beyond_64_bits_are_kept_exact_as_string_with_a_warning():
    # GIVEN an integer that no long holds WHEN inferred THEN string (exact text), and the user is told why
    inference = infer(json_samples({"big": 2**64}, {"big": 5}))
    assert types(inference)["Big"] == "string"
    assert any("beyond 64 bits" in warning for warning in inference.warnings)


def test_huge_integers_mixed_with_decimals_are_not_rounded_into_a_real():
    inference = infer(json_samples({"n": 2**60}, {"n": 0.5}))
    assert types(inference)["N"] == "string"
    assert any("2^53" in warning for warning in inference.warnings)


def test_null_only_field_is_a_string_with_a_warning():
    # GIVEN a field that is null in every sample WHEN inferred THEN string, flagged as a guess
    inference = infer(json_samples({"gone": None, "x": 1}, {"gone": None, "x": 2}))
    column = next(c for c in inference.columns if c.name == "Gone")
    assert (column.type, column.null_only) == ("string", True)
    assert "field 'gone': only null values in the samples: declared string" in inference.warnings


def test_mixed_kinds_warn():
    inference = infer(json_samples({"v": 1}, {"v": "one"}))
    assert "field 'v': mixed kinds (int, string): declared dynamic, each value kept as sent" in inference.warnings


@pytest.mark.parametrize(("text", "kind"), [
    ("200", "int"), ("3000000000", "long"), ("1" * 30, "bigint"), ("2.5", "real"), ("1e3", "real"),
    ("TRUE", "boolean"), ("2024-05-01T10:00:00Z", "datetime"), ("abc", "string"), ("nan", "string"),
])
def test_csv_text_is_read_as_the_relay_coerces_it(text, kind):
    # GIVEN a CSV cell WHEN classified THEN the kind the relay's coercion makes of that text
    assert classify(text, from_text=True) == kind


def test_json_strings_that_look_numeric_stay_strings():
    assert classify("200") == "string"


def test_csv_column_mixing_numbers_and_words_is_text():
    assert column_type({"int", "string"}, 5, text_only=True) == ("string", None)


@pytest.mark.parametrize("text", ["2024-05-01", "May 1 2024", "2024-13-01T10:00:00Z", "10:00:00"])
def test_not_a_date_and_time(text):
    assert classify(text) == "string"


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "name"), [
    ("operationName", "OperationName"), ("duration_ms", "DurationMs"), ("@timestamp", "Timestamp"),
    ("http.status-code", "HttpStatusCode"), ("2fa", "Field2fa"), ("$$$", "Field"), ("größe", "GrE"),
])
def test_sanitize(key, name):
    assert sanitize(key) == name
    assert column_name_problem(name) is None


def test_names_colliding_after_sanitizing_get_numbered():
    # GIVEN three keys that all sanitize to UserId WHEN named THEN three distinct valid names, the collision noted
    names, notes = name_columns(["user_id", "userId", "user-id"], azure_table=False)
    assert list(names.values()) == ["UserId", "UserId_2", "UserId_3"]
    assert len(notes) == 2 and "collides" in notes[0]


@pytest.mark.parametrize("reserved", sorted(RESERVED_COLUMNS))
def test_reserved_names_are_renamed(reserved):
    # GIVEN a field named like a reserved column WHEN named THEN Original<Name>, which the service accepts
    names, notes = name_columns([reserved], azure_table=False)
    assert column_name_problem(names[reserved]) is None
    if reserved.startswith("_"):  # letters first: _ResourceId -> ResourceId, which is not reserved
        assert names[reserved] == reserved[1:] and notes == []
    else:
        assert names[reserved] == "Original" + reserved[0].upper() + reserved[1:]
        assert "is reserved by Azure Monitor" in notes[0]


def test_long_names_are_cut_to_45_and_stay_unique():
    keys = ["a" * 60, "a" * 61]
    names, _ = name_columns(keys, azure_table=False)
    assert [len(n) for n in names.values()] == [45, 45]
    assert len(set(names.values())) == 2


def test_azure_table_columns_end_in_cf():
    # GIVEN a target that is an Azure table WHEN named THEN every custom column ends in _CF, within 45
    inference = infer(json_samples({"x" * 50: 1, "level": "info"}), azure_table=True)
    custom = [c.name for c in inference.columns if c.name != "TimeGenerated"]
    assert all(name.endswith("_CF") and len(name) <= 45 for name in custom)
    assert "Level_CF" in custom


def test_a_field_named_time_generated_becomes_the_time_column():
    inference = infer(json_samples({"TimeGenerated": "2024-05-01T10:00:00Z", "a": 1}))
    assert inference.time_field == "TimeGenerated"
    assert [c.name for c in inference.columns] == ["TimeGenerated", "A"]


# --- time field -------------------------------------------------------------------------------


def test_time_field_becomes_time_generated_and_is_no_column():
    inference = infer(json_samples({"ts": 1714557600, "a": 1}), time_field="ts")
    assert (inference.time_field, [c.name for c in inference.columns]) == ("ts", ["TimeGenerated", "A"])


def test_nested_time_field_keeps_its_object():
    inference = infer(json_samples({"meta": {"at": "2024-05-01T10:00:00Z"}}), time_field="meta.at")
    assert types(inference) == {"TimeGenerated": "datetime", "Meta": "dynamic"}


def test_time_field_absent_everywhere_is_an_error():
    with pytest.raises(InferenceError, match="--time-field 'when' is in none of the 1 sample"):
        infer(json_samples({"a": 1}), time_field="when")


def test_time_field_that_is_no_time_is_an_error_naming_the_sample():
    with pytest.raises(InferenceError, match="--time-field 'ts': sample #2: 'soon' is not ISO 8601"):
        infer(json_samples({"ts": "2024-05-01T10:00:00Z"}, {"ts": "soon"}), time_field="ts")


def test_time_field_missing_in_some_samples_warns():
    inference = infer(json_samples({"ts": "2024-05-01T10:00:00Z"}, {"a": 1}), time_field="ts")
    assert any("missing in 1 sample" in warning for warning in inference.warnings)


def test_no_samples_and_no_objects_are_errors():
    with pytest.raises(InferenceError, match="no sample events"):
        infer([])
    with pytest.raises(InferenceError, match="no sample is a JSON object"):
        infer(json_samples([1, 2], "text"))


# --- 500 columns ------------------------------------------------------------------------------


def test_600_fields_keep_the_most_frequent_as_columns_and_the_rest_in_a_dynamic_column():
    # GIVEN 600 fields, the last 100 only in one of two samples
    first = {f"f{n}": n for n in range(600)}
    second = {f"f{n}": n for n in range(500)}
    # WHEN inferred
    inference = infer(json_samples(first, second))
    # THEN exactly 500 columns: TimeGenerated, 498 fields, and AdditionalFields (dynamic) as the route's extra
    assert len(inference.columns) == 500
    assert inference.columns[-1].name == "AdditionalFields" and inference.columns[-1].type == "dynamic"
    assert inference.extra == "AdditionalFields"
    assert "F499" not in types(inference) and "F497" in types(inference)
    assert any("at most 500 columns" in w and "AdditionalFields" in w for w in inference.warnings)
    parse_columns("Custom-Wide", inference.as_dcr_columns(), "test")  # the relay accepts it


# --- merging ----------------------------------------------------------------------------------


def test_new_document_declares_stream_flow_and_table():
    inference = infer(json_samples({"level": "info", "n": 1}))
    merged = merge_stream(None, "Custom-App", "App_CL", inference)
    properties = merged.document["properties"]
    assert properties["streamDeclarations"]["Custom-App"]["columns"] == inference.as_dcr_columns()
    assert properties["dataFlows"] == [{"streams": ["Custom-App"], "destinations": ["logAnalyticsDest"],
                                        "transformKql": "source", "outputStream": "Custom-App_CL"}]
    assert (merged.new_stream, merged.new_flow, merged.mapping) == (True, True, {"Level": "level", "N": "n"})


def test_merge_is_idempotent():
    # GIVEN a document made from samples WHEN the same samples are merged again THEN nothing changes
    inference = infer(json_samples({"level": "info", "n": 1}))
    first = merge_stream(None, "Custom-App", "App_CL", inference).document
    again = merge_stream(first, "Custom-App", "App_CL", inference)
    assert again.document == first
    assert (again.added, again.conflicts, again.new_stream, again.new_flow) == ([], [], False, False)


def test_merge_adds_columns_and_reports_conflicts_without_changing_types():
    # GIVEN a stream with n as int WHEN samples bring a new field and n beyond 32 bits
    document = merge_stream(None, "Custom-App", "App_CL", infer(json_samples({"n": 1}))).document
    merged = merge_stream(document, "Custom-App", "App_CL", infer(json_samples({"n": 2**40, "extra": "x"})))
    columns = {c["name"]: c["type"] for c in merged.columns}
    # THEN the new column is added, n stays int and the conflict is reported
    assert columns == {"TimeGenerated": "datetime", "N": "int", "Extra": "string"}
    assert merged.added == ["Extra"]
    assert merged.conflicts and merged.conflicts[0].startswith("column N is declared int, but the samples of 'n' need long")


def test_compatible_widenings_and_null_only_are_no_conflict():
    document = merge_stream(None, "Custom-App", "App_CL", infer(json_samples({"r": 1.5, "s": "x"}))).document
    merged = merge_stream(document, "Custom-App", "App_CL", infer(json_samples({"r": 3, "s": None})))
    assert merged.conflicts == []


def test_merge_keeps_other_streams_and_adds_a_second_flow():
    document = merge_stream(None, "Custom-A", "A_CL", infer(json_samples({"a": 1}))).document
    merged = merge_stream(document, "Custom-B", "B_CL", infer(json_samples({"b": 1})))
    assert set(merged.document["properties"]["streamDeclarations"]) == {"Custom-A", "Custom-B"}
    assert [f["outputStream"] for f in merged.document["properties"]["dataFlows"]] == ["Custom-A_CL", "Custom-B_CL"]


def test_merge_over_500_columns_is_an_error():
    document = merge_stream(None, "Custom-A", "A_CL", infer(json_samples({f"a{n}": 1 for n in range(400)}))).document
    with pytest.raises(DcrFileError, match="would have 601 columns, limit 500"):
        merge_stream(document, "Custom-A", "A_CL", infer(json_samples({f"b{n}": 1 for n in range(200)})))


@pytest.mark.parametrize(("document", "message"), [
    ({"properties": []}, "no 'properties' object"),
    ({"properties": {"streamDeclarations": []}}, "streamDeclarations must be an object"),
    ({"properties": {"streamDeclarations": {"Custom-A": {"columns": {}}}}}, "'columns' must be a list"),
    ({"properties": {"streamDeclarations": {}, "dataFlows": {}}}, "dataFlows must be a list"),
    ({"properties": {"streamDeclarations": {}}}, "must name one destination"),
])
def test_broken_documents_are_named(document, message):
    with pytest.raises(DcrFileError, match=message):
        merge_stream(document, "Custom-A", "A_CL", infer(json_samples({"a": 1})))


def test_type_fit_rules():
    assert fits("real", "int") and fits("long", "int") and fits("string", "dynamic")
    assert not fits("int", "long") and not fits("datetime", "string") and not fits("boolean", "int")


def test_table_plan_merge_keeps_a_listed_plan():
    plans, note = merge_table_plan(None, "A_CL", "Auxiliary")
    assert plans == {"tables": {"A_CL": {"plan": "Auxiliary"}}} and note is None
    again, note = merge_table_plan(plans, "A_CL", "Basic")
    assert again == plans and "kept it" in note


def test_output_streams():
    assert (output_stream_for("A_CL"), output_stream_for("CommonSecurityLog")) == (
        "Custom-A_CL", "Microsoft-CommonSecurityLog")


def test_route_snippet_maps_every_column_and_flags_auxiliary():
    inference = infer(json_samples({"ts": "2024-05-01T10:00:00Z", "level": "x"}), time_field="ts")
    merged = merge_stream(None, "Custom-App", "App_CL", inference)
    text = route_snippet("app", "Custom-App", "infra/dcr/app.json", inference, merged.mapping, "Auxiliary")
    assert text == (
        "  - name: app\n    source: http\n    match: app\n    stream: Custom-App\n    schema: infra/dcr/app.json\n"
        "    time_field: ts\n    map:\n      Level: level\n    auxiliary: true\n"
    )
