"""What every benchmark shares: timing on a noisy machine, the machine's description, the relay route."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RELAY_DCR = ROOT / "infra" / "dcr" / "relay.json"
TOKEN = "bench-token"
#: Settings that load relay.yaml without a service (CPU-only benchmarks never connect).
OFFLINE_ENV = {
    "RELAY_CONFIG": str(ROOT / "relay.yaml"),
    "RELAY_CREDENTIAL": "static",
    "RELAY_STATIC_TOKEN": TOKEN,
    "LOGS_INGESTION_ENDPOINT": "https://127.0.0.1:1",
    "DCR_IMMUTABLE_ID": "dcr-" + "0" * 32,
    "GITHUB_WEBHOOK_SECRET": "bench",
}


def emulator_env(emulator: Any, **overrides: str) -> dict[str, str]:
    """Relay settings wired to an emulator (``tests/conftest.py:relay_settings`` without pytest)."""
    env = {
        **OFFLINE_ENV,
        "RELAY_CA_BUNDLE": str(emulator.ca_path),
        "LOGS_INGESTION_ENDPOINT": emulator.endpoint,
        "DCR_IMMUTABLE_ID": emulator.dcr_ids["relay"],
        "RELAY_UPLOAD_DEADLINE_SECONDS": "60",
        "RELAY_UPLOAD_TIMEOUT_SECONDS": "30",
    }
    env.update(overrides)
    return env


def load_route(name: str = "applogs", env: dict[str, str] | None = None) -> Any:
    from shared.config import load_config

    env = env or OFFLINE_ENV
    route = load_config(Path(env["RELAY_CONFIG"]), env, ROOT).http_route(name)
    if route is None:
        raise SystemExit(f"relay.yaml has no http route {name!r}")
    return route


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs; the minimum is the least disturbed by other load."""

    runs: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {"best_s": round(self.best, 4), "median_s": round(self.median, 4), "runs_s": [round(r, 4) for r in self.runs]}


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Run once after a full collection (garbage of an earlier run must not be charged here)."""
    gc.collect()
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def interleaved(contenders: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Time each contender ``repeat`` times, taking turns, so slow phases of the machine hit all of them."""
    timings = {name: Timing() for name in contenders}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for name, function in contenders.items():
            seconds, results[name] = timed(function)
            timings[name].runs.append(seconds)
    return timings, results


PYTHON_DEFAULT_GC = (700, 10, 10)


