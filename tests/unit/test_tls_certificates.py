"""The TLS mode's local CA and server certificates: made once, renewed when the names change."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

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
    moved = ensure_certificates(tmp_path, "gpu-box.example.org")
    assert moved.ca is not None
    assert moved.ca.read_bytes() == ca_before  # people trusted this CA once: it stays
    assert _sans(moved.cert) == {"gpu-box.example.org"}


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
