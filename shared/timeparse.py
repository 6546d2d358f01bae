"""Turn the time formats webhooks and exports use into the UTC ISO 8601 the service expects."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_EPOCH_MS_FROM = 1e11  # 1e11 seconds is year 5138; 1e11 ms is 1973: larger numbers are milliseconds
_EPOCH_US_FROM = 1e14
_EPOCH_NS_FROM = 1e17


_EPOCH_TEXT = re.compile(r"[+-]?\d+(?:\.\d+)?")
_BASIC_DATE = re.compile(r"\d{8}")


class TimeFormatError(ValueError):
    pass


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise TimeFormatError(f"{number!r} is not a finite epoch time")
    magnitude = abs(number)
    if magnitude >= _EPOCH_NS_FROM:
        number /= 1e9
    elif magnitude >= _EPOCH_US_FROM:
        number /= 1e6
    elif magnitude >= _EPOCH_MS_FROM:
        number /= 1e3
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise TimeFormatError(f"{number!r} is out of the range of dates") from None


def parse_time(value: object) -> datetime:
    """Parse ISO 8601 (zone optional, then UTC), epoch s/ms/us/ns, or RFC 1123 into an aware datetime."""
    if isinstance(value, bool):
        raise TimeFormatError(f"{value!r} is a boolean, not a time")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            raise TimeFormatError("integer is too large to be an epoch time") from None
        return _from_epoch(number)
    if not isinstance(value, str):
        raise TimeFormatError(f"a {type(value).__name__} is not a time")
    text = value.strip()
    if not text:
        raise TimeFormatError("empty string is not a time")
    if _EPOCH_TEXT.fullmatch(text) and not _BASIC_DATE.fullmatch(text):
        # all digits: epoch, not ISO (fromisoformat reads "1701011200000" as 1701-01-12, since CPython
        # takes any character as the date/time separator); eight digits stay an ISO basic date
        return _from_epoch(float(text))
    if text[0].isdigit() or text[0] in "+-":
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                return _from_epoch(float(text))
            except ValueError:
                raise TimeFormatError(f"{value!r} is not ISO 8601, epoch or RFC 1123") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise TimeFormatError(f"{value!r} is not ISO 8601, epoch or RFC 1123") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with a 'Z', microseconds only when present."""
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_epoch(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, tz=UTC))


def normalize_time(value: object) -> tuple[str, float]:
    """Return the service form of a time and its epoch seconds (for time-span splitting)."""
    moment = parse_time(value)
    return format_time(moment), moment.timestamp()
