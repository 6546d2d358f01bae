"""Local development tools: a loopback host for the HTTP functions and the one-command local run.

Never deployed (see .funcignore) and never imported by ``function_app.py``.
"""
