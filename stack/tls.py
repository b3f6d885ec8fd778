"""Certificates for serving beyond localhost: a local CA and a server certificate signed by it.

Browsers give the microphone only to secure pages, so a workbench opened from
another machine must be served over HTTPS. Without a certificate of the user's
own (WORKBENCH_TLS_CERT / WORKBENCH_TLS_KEY), `./dev up --tls HOST` makes a CA
once under `.local/tls/` (its key never leaves that folder, mode 0600) and a
server certificate for HOST; people trust `ca.pem` once in their browser or OS.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stack.errors import StackError

CA_DAYS = 3650
# Browsers refuse server certificates valid for more than 398 days.
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """The files a TLS proxy serves with, and the CA to trust (None for a user's own certificate)."""

    cert: Path
    key: Path
    ca: Path | None


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.with_suffix(".tmp").replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The local CA, made on first use."""
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StackError(f"{key_path} is not the EC key this stack made; move the folder aside")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Voice Workbench"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Voice Workbench local CA ({os.uname().nodename})"
            ),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _names(hostname: str, addresses: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for value in [hostname, *addresses]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            names.append(x509.DNSName(value))
    return list(dict.fromkeys(names))


def _current(cert_path: Path, names: list[x509.GeneralName], ca: x509.Certificate) -> bool:
    """True if the server certificate exists, names exactly these, is ours and is not near expiry."""
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(sans) == set(names)
        and cert.issuer == ca.subject
        and cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE
    )


def ensure_certificates(
    folder: Path,
    hostname: str,
    *,
    addresses: list[str] | None = None,
    own_cert: Path | None = None,
    own_key: Path | None = None,
) -> TlsFiles:
    """The certificate to serve `hostname` (and `addresses`) with; made or renewed as needed.

    With `own_cert`/`own_key` (a certificate the user obtained) those are used as
    they are, after checking both are readable.
    """
    if own_cert is not None or own_key is not None:
        if own_cert is None or own_key is None:
            raise StackError("give both WORKBENCH_TLS_CERT and WORKBENCH_TLS_KEY, or neither")
        for path in (own_cert, own_key):
            if not path.is_file():
                raise StackError(f"TLS file {path} does not exist")
        return TlsFiles(cert=own_cert, key=own_key, ca=None)
    ca_cert, ca_key = _load_ca(folder)
    names = _names(hostname, addresses or [])
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    if not (_current(cert_path, names, ca_cert) and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(key_path, _pem_key(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert=cert_path, key=key_path, ca=folder / "ca.pem")
