"""OAuth 2 / SMART App Launch 2 on Authlib: the token endpoint and the authorization endpoint.

Grants: ``client_credentials`` (class accounts with ``client_secret_basic``; SMART Backend
Services with ``private_key_jwt``) and ``authorization_code`` with PKCE (S256, required) for
browsers. Scopes are parsed with the sandbox's strict SMART v2 parser; purpose of use and
break-the-glass are never taken from the client.

The framework glue (turning a Starlette request into Authlib's request) is the only code here;
the protocol is Authlib's.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwk, jwt
from joserfc.errors import JoseError

from ehr_sandbox.access import parse_scopes
from ehr_sandbox.errors import ScopeError
from ehr_sandbox.server.launch import CODE_SECONDS, PendingCode

if TYPE_CHECKING:
    from ehr_sandbox.server.accounts import Accounts, Client
    from ehr_sandbox.server.launch import LaunchStore
    from ehr_sandbox.server.tokens import TokenIssuer

ASSERTION_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]
"""Algorithms accepted for ``private_key_jwt`` client assertions (SMART Backend Services)."""


class FormPayload(OAuth2Payload):
    """A decoded form body (and query string) as Authlib's payload."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return {k: v[-1] for k, v in self._values.items()}

    @property
    def datalist(self) -> dict[str, list[str]]:
        return dict(self._values)


class FormRequest(OAuth2Request):
    """An HTTP request already read (method, URL, headers, form values) for Authlib."""

    def __init__(
        self, method: str, uri: str, headers: Mapping[str, str], values: dict[str, list[str]]
    ):
        super().__init__(method=method, uri=uri, headers=headers)
        self._values = values
        self.payload = FormPayload(values)

    @property
    def args(self) -> dict[str, str]:
        return {k: v[-1] for k, v in self._values.items()}

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in self._values.items()}


class SmartClient(ClientMixin):
    """Authlib's view of one registered client."""

    def __init__(self, client: Client, accounts: Accounts) -> None:
        self.client = client
        self._accounts = accounts

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.client.redirect_uris[0] if self.client.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self._accounts.verify_secret(self.client.client_id, client_secret) is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.jwks:
            return method == "private_key_jwt"
        if method == "none":  # public browser clients: code flow with PKCE only
            return bool(self.client.redirect_uris)
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.client.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "authorization_code":
            return bool(self.client.redirect_uris)
        return grant_type == "client_credentials"


@dataclass(frozen=True)
class SignedIn:
    """Who a code was issued to, and the patient picked for the launch (if any)."""

    username: str
    launch_patient: str | None = None


class CodeGrant(grants.AuthorizationCodeGrant):
    """Authorization code grant; codes live in memory for two minutes and are single use."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        payload = request.payload.data
        self.server.launches.put_code(
            PendingCode(
                code=code,
                client_id=request.client.get_client_id(),
                redirect_uri=payload.get("redirect_uri", ""),
                scope=request.scope or "",
                username=request.user.username,
                code_challenge=payload.get("code_challenge"),
                code_challenge_method=payload.get("code_challenge_method"),
                expires=time.time() + CODE_SECONDS,
                patient=getattr(request, "launch_patient", None),
            )
        )

    def query_authorization_code(self, code: str, client: Any) -> PendingCode | None:
        # Taken out at once (one DELETE ... RETURNING in the server database, shared by the
        # workers): of two exchanges of one code racing, one wins.
        item = self.server.launches.take_code(code)
        if item and item.client_id == client.get_client_id() and not item.is_expired():
            return item
        return None

    def delete_authorization_code(self, authorization_code: PendingCode) -> None:
        """Already taken out by :meth:`query_authorization_code`."""

    def authenticate_user(self, authorization_code: PendingCode) -> Any:
        self.server.user_lookup(authorization_code.username)  # still a user
        return SignedIn(authorization_code.username, authorization_code.patient)


class CredentialsGrant(grants.ClientCredentialsGrant):
    """Client credentials for scripts: secret (class accounts) or signed assertion."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]


