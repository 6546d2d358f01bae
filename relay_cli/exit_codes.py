"""The exit codes of every ``relay`` command, defined once.

A backfill script must be able to tell "all landed" from "a role is missing and rows were
dead-lettered" by the exit code alone, so each outcome has its own number, the numbers never
change, and when several outcomes apply the worst one wins (:data:`SEVERITY`).
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a ``relay`` command's exit status means (README "Exit codes", ``relay --help``)."""

    OK = 0  #: everything landed / the command did what was asked
    FAILED = 1  #: rows were dead-lettered or failed (neither landed nor kept for replay), or storage failed
    USAGE = 2  #: usage or configuration error: bad arguments, invalid routes file or settings; nothing was sent
    REJECTED = 3  #: some records were rejected as bad input (with reasons); the rest landed
    PARKED = 4  #: some rows were parked in the poison store and will be replayed automatically
    NOTHING = 5  #: ``relay poison``: nothing matched (empty store, unknown id, nothing to replay or purge)


#: The order in which outcomes win, worst first, when one run has several.
SEVERITY: tuple[Exit, ...] = (Exit.USAGE, Exit.FAILED, Exit.PARKED, Exit.REJECTED, Exit.NOTHING, Exit.OK)

#: One line per code, for the README and the ``--help`` epilog.
MEANINGS: dict[Exit, str] = {
    Exit.OK: "everything landed (or the command did what was asked)",
    Exit.FAILED: "some rows were dead-lettered or failed (not landed, not kept for replay), or storage failed",
    Exit.USAGE: "usage or configuration error (bad arguments, invalid routes file or settings); nothing sent",
    Exit.REJECTED: "some records were rejected as bad input (reasons in the summary); the rest landed",
    Exit.PARKED: "some rows were parked in the poison store; they replay automatically",
    Exit.NOTHING: "relay poison: nothing matched (empty store, unknown id, nothing to replay or purge)",
}


def worst(*codes: Exit) -> Exit:
    """The code that wins when a run has several outcomes (``OK`` when given none)."""
    present = set(codes)
    return next((code for code in SEVERITY if code in present), Exit.OK)


def for_counts(*, rejected: int = 0, parked: int = 0, deadlettered: int = 0, failed: int = 0) -> Exit:
    """The exit code of a run's counts: dead-lettered or failed > parked > rejected > all landed."""
    return worst(
        Exit.FAILED if deadlettered or failed else Exit.OK,
        Exit.PARKED if parked else Exit.OK,
        Exit.REJECTED if rejected else Exit.OK,
    )


def epilog() -> str:
    """The exit code table for ``relay --help``."""
    order = ", ".join(f"{code.value}" for code in SEVERITY[1:-1])
    lines = ["exit codes:"] + [f"  {code.value}  {MEANINGS[code]}" for code in Exit]
    lines.append(f"when several apply the worst wins: {order} (before 0); 2 is reported before anything is sent")
    return "\n".join(lines)
