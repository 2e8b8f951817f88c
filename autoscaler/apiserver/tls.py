"""The server's TLS certificate.

Kubernetes clients send a bearer token only over TLS (client-go drops it on plain HTTP), so
the server always speaks HTTPS with a self-signed certificate (ECDSA P-256, valid for
127.0.0.1, ::1, localhost and the bound host) kept in the data directory (key mode 0600) and
trusted through ``certificate-authority-data`` in the written kubeconfig.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


def _names(host: str) -> list[str]:
    names = ["127.0.0.1", "::1", "localhost"]
    if host and host not in names and host not in ("0.0.0.0", "::"):
        names.append(host)
    return names


def _covers(cert_pem: bytes, names: list[str]) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    have |= set(san.get_values_for_type(x509.DNSName))
    expires = cert.not_valid_after_utc
    fresh = expires > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    return fresh and all(n in have for n in names)


def _generate(names: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelscale-apiserver")])
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def ensure_certificate(data_dir: Path, host: str) -> tuple[Path, Path]:
    """The (certificate, key) paths, created or renewed when missing, expiring or not
    covering ``host``."""
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    names = _names(host)
    if cert_path.exists() and key_path.exists() and _covers(cert_path.read_bytes(), names):
        return cert_path, key_path
    cert_pem, key_pem = _generate(names)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def client_context(cert_path: Path) -> ssl.SSLContext:
    """An SSL context that trusts the server's certificate (for benchmarks and tests)."""
    return ssl.create_default_context(cafile=str(cert_path))
