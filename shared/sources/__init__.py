"""Sources: one module per input kind (decoding its input into events, declaring its ``Source``).

Importing the package declares the built-in sources in the registry (``registry.py``).
"""

from . import blob, eventhub, http  # noqa: F401  (each declares its Source)
