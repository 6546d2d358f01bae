"""Times webhooks and exports use, turned into the UTC ISO 8601 ('...Z') TimeGenerated the service expects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.timeparse import TimeFormatError, format_epoch, format_time, normalize_time, parse_time


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T17:31:00Z", "2024-05-01T17:31:00Z"),
    ("2024-05-01T17:31:00+00:00", "2024-05-01T17:31:00Z"),
    ("2024-05-01T17:31:00.5Z", "2024-05-01T17:31:00.500000Z"),
], ids=["Z", "+00:00", "fraction"])
def test_iso_with_utc_zone(value, expected):
    """GIVEN ISO 8601 in UTC WHEN normalized THEN the same instant with a 'Z'."""
    assert normalize_time(value)[0] == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2019-05-15T15:20:30-05:00", "2019-05-15T20:20:30Z"),  # github_push.json commit timestamp
    ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
    ("2024-05-01T10:00:00+0200", "2024-05-01T08:00:00Z"),
])
def test_iso_with_offset_is_converted_to_utc(value, expected):
    """GIVEN ISO 8601 with an offset WHEN normalized THEN converted to UTC."""
    assert normalize_time(value)[0] == expected


def test_iso_without_zone_is_utc():
    """GIVEN ISO 8601 without a zone WHEN normalized THEN it is read as UTC (not local time)."""
    assert normalize_time("2024-05-01T10:00:00") == ("2024-05-01T10:00:00Z", 1714557600.0)


def test_iso_with_space_separator():
    """GIVEN '2024-05-01 10:00:04' (applogs.ndjson line 5) WHEN normalized THEN the same instant in UTC."""
    assert normalize_time("2024-05-01 10:00:04") == ("2024-05-01T10:00:04Z", 1714557604.0)


def test_iso_with_seven_fraction_digits():
    """GIVEN .NET's 7-digit fractions (cloudevents_batch.json) WHEN normalized THEN truncated to microseconds."""
    assert normalize_time("2024-05-01T19:00:00.1234567Z") == ("2024-05-01T19:00:00.123456Z", 1714590000.123456)


def test_date_only_is_midnight_utc():
    """GIVEN a date without time WHEN normalized THEN midnight UTC."""
    assert normalize_time("2024-05-01") == ("2024-05-01T00:00:00Z", 1714521600.0)


def test_iso_basic_date_is_a_date_not_an_epoch():
    """GIVEN eight digits YYYYMMDD WHEN normalized THEN the ISO basic date."""
    assert normalize_time("20240501")[0] == "2024-05-01T00:00:00Z"


@pytest.mark.parametrize(("value", "expected"), [
    (1714557601, ("2024-05-01T10:00:01Z", 1714557601.0)),
    (1714557602500, ("2024-05-01T10:00:02.500000Z", 1714557602.5)),
    (1714557602500000, ("2024-05-01T10:00:02.500000Z", 1714557602.5)),
    (1714557602500000000, ("2024-05-01T10:00:02.500000Z", 1714557602.5)),
], ids=["seconds", "milliseconds", "microseconds", "nanoseconds"])
def test_epoch_integers_of_each_unit(value, expected):
    """GIVEN epoch s / ms / us / ns integers WHEN normalized THEN the unit is inferred from the magnitude."""
    assert normalize_time(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1714557601.25, "2024-05-01T10:00:01.250000Z"),
    (1714557602500.0, "2024-05-01T10:00:02.500000Z"),
], ids=["seconds", "milliseconds"])
def test_epoch_floats(value, expected):
    """GIVEN epoch floats WHEN normalized THEN fractions are kept."""
    assert normalize_time(value)[0] == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("1714557601", "2024-05-01T10:00:01Z"),
    ("1714557602500", "2024-05-01T10:00:02.500000Z"),
    ("1714557602500000", "2024-05-01T10:00:02.500000Z"),
    ("1714557602500000000", "2024-05-01T10:00:02.500000Z"),
    ("1714557602.5", "2024-05-01T10:00:02.500000Z"),
    (" 1714557601 ", "2024-05-01T10:00:01Z"),
], ids=["seconds", "milliseconds", "microseconds", "nanoseconds", "float", "padded"])
def test_epoch_numeric_strings(value, expected):
    """GIVEN epoch numbers written as strings WHEN normalized THEN the same as the numbers."""
    assert normalize_time(value)[0] == expected


