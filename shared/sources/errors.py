"""Errors decoders raise; the trigger turns them into 400 / 413 answers."""


class DecodeError(ValueError):
    """The input cannot be decoded; the message says where (line, offset, event index)."""


class TooLargeError(ValueError):
    """The input (or what it decompresses to) is over the configured limit."""
