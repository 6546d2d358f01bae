"""Decoders: one module per input kind, each turning raw input into a list of events."""
