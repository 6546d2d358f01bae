"""Core of the ingestion relay: decode, route, normalize, pack, upload, park.

Plain Python that does not need the Functions host; ``function_app.py`` is a thin
shell around it.
"""
