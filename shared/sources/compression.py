"""Bounded gzip: a small body must not be allowed to inflate into gigabytes."""

from __future__ import annotations

import zlib

from .errors import DecodeError, TooLargeError

GZIP_MAGIC = b"\x1f\x8b"


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress gzip (concatenated members too), failing as soon as output passes ``limit``."""
    out = bytearray()
    remaining = data
    while remaining:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(remaining, limit + 1 - len(out))
            out += chunk
            while inflater.unconsumed_tail and len(out) <= limit:
                out += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(out))
        except zlib.error as error:
            raise DecodeError(f"body is not valid gzip: {error}") from None
        if len(out) > limit:
            raise TooLargeError(f"decompressed body is over the limit of {limit} bytes")
        if not inflater.eof:
            raise DecodeError("gzip body is truncated")
        remaining = inflater.unused_data
        if remaining and not remaining.startswith(GZIP_MAGIC):
            break  # trailing garbage after the last member is ignored, as gzip(1) does
    return bytes(out)
