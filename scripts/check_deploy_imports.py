"""Prove the deployed app imports no test, emulator, bench or dev-tool code.

Imports ``function_app`` in a fresh interpreter and lists the top-level modules it
pulled in; also checks that ``.funcignore`` keeps those folders out of the package.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("tests", "emulator", "bench", "devtools", "relay_cli", "pytest", "hypothesis", "rich")
ROOT = Path(__file__).resolve().parent.parent

probe = (
    "import json, sys; import function_app; "
    "print(json.dumps(sorted(m for m in sys.modules)))"
)
loaded = json.loads(subprocess.run(
    [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
).stdout)
bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
ignored = (ROOT / ".funcignore").read_text().split()
missing = [folder for folder in ("tests/", "emulator/", "bench/", "devtools/", "relay_cli/") if folder not in ignored]
if bad or missing:
    if bad:
        print(f"function_app imports development modules: {', '.join(bad)}")
    if missing:
        print(f".funcignore does not exclude: {', '.join(missing)}")
    sys.exit(1)
print(f"ok: function_app loads {len(loaded)} modules, none of {', '.join(FORBIDDEN)}")