class SmartAuthorizationServer(AuthorizationServer):
    """Authlib's authorization server, wired to the sandbox's accounts and tokens.

    Parameters
    ----------
    accounts : Accounts
        The client registry.
    issuer : TokenIssuer
        Signs the access tokens.
    user_lookup : callable
        ``username -> User`` from the sandbox (role, patient).
    launches : LaunchStore
        Authorization codes and launch contexts (in the server database).
    """

    def __init__(
        self,
        accounts: Accounts,
        issuer: TokenIssuer,
        user_lookup: Any,
        launches: LaunchStore,
    ) -> None:
        super().__init__()
        self.accounts = accounts
        self.issuer = issuer
        self.user_lookup = user_lookup
        self.launches = launches
        self._seen_assertions: dict[str, float] = {}
        self._assertion_lock = threading.Lock()
        self.register_grant(CodeGrant, [CodeChallenge(required=True)])
        self.register_grant(CredentialsGrant)
        self.register_client_auth_method("private_key_jwt", self._authenticate_assertion)
        self.register_token_generator("default", self._generate)

    # -- Authlib hooks
    def query_client(self, client_id: str) -> SmartClient | None:
        client = self.accounts.get(client_id) if client_id else None
        return SmartClient(client, self.accounts) if client else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Tokens are self-contained signed JWTs; nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal bus here."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError

    def handle_response(
        self, status: int, body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers or [])

    def validate_requested_scope(self, scope: str | None) -> None:
        """Scopes are parsed strictly (whole token, ASCII space only); a bad one is refused."""
        try:
            parse_scopes(scope or "")
        except ScopeError as exc:
            raise InvalidScopeError(description=oauth_text(str(exc))) from None

    # -- token contents
    def _generate(
        self,
        grant_type: str,
        client: SmartClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        account = client.client
        username = user.username if user is not None else account.username
        who = self.user_lookup(username)
        backend = account.jwks is not None and grant_type == "client_credentials"
        granted = grant_scopes(scope or "", account.kind, backend=backend)
        token = self.issuer.issue(
            username=username,
            role=who.role,
            scope=granted,
            client_id=account.client_id,
            patient=who.patient_id or getattr(user, "launch_patient", None),
            purpose=purpose_for(who.role),
            backend=backend,
        )
        return token.response()

    def _authenticate_assertion(
        self, query_client: Any, request: FormRequest
    ) -> SmartClient | None:
        """SMART Backend Services: a JWT signed with the client's registered key."""
        form = request.form
        if (
            form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return None
        assertion = form.get("client_assertion") or ""
        claimed = _claimed_issuer(assertion)
        client = query_client(claimed) if claimed else None
        if client is None or not client.client.jwks:
            raise InvalidClientError(description="unknown client or no registered key")
        try:
            keys = jwk.KeySet.import_key_set(client.client.jwks)
            decoded = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(description="client assertion signature invalid") from None
        c = decoded.claims
        now = time.time()
        token_url = request.uri.split("?", 1)[0]
        if c.get("iss") != c.get("sub") or c.get("iss") != client.get_client_id():
            raise InvalidClientError(
                description="client assertion iss and sub must be the client id"
            )
        if c.get("aud") != token_url:
            raise InvalidClientError(description="client assertion aud must be the token URL")
        exp = c.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + 300:
            raise InvalidClientError(description="client assertion exp must be within 5 minutes")
        jti = str(c.get("jti") or "")
        with self._assertion_lock:
            self._seen_assertions = {k: v for k, v in self._seen_assertions.items() if v > now}
            if not jti or jti in self._seen_assertions:
                raise InvalidClientError(description="client assertion jti missing or replayed")
            self._seen_assertions[jti] = float(exp)
        return client

    def new_code(self) -> str:
        """A random authorization code."""
        return secrets.token_urlsafe(32)


def _claimed_issuer(assertion: str) -> str | None:
    """The ``iss`` a client assertion claims (unverified: only to find the client's key)."""
    import base64
    import json

    try:
        part = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


def oauth_text(message: str) -> str:
    """A message in the characters an OAuth ``error_description`` may hold (RFC 6749 5.2):
    printable ASCII without ``"`` and backslash.

    >>> oauth_text('bad scope "x" at U+00A0')
    'bad scope x at U+00A0'
    """
    return "".join(ch for ch in message if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\')


def grant_scopes(requested: str, kind: str, *, backend: bool) -> str:
    """The scopes a token gets: what was asked, if this kind of account may hold it.

    ``system/`` scopes only for SMART Backend Services clients (a registered key,
    ``private_key_jwt``) of staff accounts; ``patient/`` scopes for patients; scopes are
    separated by ASCII spaces only. The role matrix still caps every access at request time,
    so asking for more gains nothing.

    >>> grant_scopes("patient/*.rs openid", "patient", backend=False)
    'patient/*.rs openid'
    >>> grant_scopes("system/*.rs", "staff", backend=False)
    Traceback (most recent call last):
    ...
    authlib.oauth2.rfc6749.errors.InvalidScopeError: invalid_scope: system/ scopes are for backend services (private_key_jwt), not class accounts
    """
    if any(ch.isspace() and ch != " " for ch in requested) or not requested.isprintable():
        raise InvalidScopeError(description="scopes are separated by ASCII spaces only")
    tokens = requested.split(" ") if requested else []
    for tok in tokens:
        if tok.startswith("system/") and not (backend and kind == "staff"):
            raise InvalidScopeError(
                description="system/ scopes are for backend services (private_key_jwt), not class accounts"
            )
        if kind == "patient" and tok.startswith(("user/", "system/")):
            raise InvalidScopeError(description="a patient may hold patient/ scopes only")
    if not tokens:
        return "patient/*.rs" if kind == "patient" else "user/*.cruds"
    return " ".join(tokens)


def purpose_for(role: str) -> str:
    """Purpose of use comes from the role (never from the client).

    >>> purpose_for("patient"), purpose_for("physician")
    ('PATRQT', 'TREAT')
    """
    return "PATRQT" if role == "patient" else "TREAT"
