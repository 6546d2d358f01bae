"""Sources: one module per input kind (decoding its input into events, declaring its ``Source``).

Importing the package declares the built-in sources in the registry (``registry.py``), in the
order messages list them.
"""
# isort: skip_file

from . import http  # noqa: F401  (each module declares its Source)
from . import blob  # noqa: F401
from . import eventhub  # noqa: F401
