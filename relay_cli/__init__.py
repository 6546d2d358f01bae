"""``relay``: the operator command line (validate, send, poison, emulator).

Not deployed: the function app imports only ``shared``; this package depends on the core,
never the other way round.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def relay_version() -> str:
    """The installed project's version (``pip install -e .`` in bootstrap), else pyproject's."""
    try:
        return version("ingestion-relay")
    except PackageNotFoundError:  # run from a checkout that was not installed
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"
