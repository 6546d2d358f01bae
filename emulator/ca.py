"""Local certificate authority for the emulator.

The Logs Ingestion SDK (bearer-token auth) refuses plain ``http://`` endpoints, so the
emulator must speak HTTPS. A throw-away CA that the test or developer trusts explicitly
(``connection_verify=ca.pem``) keeps TLS verification on instead of teaching people to
turn it off.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"

SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=397)
# Renew a little before expiry so a long-running session does not hit the edge.
RENEW_MARGIN = dt.timedelta(days=1)


@dataclass(frozen=True)
class CertPaths:
    """Where the CA and the server certificate live; ``ca`` is what clients must trust."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def ensure_certs(state_dir: str | Path = ".emulator") -> CertPaths:
    """Create the CA and server certificate on first use, reuse them later.

    The CA is kept across starts so a developer trusts it once; the server
    certificate is re-issued when it is missing, about to expire, no longer
    signed by the CA, or lacks one of the loopback names.
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(state / CA_CERT, state / CA_KEY, state / SERVER_CERT, state / SERVER_KEY)
    now = dt.datetime.now(dt.UTC)
    with _exclusive(state / ".certs.lock"):
        ca_cert, ca_key = _load_ca(paths, now)
        if ca_cert is None or ca_key is None:
            ca_cert, ca_key = _create_ca(now)
            _write_key(paths.ca_key, ca_key)
            _write_cert(paths.ca, ca_cert)
        if not _server_cert_ok(paths, ca_cert, now):
            cert, key = _create_server_cert(ca_cert, ca_key, now)
            _write_key(paths.server_key, key)
            _write_cert(paths.server_cert, cert)
    return paths


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise certificate creation between emulators started at once on one state dir."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: best effort without a lock
        yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _load_ca(
    paths: CertPaths, now: dt.datetime
) -> tuple[x509.Certificate | None, ec.EllipticCurvePrivateKey | None]:
    if not (paths.ca.exists() and paths.ca_key.exists()):
        return None, None
    try:
        cert = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except ValueError:
        return None, None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None, None
    if cert.not_valid_after_utc - RENEW_MARGIN <= now:
        return None, None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        return None, None
    return cert, key


def _server_cert_ok(paths: CertPaths, ca_cert: x509.Certificate, now: dt.datetime) -> bool:
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        return False
    if not (cert.not_valid_before_utc <= now < cert.not_valid_after_utc - RENEW_MARGIN):
        return False
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns >= set(SERVER_DNS_NAMES) and ips >= set(SERVER_IPS)


def _create_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Logs Ingestion Emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Logs Ingestion Emulator local CA {now:%Y%m%d%H%M%S}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _create_server_cert(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in SERVER_DNS_NAMES]
        + [x509.IPAddress(ipaddress.ip_address(i)) for i in SERVER_IPS]
    )
    not_after = min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by the owner only (0600), atomically."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _atomic_write(path, data, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed or the file pre-existed
    os.replace(tmp, path)
