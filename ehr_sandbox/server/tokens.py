"""Access tokens: short-lived, signed JWTs that fix who, what and for which patient.

The server signs with an Ed25519 key it keeps in its data directory (JOSE handled by
``joserfc``, not by hand). Verification accepts only that algorithm and that key, so
``alg: none``, an HMAC token keyed with the public key, or a token from another key all fail.

>>> issuer = TokenIssuer(TokenIssuer.new_key(), issuer="http://127.0.0.1:8080")
>>> tok = issuer.issue(username="dr.patel", role="physician", scope="user/*.rs", client_id="c1")
>>> issuer.verify(tok.access_token).username
'dr.patel'
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwk, jwt
from joserfc.errors import JoseError

from ehr_sandbox.errors import AccessDenied

ALGORITHM = "Ed25519"
"""The only signing algorithm the server issues and accepts."""

TOKEN_SECONDS = 900
"""Access-token lifetime: 15 minutes (short-lived, as SMART recommends)."""


@dataclass(frozen=True)
class TokenClaims:
    """What a verified access token says: the user, role, scopes, patient and purpose."""

    username: str
    role: str
    scope: str
    patient: str | None
    purpose: str
    client_id: str
    expires: int
    token_id: str
    backend: bool = False
    attempt: str | None = None
    student: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A new access token and the fields of the OAuth token response."""

    access_token: str
    expires_in: int
    scope: str
    patient: str | None

    def response(self) -> dict[str, Any]:
        """The token endpoint's JSON body (RFC 6749 5.1, SMART's ``patient`` context)."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.patient:
            body["patient"] = self.patient
        return body


class TokenIssuer:
    """Issues and verifies the server's access tokens."""

    def __init__(self, key: jwk.OKPKey, *, issuer: str, lifetime: int = TOKEN_SECONDS) -> None:
        self._key = key
        self.issuer = issuer
        self.lifetime = lifetime

    @staticmethod
    def new_key() -> jwk.OKPKey:
        """A fresh Ed25519 signing key.

        Examples
        --------
        >>> TokenIssuer.new_key().as_dict()["crv"]
        'Ed25519'
        """
        return jwk.OKPKey.generate_key("Ed25519")

    @staticmethod
    def load_key(text: str) -> jwk.OKPKey:
        """The signing key from its private JWK JSON (as the server stores it).

        Examples
        --------
        >>> k = TokenIssuer.new_key()
        >>> TokenIssuer.load_key(TokenIssuer.dump_key(k)).thumbprint() == k.thumbprint()
        True
        """
        import json

        return jwk.OKPKey.import_key(json.loads(text))

    @staticmethod
    def dump_key(key: jwk.OKPKey) -> str:
        """The private JWK JSON of ``key`` (kept only in the server's key folder)."""
        import json

        return json.dumps(key.as_dict(private=True))

    def issue(
        self,
        *,
        username: str,
        role: str,
        scope: str,
        client_id: str,
        patient: str | None = None,
        purpose: str = "TREAT",
        backend: bool = False,
        attempt: str | None = None,
        student: str | None = None,
        now: float | None = None,
    ) -> IssuedToken:
        """Sign a token for ``username``.

        Parameters
        ----------
        username, role : str
            The sandbox user and their role (fixed for the token's life).
        scope : str
            The granted SMART scopes.
        client_id : str
            The client the token was issued to.
        patient : str, optional
            The patient in context (a patient's own id, or a launch context).
        purpose : str
            Purpose of use (set by the server from the role; never by the client).
        backend : bool
            A SMART Backend Services token (``private_key_jwt`` client; may hold ``system/``).
        attempt, student : str, optional
            For an exercise attempt: the attempt's id on the server and the student it belongs
            to (the token then works in that attempt's sandbox only).
        now : float, optional
            Issue time (seconds since the epoch); default now.

        Returns
        -------
        IssuedToken

        Examples
        --------
        >>> i = TokenIssuer(TokenIssuer.new_key(), issuer="x")
        >>> i.issue(username="u", role="nurse", scope="", client_id="c").expires_in
        900
        """
        t = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.issuer + "/fhir",
            "sub": username,
            "role": role,
            "scope": scope,
            "purpose": purpose,
            "client_id": client_id,
            "iat": t,
            "exp": t + self.lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        if patient:
            claims["patient"] = patient
        if backend:
            claims["backend"] = True
        if attempt:
            claims["attempt"] = attempt
            claims["student"] = student
        token = jwt.encode(
            {"alg": ALGORITHM, "typ": "at+jwt"}, claims, self._key, algorithms=[ALGORITHM]
        )
        return IssuedToken(token, self.lifetime, scope, patient)

    def verify(self, token: str, *, now: float | None = None) -> TokenClaims:
        """Check a bearer token's signature, issuer, audience and expiry.

        Parameters
        ----------
        token : str
            The compact JWT from the ``Authorization: Bearer`` header.
        now : float, optional
            The time to check expiry against (default now).

        Returns
        -------
        TokenClaims

        Raises
        ------
        AccessDenied
            Malformed, forged, expired or foreign tokens (one message; no detail to probe).

        Examples
        --------
        >>> i = TokenIssuer(TokenIssuer.new_key(), issuer="x")
        >>> i.verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: invalid or expired access token
        """
        denied = AccessDenied("invalid or expired access token")
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            raise denied from None
        c = decoded.claims
        t = now if now is not None else time.time()
        required = ("sub", "role", "scope", "exp", "client_id", "iss", "aud", "jti")
        if decoded.header.get("alg") != ALGORITHM or any(k not in c for k in required):
            raise denied
        if c["iss"] != self.issuer or c["aud"] != self.issuer + "/fhir":
            raise denied
        if not isinstance(c["exp"], int) or c["exp"] <= t:
            raise denied
        return TokenClaims(
            username=str(c["sub"]),
            role=str(c["role"]),
            scope=str(c["scope"]),
            patient=c.get("patient"),
            purpose=str(c.get("purpose", "TREAT")),
            client_id=str(c["client_id"]),
            expires=int(c["exp"]),
            token_id=str(c["jti"]),
            backend=c.get("backend") is True,
            attempt=c.get("attempt") if isinstance(c.get("attempt"), str) else None,
            student=c.get("student") if isinstance(c.get("student"), str) else None,
        )