def test_epoch_milliseconds_string_that_looks_like_a_basic_iso_datetime():
    """GIVEN "1701011200000" (2023-11-26T15:06:40Z in ms) which CPython's fromisoformat reads as
    1701-01-12 (any character may separate date and time) WHEN normalized THEN it is the epoch."""
    assert normalize_time("1701011200000") == ("2023-11-26T15:06:40Z", 1701011200.0)


def test_negative_epoch():
    """GIVEN -1 WHEN normalized THEN one second before 1970."""
    assert normalize_time(-1) == ("1969-12-31T23:59:59Z", -1.0)


@pytest.mark.parametrize(("value", "expected"), [
    ("Wed, 01 May 2024 10:00:03 GMT", "2024-05-01T10:00:03Z"),  # applogs.ndjson line 4
    ("Wed, 01 May 2024 19:05:00 GMT", "2024-05-01T19:05:00Z"),  # cloudevents_batch.json
    ("Wed, 01 May 2024 12:00:03 +0200", "2024-05-01T10:00:03Z"),
])
def test_rfc_1123(value, expected):
    """GIVEN RFC 1123 dates WHEN normalized THEN UTC ISO 8601."""
    assert normalize_time(value)[0] == expected


@pytest.mark.parametrize(("value", "message"), [
    (True, "True is a boolean, not a time"),
    (False, "False is a boolean, not a time"),
    (None, "a NoneType is not a time"),
    ({"t": 1}, "a dict is not a time"),
    ([1714557601], "a list is not a time"),
    ("garbage", "'garbage' is not ISO 8601, epoch or RFC 1123"),
    ("", "empty string is not a time"),
    ("   ", "empty string is not a time"),
    ("2024-13-45", "'2024-13-45' is not ISO 8601, epoch or RFC 1123"),
    ("12abc", "'12abc' is not ISO 8601, epoch or RFC 1123"),
    ("nan", "'nan' is not ISO 8601, epoch or RFC 1123"),
    (float("nan"), "nan is not a finite epoch time"),
    (float("inf"), "inf is not a finite epoch time"),
    ("1" * 400, "inf is not a finite epoch time"),
    (10**400, "integer is too large to be an epoch time"),
    (1e25, "1e+16 is out of the range of dates"),
], ids=["true", "false", "none", "dict", "list", "garbage", "empty", "blank", "month-13", "digits-then-letters",
        "nan-text", "nan", "inf", "huge-digit-string", "huge-int", "beyond-year-9999"])
def test_values_that_are_not_times_are_rejected(value, message):
    """GIVEN booleans, None, containers, garbage, non-finite or out-of-range numbers WHEN parsed
    THEN TimeFormatError (never another exception) with a message naming the value."""
    with pytest.raises(TimeFormatError) as caught:
        parse_time(value)

    assert str(caught.value) == message


def test_parse_time_returns_an_aware_datetime():
    """GIVEN a zone-less ISO time WHEN parsed THEN the datetime carries UTC."""
    assert parse_time("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_format_time_converts_to_utc_with_z():
    """GIVEN an aware datetime at +05:30 WHEN formatted THEN UTC with a 'Z', no microseconds when none."""
    moment = datetime(2024, 5, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    assert format_time(moment) == "2024-05-01T10:00:00Z"


def test_format_time_keeps_microseconds():
    """GIVEN microseconds WHEN formatted THEN all six digits then 'Z'."""
    assert format_time(datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)) == "2024-05-01T10:00:00.000001Z"


def test_format_epoch():
    """GIVEN epoch seconds WHEN formatted THEN UTC ISO with 'Z'."""
    assert format_epoch(1714557600.0) == "2024-05-01T10:00:00Z"
