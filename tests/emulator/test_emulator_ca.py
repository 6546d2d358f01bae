"""The local CA: created once, reused, server certificate renewed when it expires."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emulator.ca import ensure_certs


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_start_creates_a_ca_and_a_loopback_server_certificate(tmp_path):
    # WHEN certificates are ensured in an empty state dir
    paths = ensure_certs(tmp_path / "state")
    # THEN the server certificate is issued by the CA for localhost, 127.0.0.1 and ::1
    ca, server = load(paths.ca), load(paths.server_cert)
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    # AND the private keys are readable by the owner only
    for key in (paths.ca_key, paths.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_second_start_reuses_everything(tmp_path):
    first = ensure_certs(tmp_path)
    before = {p: p.read_bytes() for p in (first.ca, first.ca_key, first.server_cert, first.server_key)}
    second = ensure_certs(tmp_path)
    assert second == first
    assert {p: p.read_bytes() for p in before} == before


def test_expired_server_certificate_is_reissued_by_the_same_ca(tmp_path):
    # GIVEN a state dir whose server certificate has expired
    paths = ensure_certs(tmp_path)
    ca_bytes = paths.ca.read_bytes()
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(load(paths.ca).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths.server_cert.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    # WHEN certificates are ensured again
    ensure_certs(tmp_path)
    # THEN a valid server certificate replaced it and the CA (already trusted by clients) is unchanged
    renewed = load(paths.server_cert)
    assert renewed.not_valid_after_utc > now + dt.timedelta(days=30)
    renewed.verify_directly_issued_by(load(paths.ca))
    assert paths.ca.read_bytes() == ca_bytes


def test_server_certificate_from_another_ca_is_reissued(tmp_path):
    paths = ensure_certs(tmp_path)
    other = ensure_certs(tmp_path / "other")
    paths.server_cert.write_bytes(other.server_cert.read_bytes())
    paths.server_key.write_bytes(other.server_key.read_bytes())
    ensure_certs(tmp_path)
    load(paths.server_cert).verify_directly_issued_by(load(paths.ca))


def test_unreadable_ca_is_replaced(tmp_path):
    paths = ensure_certs(tmp_path)
    paths.ca.write_text("garbage")
    ensure_certs(tmp_path)
    ca = load(paths.ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    load(paths.server_cert).verify_directly_issued_by(ca)
