"""JWT verification: local HS256, hosted JWKS (served on loopback), and every way a token goes bad."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from workbench.auth.tokens import TokenError, TokenVerifier, mint_api_key

pytestmark = pytest.mark.unit

SECRET = "local-secret-" + "x" * 40


def user_token(secret: str = SECRET, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "5b6c1b9e-6f39-4d39-9d1e-0f5f6c0c3a11",
        "role": "authenticated",
        "aud": "authenticated",
        "email": "a@example.org",
        "iat": now,
        "exp": now + 3600,  # tokens are built at collection time; outlive a long run
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def test_valid_user_token_verifies() -> None:
    claims = TokenVerifier(jwt_secret=SECRET).verify(user_token())
    assert claims.role == "authenticated"
    assert claims.email == "a@example.org"
    assert claims.as_json_claims()["sub"] == "5b6c1b9e-6f39-4d39-9d1e-0f5f6c0c3a11"


def test_api_keys_verify_without_audience() -> None:
    verifier = TokenVerifier(jwt_secret=SECRET)
    assert verifier.verify(mint_api_key(SECRET, "anon"), audience=None).role == "anon"
    assert (
        verifier.verify(mint_api_key(SECRET, "service_role"), audience=None).role == "service_role"
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (user_token(exp=int(time.time()) - 5), "expired"),
        (user_token(secret="another-secret-" + "y" * 40), "signature does not verify"),
        (user_token(aud="somebody-else"), "not for audience"),
        ("not-a-jwt", "not a JWT"),
        ("", "not a JWT"),
        (
            jwt.encode({"role": "authenticated", "exp": 2**33}, key=None, algorithm="none"),
            "refusing JWT algorithm",
        ),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(token: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        TokenVerifier(jwt_secret=SECRET).verify(token)


def test_tampered_payload_is_refused() -> None:
    header, _payload, signature = user_token().split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"role": "service_role", "exp": 2**33}).encode()
    ).decode()
    with pytest.raises(TokenError, match="signature"):
        TokenVerifier(jwt_secret=SECRET).verify(f"{header}.{forged}.{signature}")


def test_token_without_role_is_refused() -> None:
    token = jwt.encode(
        {"exp": int(time.time()) + 60, "aud": "authenticated"}, SECRET, algorithm="HS256"
    )
    with pytest.raises(TokenError, match="role"):
        TokenVerifier(jwt_secret=SECRET).verify(token)


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on loopback, as a hosted project publishes one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json", key
    server.shutdown()


def test_hosted_asymmetric_token_verifies_through_jwks(
    jwks_server: tuple[str, rsa.RSAPrivateKey],
) -> None:
    url, key = jwks_server
    now = int(time.time())
    claims = {
        "sub": "u1",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    verifier = TokenVerifier(jwks_url=url)
    assert verifier.verify(token).sub == "u1"
    # A shared-secret token must not pass where only JWKS is configured.
    with pytest.raises(TokenError, match="no shared secret"):
        verifier.verify(user_token())
    # Signed by a key the project never published.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "k1"}))


def test_verifier_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        TokenVerifier()
