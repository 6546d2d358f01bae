"""Times webhooks and exports use, turned into the UTC ISO 8601 ('...Z') TimeGenerated the service expects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- every form against the reading the relay has always done ---------------------------------------


def reference_normalize_time(value: object) -> tuple[str, float]:
    """The relay's time reading before issue 12 (``parse_time`` + ``isoformat``), kept as the reference:
    the C reading must give the same text, epoch and error for every value."""
    moment = parse_time(value)
    text = moment.astimezone(UTC).isoformat()
    return (text[:-6] + "Z" if text.endswith("+00:00") else text), moment.timestamp()


def _outcome(read, value):
    try:
        return read(value)
    except TimeFormatError as error:
        return "TimeFormatError", str(error)
    except OverflowError:  # the old reading let this escape for year 1 at +hh:mm (see the test below)
        return "out of range"


def _iso_text(moment: datetime, separator: str, digits: int, zone: str, pad: str) -> str:
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if digits:
        text += "." + (f"{moment.microsecond:06d}" + "987")[:digits]
    return pad + text + zone + pad


_offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: ("-" if minutes < 0 else "+") + f"{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
_zones = st.one_of(st.sampled_from(["Z", "", "+00:00", "-00:00", "+0000", "z", "+05:30", "-0800", "+24:00"]), _offsets,
                   _offsets.map(lambda offset: offset.replace(":", "")))
iso_texts = st.builds(_iso_text, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
                      st.sampled_from(["T", " ", "t", "_"]), st.integers(0, 9), _zones, st.sampled_from(["", "", " "]))
any_time = st.one_of(
    iso_texts, iso_texts.map(lambda text: text[:-1]), iso_texts.map(lambda text: text.replace(":", "", 1)),
    st.integers(-(2**70), 2**70), st.floats(), st.integers(-(2**62), 2**62).map(str),
    st.integers(-(10**11) - 5, 10**11 + 5), st.integers(10**11 - 10**6, 10**14 + 10**6), st.integers(-(10**14) - 5, -(10**11) + 5),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{0,10})?)?)?)?([zZ]|[+-][0-9]{2}:?[0-9]{2})?",
                  fullmatch=True),
    st.text(max_size=12), st.sampled_from(["Wed, 01 May 2024 10:00:03 GMT", "20240501", "20240501T101010Z",
                                           "2024-W18-3", "2024-122", "1701011200000", "\uff12\uff10\uff12\uff14-05-01"]),
)


@settings(max_examples=4000, deadline=None)
@given(any_time)
def test_the_c_reading_gives_todays_text_epoch_and_errors(value):
    """GIVEN any time value (ISO with every zone, separator and 0-9 fraction digits, epochs, garbage)
    WHEN read by normalize_time and by the reading the relay had before THEN the same text, epoch or error."""
    new, old = _outcome(normalize_time, value), _outcome(reference_normalize_time, value)

    if old == "out of range":  # now a per-event reason instead of an exception that failed the batch
        assert new[0] == "TimeFormatError" and "out of the range of dates" in new[1]
    else:
        assert new == old


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-12-03T04:20:53.123456+00:00", ("2026-12-03T04:20:53.123456Z", 1796271653.123456)),
    ("2026-12-03T04:20:53.1234567Z", ("2026-12-03T04:20:53.123456Z", 1796271653.123456)),
    ("2026-12-03T04:20:53.9999999Z", ("2026-12-03T04:20:53.999999Z", 1796271653.999999)),
    ("2026-12-03T04:20:53.123456789-01:30", ("2026-12-03T05:50:53.123456Z", 1796277053.123456)),
    ("2026-12-03 04:20:53.5+0200", ("2026-12-03T02:20:53.500000Z", 1796264453.5)),
    ("2026-12-03T04:20:53.000000Z", ("2026-12-03T04:20:53Z", 1796271653.0)),
], ids=["python-isoformat", "dotnet-7-digits", "no-rounding-up", "9-digits-offset", "space-hhmm", "zero-fraction"])
def test_common_forms(value, expected):
    """GIVEN the forms senders write (Python's isoformat, .NET's 7 digits, offsets) WHEN normalized
    THEN UTC with six fraction digits, truncated (never rounded into the next second)."""
    assert normalize_time(value) == expected


def test_offset_that_leaves_the_range_of_dates_is_a_reason():
    """GIVEN year 1 at +01:00 (before 0001-01-01 in UTC) WHEN normalized THEN TimeFormatError
    (the reading before issue 12 raised OverflowError, which failed the whole batch)."""
    with pytest.raises(TimeFormatError, match="out of the range of dates"):
        normalize_time("0001-01-01T00:00:00+01:00")