def with_gc_thresholds(thresholds: tuple[int, ...], function: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``function`` under these collector thresholds (the relay raises them process-wide;
    an SDK user's process runs with Python's defaults)."""

    def run() -> Any:
        saved = gc.get_threshold()
        gc.set_threshold(*thresholds)
        try:
            return function()
        finally:
            gc.set_threshold(*saved)

    return run


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[rank]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    import isal
    import orjson

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": load_average(),
        "orjson": orjson.__version__,
        "isal": getattr(isal, "__version__", "?"),
        "azure-monitor-ingestion": _version("azure-monitor-ingestion"),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over from the
    parent through fork and exec, so a child of the large bench process would report the parent's."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def contender_lines(result: dict[str, Any], labels: tuple[tuple[str, str], ...], mb_per_s: bool = False) -> list[str]:
    """A line per contender of a same-run comparison: best and median time, rows/s (and MB/s of input)."""
    rows = []
    for name, label in labels:
        entry = result[name]
        rate = f", {entry['rows_per_s'] * result['bytes_per_event'] / 1e6:.0f} MB/s" if mb_per_s else ""
        rows.append(f"- {label}: {entry['best_s']:.3f} s best, {entry['median_s']:.3f} s median, "
                    f"{entry['rows_per_s']:,} rows/s{rate}")
    return rows


def paired_rate_ratio(result: dict[str, Any], first: str = "relay", second: str = "passthrough") -> float | None:
    """The median over the interleaved rounds of ``first``'s rate over ``second``'s in the same round: a ratio
    that a slow or fast phase of the machine moves less than one of two bests taken in different rounds (this
    VM's C-heavy contenders swing more between phases than its Python-heavy ones). None without the runs."""
    ours, theirs = result.get(first, {}).get("runs_s"), result.get(second, {}).get("runs_s")
    if not ours or not theirs or len(ours) != len(theirs):
        return None
    return statistics.median(other / mine for mine, other in zip(ours, theirs, strict=True))


def ratio_line(result: dict[str, Any], requests: str) -> str:
    """The bold relay / SDK and relay / passthrough line of a same-run comparison."""
    paired = paired_rate_ratio(result)
    in_rounds = f" (median of the rounds' own ratios: {paired * 100:.1f}%)" if paired is not None else ""
    return (f"**relay / SDK = {result['relay_vs_sdk']:.2f}x, relay / passthrough = "
            f"{result['relay_vs_passthrough'] * 100:.1f}%**{in_rounds} (relay: {result['relay_landed']:,} rows "
            f"landed, {result['relay_rejected']:,} rejected, {requests})")


def bench_main(doc: str | None, events: int, run: Callable[..., dict[str, Any]],
               lines: Callable[[dict[str, Any]], list[str]],
               against: Callable[[Path, int, int], list[str]] | None = None) -> None:
    """``python -m bench.<shape> [--events N] [--repeat K]``: run one shape and print its lines.

    A shape that passes ``against`` also takes ``--against DIR``: then only ``against(DIR, events,
    repeat)`` runs (this checkout against another one's code, in turns), and its lines are printed."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--repeat", type=int, default=5)
    if against is not None:
        parser.add_argument("--against", type=Path, metavar="DIR",
                            help="time this checkout against the code of the checkout DIR instead, in turns")
    arguments = parser.parse_args()
    if against is not None and arguments.against is not None:
        print("\n".join(against(arguments.against, arguments.events, arguments.repeat)))
        return
    print("\n".join(lines(run(arguments.events, arguments.repeat))))


def tree_child(tree: Path, mode: list[str]) -> dict[str, Any]:
    """One round of one tree for ``--against``: ``bench/tree_child.py`` of this checkout, run with ``shared`` from
    ``tree`` (its ``PYTHONPATH`` and working directory), its one JSON line back; the tree it imported is checked."""
    import json
    import subprocess

    command = [sys.executable, "-P", str(ROOT / "bench" / "tree_child.py"), *mode]
    done = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"tree child failed ({tree}):\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(measured["tree"]) != tree.resolve():
        raise SystemExit(f"the child for {tree} imported shared from {measured['tree']}")
    return measured


def against_lines(intro: str, trees: dict[str, Path], runs: dict[str, list[dict[str, Any]]], count: int) -> list[str]:
    """The lines of an ``--against`` comparison: each tree's best and median over its rounds, and this / against
    (rows landed compared: rates of trees that landed different rows are not comparable)."""
    out = [intro, ""]
    best = {}
    for label, measured in runs.items():
        seconds = [run["best_s"] for run in measured]
        last = measured[-1]
        best[label] = count / min(seconds)
        out.append(f"- {label} ({trees[label]}, {last['core']}): {min(seconds):.3f} s best, "
                   f"{statistics.median(seconds):.3f} s median, **{best[label]:,.0f} rows/s** (runs: "
                   f"{', '.join(f'{count / each:,.0f}' for each in seconds)}); {last['landed']:,} rows landed, "
                   f"{last['rejected']:,} rejected, {last['requests']} requests")
    landed = {label: {(run["landed"], run["rejected"], run["rows"]) for run in measured}
              for label, measured in runs.items()}
    same = len({value for values in landed.values() for value in values}) == 1
    out += ["", f"**this / against = {best['this'] / best['against']:.2f}x** (best rounds); rows landed "
                f"{'equal' if same else 'DIFFER: ' + repr(landed)}"]
    if not same:
        out.append("the trees did not land the same rows: the rates are not comparable")
    return out


def in_turns(tree: Path, repeat: int, count: int, mode: list[str]) -> tuple[dict[str, Path], dict[str, list[dict[str, Any]]]]:
    """``--against``: ``repeat`` rounds, each a :func:`tree_child` of this checkout and then of ``tree`` with ``mode``;
    the trees by label and each one's runs."""
    trees = {"this": ROOT, "against": tree.resolve()}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_number in range(repeat):
        for label, path in trees.items():
            runs[label].append(tree_child(path, mode))
            say(f"  round {round_number + 1} {label}: {count / runs[label][-1]['best_s']:,.0f} rows/s")
    return trees, runs
