"""GitHub webhook signatures: X-Hub-Signature-256 = 'sha256=' + HMAC-SHA256(secret, body as sent)."""

from __future__ import annotations

import pytest

from shared.signatures import github_signature, verify_github_signature

# The example in GitHub's "Validating webhook deliveries" documentation.
DOC_SECRET = "It's a Secret to Everybody"
DOC_BODY = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_signature_matches_githubs_documented_example():
    """GIVEN GitHub's documented secret and payload WHEN signed THEN GitHub's documented signature."""
    assert github_signature(DOC_SECRET, DOC_BODY) == DOC_SIGNATURE


def test_valid_signature_is_accepted():
    """GIVEN the documented signature WHEN verified THEN True."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, DOC_SIGNATURE) is True


def test_surrounding_whitespace_is_ignored():
    """GIVEN the signature with a trailing newline / spaces (header folding) WHEN verified THEN True."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, f"  {DOC_SIGNATURE}\r\n") is True


def test_sample_payload_signed_with_its_secret(events_dir):
    """GIVEN github_push.json signed with 'x' WHEN verified over the exact bytes THEN True; re-serialized bytes fail."""
    body = (events_dir / "github_push.json").read_bytes()
    signature = github_signature("x", body)

    assert verify_github_signature("x", body, signature) is True
    assert verify_github_signature("x", body.replace(b"\n", b"\r\n"), signature) is False


@pytest.mark.parametrize("presented", [
    DOC_SIGNATURE[:-1] + "0",          # one hex digit changed
    DOC_SIGNATURE.upper(),             # GitHub sends lower-case hex; compare exactly
    DOC_SIGNATURE + "00",              # longer
    DOC_SIGNATURE[:-2],                # shorter
], ids=["changed", "uppercase", "longer", "shorter"])
def test_wrong_signature_is_refused(presented):
    """GIVEN a signature that differs in any way WHEN verified THEN False."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, presented) is False


def test_signature_of_another_body_is_refused():
    """GIVEN a valid signature of a different body WHEN verified THEN False."""
    assert verify_github_signature(DOC_SECRET, b"Hello, World?", DOC_SIGNATURE) is False


@pytest.mark.parametrize("presented", ["", None], ids=["empty", "none"])
def test_missing_signature_is_refused(presented):
    """GIVEN no X-Hub-Signature-256 WHEN verified THEN False."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, presented) is False


def test_signature_made_with_another_secret_is_refused():
    """GIVEN a signature made with another secret WHEN verified THEN False."""
    assert verify_github_signature("another secret", DOC_BODY, DOC_SIGNATURE) is False


@pytest.mark.parametrize("presented", [
    DOC_SIGNATURE.removeprefix("sha256="),                 # bare hex, no algorithm prefix
    "sha1=" + DOC_SIGNATURE.removeprefix("sha256="),       # the legacy X-Hub-Signature algorithm name
    "SHA256=" + DOC_SIGNATURE.removeprefix("sha256="),     # prefix in another case
], ids=["no-prefix", "sha1-prefix", "uppercase-prefix"])
def test_prefix_must_be_sha256(presented):
    """GIVEN the right digest without the exact 'sha256=' prefix WHEN verified THEN False."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, presented) is False


def test_non_ascii_presented_value_is_refused_not_raised():
    """GIVEN a header value with non-ASCII characters WHEN verified THEN False (no TypeError from compare_digest)."""
    assert verify_github_signature(DOC_SECRET, DOC_BODY, "sha256=é") is False
