"""SMART discovery, the token endpoint and the authorization (sign-in) endpoint.

The protocol work is Authlib's (:mod:`ehr_sandbox.server.oauth`); this module reads HTTP
requests, enforces what SMART App Launch 2 adds (PKCE with S256 always), rate-limits the token
endpoint and renders the sign-in page.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ehr_sandbox.server.browser import PRE_COOKIE, cookie_flags
from ehr_sandbox.server.limits import RateLimiter, Slots
from ehr_sandbox.server.oauth import FormRequest, SmartAuthorizationServer

if TYPE_CHECKING:
    from ehr_sandbox.server.app import ServerApp

TOKEN_RATE = (20, 60.0)
"""Failed token requests per client address: 20 a minute (a class behind one NAT address
signs in freely; guessing secrets does not)."""

CLIENT_RATE = (30, 60.0)
"""Token requests per client id: 30 a minute."""

SIGNIN_RATE = (10, 60.0)
"""Sign-in attempts per client address: 10 a minute."""

CHECK_SLOTS = 4
"""Token requests of one client address whose secret is checked at the same time (more wait:
the check is CPU-bound, so more at once would not finish sooner)."""

OAUTH_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
)


def smart_configuration(root: str) -> dict[str, Any]:
    """The ``/.well-known/smart-configuration`` document.

    >>> smart_configuration("http://127.0.0.1:8080")["code_challenge_methods_supported"]
    ['S256']
    """
    return {
        "issuer": root,
        "authorization_endpoint": f"{root}/auth/authorize",
        "token_endpoint": f"{root}/auth/token",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "scopes_supported": [
            "openid",
            "fhirUser",
            "launch/patient",
            "patient/*.rs",
            "user/*.cruds",
            "system/*.rs",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-v2",
            "permission-patient",
            "permission-user",
        ],
    }


class AuthRoutes:
    """The OAuth endpoints of one server."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app
        state = app.state
        self.oauth = SmartAuthorizationServer(state.accounts, state.tokens, state.user)
        self.token_limit = RateLimiter(*TOKEN_RATE)
        self.client_limit = RateLimiter(*CLIENT_RATE)
        self.signin_limit = RateLimiter(*SIGNIN_RATE)
        self.check_slots = Slots(CHECK_SLOTS)

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/.well-known/smart-configuration", self.discovery, methods=["GET"]),
            Route("/auth/token", self.token, methods=["POST"]),
            Route("/auth/authorize", self.authorize_page, methods=["GET"]),
            Route("/auth/authorize", self.authorize_submit, methods=["POST"]),
        ]

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(smart_configuration(self.app.root))

    async def _form_request(self, request: Request, values: dict[str, list[str]]) -> FormRequest:
        uri = f"{self.app.root}{request.url.path}"
        return FormRequest(request.method, uri, request.headers, values)

    async def token(self, request: Request) -> Response:
        address = _client_address(request)
        form = await request.form()
        values: dict[str, list[str]] = {}
        for k, v in form.multi_items():
            values.setdefault(k, []).append(str(v))
        client_key = _client_key(request, values)
        slow_down = JSONResponse(
            {"error": "slow_down", "error_description": "too many token requests"},
            status_code=429,
            headers={"Retry-After": "60"},
        )
        if self.token_limit.exhausted(address) or not self.client_limit.allow(client_key):
            return slow_down
        oauth_request = await self._form_request(request, values)

        def issue() -> tuple[int, Any, dict[str, str]] | None:
            # The secret check (scrypt) runs outside the server lock, so sign-ins run side by
            # side. Each check reserves one failure from its address's allowance first and
            # gives it back on success; with at most CHECK_SLOTS checks per address at once,
            # failures can never exceed the limit, however many requests race.
            with self.check_slots.hold(address):
                if not self.token_limit.allow(address):
                    return None
                status, body, headers = self.oauth.create_token_response(oauth_request)
                if status < 400:
                    self.token_limit.refund(address)
                return status, body, headers

        issued = await run_in_threadpool(issue)
        if issued is None:
            return slow_down
        status, body, headers = issued
        payload = body if isinstance(body, dict) else json.loads(body or "{}")
        return JSONResponse(payload, status_code=status, headers={"Cache-Control": "no-store"})

    def _validate(self, values: dict[str, list[str]], request: FormRequest) -> str | None:
        """An error message when the authorization request is not acceptable, else None."""
        data = {k: v[-1] for k, v in values.items()}
        if data.get("code_challenge_method") != "S256" or not data.get("code_challenge"):
            return "PKCE with code_challenge_method=S256 is required (SMART App Launch 2)"
        try:
            self.oauth.get_consent_grant(request)
        except OAuth2Error as exc:
            return f"{exc.error}: {exc.description or 'invalid authorization request'}"
        return None

    async def authorize_page(self, request: Request) -> Response:
        values = {k: [v] for k, v in request.query_params.items() if k in OAUTH_FIELDS}
        oauth_request = await self._form_request(request, values)
        error = self._validate(values, oauth_request)
        if error:
            return self.app.render("base.html", title="Sign-in refused", error=error, status=400)
        csrf = secrets.token_urlsafe(24)
        response = self.app.render(
            "login.html",
            title="Sign in",
            action="/auth/authorize",
            csrf=csrf,
            hidden=[(k, v[-1]) for k, v in values.items()],
            app=values.get("client_id", [""])[-1],
            scope=values.get("scope", [""])[-1],
        )
        response.set_cookie(PRE_COOKIE, csrf, max_age=600, **cookie_flags(self.app.secure))
        return response

    async def authorize_submit(self, request: Request) -> Response:
        form = await request.form()
        data = {k: str(v) for k, v in form.items()}
        if not secrets.compare_digest(data.get("csrf", ""), request.cookies.get(PRE_COOKIE, "-")):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="form expired or forged (CSRF)",
                status=403,
            )
        if not self.signin_limit.allow(_client_address(request)):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="too many attempts; wait a minute",
                status=429,
            )
        values = {k: [v] for k, v in data.items() if k in OAUTH_FIELDS}
        oauth_request = await self._form_request(request, values)
        error = self._validate(values, oauth_request)
        if error:
            return self.app.render("base.html", title="Sign-in refused", error=error, status=400)
        username = data.get("username", "")
        if not self.app.state.accounts.check_password(username, data.get("password", "")):
            return self.app.render(
                "login.html",
                title="Sign in",
                action="/auth/authorize",
                csrf=data.get("csrf", ""),
                hidden=[(k, v[-1]) for k, v in values.items()],
                error="wrong username or password",
            )
        user = self.app.state.user(username)

        def grant() -> tuple[int, Any, dict[str, str]]:
            with self.app.state.lock:
                oauth_request.user = user
                g = self.oauth.get_consent_grant(oauth_request, end_user=user)
                return self.oauth.create_authorization_response(
                    oauth_request, grant_user=user, grant=g
                )

        status, body, headers = await run_in_threadpool(grant)
        location = dict(headers).get("Location")
        if status == 302 and location:
            return RedirectResponse(location, status_code=302)
        return JSONResponse(
            body if isinstance(body, dict) else {"error": str(body)}, status_code=status
        )


def _client_key(request: Request, values: dict[str, list[str]]) -> str:
    """The client id a token request names (Basic auth, form field or assertion issuer)."""
    import base64

    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:]).decode("utf-8", "replace").split(":", 1)[0]
        except ValueError:
            return "?"
    return (values.get("client_id") or ["?"])[-1]


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authorize_url(root: str, **params: str) -> str:
    """Build an authorization URL (for tests and the docs).

    >>> authorize_url("http://h", client_id="c").endswith("client_id=c")
    True
    """
    return f"{root}/auth/authorize?{urlencode(params)}"
