"""The emulator's CA is trusted from memory: no CA file is written per process, public CAs still count."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

import pytest

from emulator.ca import ensure_certs
from shared.sink import trust_context


def test_no_extra_ca_means_the_default_trust():
    assert trust_context(None) is None and trust_context("") is None


def test_the_extra_ca_joins_the_public_ones_without_a_file_written(tmp_path, monkeypatch):
    # GIVEN the emulator's CA and an empty temporary directory
    certs = ensure_certs(tmp_path / "state")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    # WHEN a trust context is made
    context = trust_context(str(certs.ca))
    # THEN it holds the public CAs and the emulator's, needs TLS 1.2+, and nothing was written
    assert isinstance(context, ssl.SSLContext)
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    assert len(subjects) > 50
    assert any("relay" in " ".join(s.values()).lower() or "emulator" in " ".join(s.values()).lower()
               for s in subjects)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert list(scratch.iterdir()) == []


def test_an_unreadable_ca_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(OSError, match=r"nope\.pem"):
        trust_context(str(Path(tmp_path) / "nope.pem"))
