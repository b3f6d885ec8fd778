"""The TLS mode's local CA and server certificates: made once, renewed when the names change."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from stack.errors import StackError
from stack.tls import ensure_certificates

pytestmark = pytest.mark.unit


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def test_a_server_certificate_signed_by_a_private_local_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path, "lab.example.org", addresses=["10.1.2.3"])
    assert files.ca is not None
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    server = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)  # raises if the signature does not check
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _sans(files.cert) == {"lab.example.org", "10.1.2.3"}
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days <= 398
    for key in (tmp_path / "ca.key", files.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_the_ca_is_kept_and_the_server_certificate_follows_the_hostname(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, "lab.example.org")
    assert first.ca is not None
    ca_before, cert_before = first.ca.read_bytes(), first.cert.read_bytes()
    again = ensure_certificates(tmp_path, "lab.example.org")
    assert again.cert.read_bytes() == cert_before  # nothing to renew
    assert again.ca is not None
    assert again.ca.read_bytes() == ca_before  # people trusted this CA once: it stays
    # Served under another name, the server needs a CA that may sign for it: a new one.
    moved = ensure_certificates(tmp_path, "gpu-box.example.org")
    assert moved.ca is not None
    assert moved.ca.read_bytes() != ca_before
    assert _sans(moved.cert) == {"gpu-box.example.org"}
    _verify(moved.ca, moved.cert, "gpu-box.example.org")


def _verify(ca_path: Path, cert_path: Path, host: str) -> None:
    """Verify a server certificate for `host` as a client trusting only the local CA would."""
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(DNSName(host))
    verifier.verify(cert, [])


def test_the_local_ca_cannot_vouch_for_another_site(tmp_path: Path) -> None:
    """The CA people are asked to trust signs only for the names it serves, and not for long."""
    files = ensure_certificates(tmp_path, "lab.example.org", addresses=["10.1.2.3"])
    assert files.ca is not None
    _verify(files.ca, files.cert, "lab.example.org")  # what it serves verifies
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days <= 398
    # Someone who got hold of the CA's key signs for another site: clients refuse it.
    ca_key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    site_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
        .issuer_name(ca.subject)
        .public_key(site_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    forged_path = tmp_path / "forged.pem"
    forged_path.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(VerificationError):
        _verify(files.ca, forged_path, "bank.example")


def test_a_certificate_of_ones_own_is_used_as_given(tmp_path: Path) -> None:
    cert, key = tmp_path / "mine.pem", tmp_path / "mine.key"
    cert.write_text("x")
    key.write_text("y")
    files = ensure_certificates(tmp_path / "tls", "lab", own_cert=cert, own_key=key)
    assert (files.cert, files.key, files.ca) == (cert, key, None)
    with pytest.raises(StackError, match="both WORKBENCH_TLS_CERT and WORKBENCH_TLS_KEY"):
        ensure_certificates(tmp_path / "tls", "lab", own_cert=cert)
    with pytest.raises(StackError, match="does not exist"):
        ensure_certificates(tmp_path / "tls", "lab", own_cert=cert, own_key=tmp_path / "gone")
