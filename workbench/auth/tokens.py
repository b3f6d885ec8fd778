"""Verify Supabase Auth access tokens and mint the local stack's API keys.

Locally GoTrue signs with one HS256 secret from `.local/secrets.json`.
Hosted Supabase signs with asymmetric keys published at
`<project>/auth/v1/.well-known/jwks.json`; those are verified through JWKS,
never by assuming a shared secret.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from workbench.config import Settings

ApiRole = Literal["anon", "service_role"]
_ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"}
TEN_YEARS_S = 10 * 365 * 24 * 3600


class TokenError(ValueError):
    """The token is missing, malformed, expired, tampered with or for another audience."""


class AccessClaims(BaseModel):
    """Verified claims of a Supabase access token (unknown claims are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    role: str
    exp: int
    iat: int | None = None
    sub: str | None = None
    aud: str | list[str] | None = None
    email: str | None = None
    session_id: str | None = None
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None

    def as_json_claims(self) -> dict[str, Any]:
        """All claims as a dict, the shape PostgREST puts in `request.jwt.claims`."""
        return self.model_dump(exclude_none=True)


def mint_api_key(jwt_secret: str, role: ApiRole, *, ttl_s: int = TEN_YEARS_S) -> str:
    """An API key (`anon` or `service_role`) as the Supabase CLI makes for a local project."""
    now = int(time.time())
    payload = {"iss": "supabase-local", "role": role, "iat": now, "exp": now + ttl_s}
    return jwt.encode(payload, jwt_secret, algorithm="HS256")


class TokenVerifier:
    """Checks signature, expiry and audience of Supabase JWTs.

    Give `jwt_secret` for HS256 (local stack), `jwks_url` for asymmetric keys
    (hosted project), or both: the token's header says which applies.
    """

    def __init__(
        self,
        *,
        jwt_secret: str | None = None,
        jwks_url: str | None = None,
        leeway_s: float = 0.0,
    ) -> None:
        if jwt_secret is None and jwks_url is None:
            raise ValueError("TokenVerifier needs jwt_secret (HS256) or jwks_url (asymmetric keys)")
        self._secret = jwt_secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self._leeway_s = leeway_s

    def verify(self, token: str, *, audience: str | None = "authenticated") -> AccessClaims:
        """Verified claims of `token`; raises TokenError saying what is wrong.

        `audience=None` accepts tokens without an `aud` claim (the API keys).
        """
        if not token or token.count(".") != 2:
            raise TokenError("not a JWT: expected three dot-separated parts")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed JWT header: {exc}") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256":
            if self._secret is None:
                raise TokenError(
                    "HS256 token but no shared secret is configured (hosted projects use JWKS)"
                )
            key = self._secret
        elif alg in _ASYMMETRIC:
            if self._jwks is None:
                raise TokenError(f"{alg} token but no JWKS URL is configured")
            try:
                key = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise TokenError(f"no matching signing key in JWKS: {exc}") from None
        else:
            raise TokenError(f"refusing JWT algorithm {alg!r}")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                leeway=self._leeway_s,
                options={"require": ["exp", "role"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token has expired; sign in again or refresh the session") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"token is not for audience {audience!r}") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from None
        try:
            return AccessClaims.model_validate(payload)
        except ValidationError as exc:
            raise TokenError(
                f"token claims are not Supabase claims: {exc.errors()[0]['msg']}"
            ) from None


def verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier for the configured stack: HS256 locally, JWKS (and the secret if given) hosted."""
    secret = (
        settings.supabase_jwt_secret.get_secret_value() if settings.supabase_jwt_secret else None
    )
    if settings.is_local:
        if secret is None:
            raise ValueError(
                "no local JWT secret yet: run `./dev up` to generate .local/secrets.json"
            )
        return TokenVerifier(jwt_secret=secret)
    return TokenVerifier(jwt_secret=secret, jwks_url=settings.jwks_url)
