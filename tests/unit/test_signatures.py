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


# --- the generic scheme (route key `signature:`) ----------------------------------------------------------

from shared.signatures import SignatureScheme, header_reader, verify_signature  # noqa: E402

# Slack's "Verifying requests from Slack" documented example (a slash command).
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
              b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK = SignatureScheme(SLACK_SECRET, "X-Slack-Signature", "v0=", "hex", "X-Slack-Request-Timestamp", "",
                        "v0:{timestamp}:{body}", 300)


def slack_headers(signature: str = SLACK_SIGNATURE, timestamp: str = SLACK_TIMESTAMP):
    return header_reader({"x-slack-signature": signature, "X-Slack-Request-Timestamp": timestamp})


def test_slacks_documented_example_verifies_within_the_window():
    assert SLACK.sign(SLACK_BODY, SLACK_TIMESTAMP) == SLACK_SIGNATURE
    assert verify_signature(SLACK, SLACK_BODY, slack_headers(), now=1531420618 + 299).ok


def test_a_replayed_request_outside_the_window_is_refused_naming_the_timestamp_header():
    verdict = verify_signature(SLACK, SLACK_BODY, slack_headers(), now=1531420618 + 301)
    assert not verdict.ok and "X-Slack-Request-Timestamp" in verdict.problem and "300 s" in verdict.problem
    assert SLACK_SECRET not in verdict.problem


@pytest.mark.parametrize("signature, timestamp, problem", [
    ("", SLACK_TIMESTAMP, "missing X-Slack-Signature signature header"),
    (SLACK_SIGNATURE[:-1] + "0", SLACK_TIMESTAMP, "missing or wrong X-Slack-Signature signature"),
    (SLACK_SIGNATURE.replace("v0=", "v1="), SLACK_TIMESTAMP, "missing or wrong X-Slack-Signature signature"),
    ("v0=not-hex", SLACK_TIMESTAMP, "missing or wrong X-Slack-Signature signature"),
    (SLACK_SIGNATURE, "", "missing or unreadable signed timestamp in X-Slack-Request-Timestamp"),
    (SLACK_SIGNATURE, "yesterday", "missing or unreadable signed timestamp in X-Slack-Request-Timestamp"),
    (SLACK_SIGNATURE, "1531420619", "missing or wrong X-Slack-Signature signature"),  # the timestamp is signed
], ids=["missing", "wrong", "other-prefix", "not-hex", "no-timestamp", "bad-timestamp", "other-timestamp"])
def test_bad_signatures_are_refused_with_a_problem_naming_the_header(signature, timestamp, problem):
    verdict = verify_signature(SLACK, SLACK_BODY, slack_headers(signature, timestamp), now=1531420618)
    assert (verdict.ok, verdict.problem) == (False, problem)


def test_any_matching_part_of_a_multi_signature_header_is_enough():
    # PagerDuty sends several v1= signatures while secrets rotate; Stripe puts t= and v0= beside v1=
    scheme = SignatureScheme("s3cret", "X-PagerDuty-Signature", "v1=")
    good = scheme.sign(b"{}")
    assert verify_signature(scheme, b"{}", header_reader({"X-PagerDuty-Signature": f"v1={'0' * 64},{good}"})).ok
    assert not verify_signature(scheme, b"{}", header_reader({"X-PagerDuty-Signature": f"v1={'0' * 64}"})).ok


def test_base64_and_rfc3339_timestamps():
    scheme = SignatureScheme("s", "X-Zendesk-Webhook-Signature", "", "base64", "X-Zendesk-Webhook-Signature-Timestamp",
                             "", "{timestamp}{body}")
    stamp = "2024-05-01T10:00:00Z"
    headers = header_reader({"X-Zendesk-Webhook-Signature": scheme.sign(b"{}", stamp),
                             "X-Zendesk-Webhook-Signature-Timestamp": stamp})
    assert verify_signature(scheme, b"{}", headers, now=1714557600 + 10).ok
    assert not verify_signature(scheme, b"{}", headers, now=1714557600 + 400).ok


def test_the_comparison_is_constant_time():
    # every candidate goes through hmac.compare_digest; nothing compares signatures with ==
    import inspect

    import shared.signatures as module

    source = inspect.getsource(module.verify_signature)
    assert "compare_digest" in source and "== expected" not in source


def test_the_routes_signature_header_never_reaches_rows():
    from shared.http_ingest import safe_headers

    assert safe_headers({"Stripe-Signature": "t=1,v1=ab", "X-Trace": "1"}, "stripe-signature") == {"x-trace": "1"}
