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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stack.errors import StackError
from stack.private_files import write_private

# The local CA signs only for the names and addresses it serves (critical name
# constraints) and lives no longer than a server certificate may: people are asked to
# trust it, so it must not be able to vouch for any other site, nor for ever.
CA_DAYS = 397
# Browsers refuse server certificates valid for more than 398 days.
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """The files a TLS proxy serves with, and the CA to trust (None for a user's own certificate)."""

    cert: Path
    key: Path
    ca: Path | None


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(
    folder: Path, names: list[x509.GeneralName]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The local CA for `names`, made on first use, and made again when it may not sign
    for them (the served names changed) or nears its end; people then trust the new one."""
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StackError(f"{key_path} is not the EC key this stack made; move the folder aside")
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _permitted(cert) == set(_subtrees(names)) and _lasts(cert):
            return cert, key
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
            x509.NameConstraints(permitted_subtrees=_subtrees(names), excluded_subtrees=None),
            critical=True,
        )
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
    write_private(key_path, _pem_key(key))
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


def _subtrees(names: list[x509.GeneralName]) -> list[x509.GeneralName]:
    """Name-constraint subtrees that permit exactly these names (an address as a /32 or /128)."""
    return [
        x509.IPAddress(ipaddress.ip_network(name.value))
        if isinstance(name, x509.IPAddress)
        else name
        for name in names
    ]


def _permitted(ca: x509.Certificate) -> set[x509.GeneralName]:
    """The subtrees a CA may sign for (empty: a CA without name constraints)."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return set()
    return set(constraints.permitted_subtrees or [])


def _lasts(cert: x509.Certificate) -> bool:
    """Whether a certificate is valid for longer than RENEW_BEFORE from now."""
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _current(cert_path: Path, names: list[x509.GeneralName], ca: x509.Certificate) -> bool:
    """True if the server certificate exists, names exactly these, is ours and is not near expiry."""
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(sans) == set(names)
        and cert.issuer == ca.subject
        and _signed_by(cert, ca)  # a CA made again has the same name and another key
        and _lasts(cert)
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
    names = _names(hostname, addresses or [])
    ca_cert, ca_key = _load_ca(folder, names)
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
        write_private(key_path, _pem_key(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert=cert_path, key=key_path, ca=folder / "ca.pem")
