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

from ehr_sandbox.errors import AccessDenied, NotFound, SandboxError
from ehr_sandbox.server.browser import PRE_COOKIE, cookie_flags
from ehr_sandbox.server.fhir_api import ID_PATTERN, error_response, unauthorized
from ehr_sandbox.server.launch import LAUNCH_SECONDS, LaunchStore
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

NO_PATIENT_PICKER = ("patient", "student", "course_instructor")
"""Roles that sign in without choosing a patient (a patient is their own context; course
accounts reach records only inside an attempt)."""

PICKER_LIMIT = 500
"""Patients listed on the picker at most."""

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
            "launch",
            "patient/*.rs",
            "user/*.cruds",
            "system/*.rs",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "launch-ehr",
            "context-ehr-patient",
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
        self.launches = LaunchStore(state.data / "server.db")
        self.oauth = SmartAuthorizationServer(
            state.accounts, state.tokens, state.user, self.launches
        )
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
            Route("/auth/authorize/patient", self.authorize_patient, methods=["POST"]),
            Route("/auth/launch", self.ehr_launch, methods=["POST"]),
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
        request_values = {k: v[-1] for k, v in values.items()}
        scopes = request_values.get("scope", "").split(" ")
        clinician = user.role not in NO_PATIENT_PICKER
        if request_values.get("launch"):
            # EHR launch: the launch id the EHR made for this user names the open patient
            patient = (
                self.launches.take_launch(request_values["launch"], username)
                if clinician and "launch" in scopes
                else None
            )
            if patient is None:
                return self.app.render(
                    "base.html",
                    title="Sign-in refused",
                    error="launch: unknown, expired, used, or made for another user "
                    "(start the app from the EHR again, with the scope 'launch')",
                    status=400,
                )
            return await self._grant(oauth_request, user, patient)
        if clinician and "launch/patient" in scopes:
            ticket = self.launches.new_ticket(username, request_values)
            return await self._picker(username, ticket, data.get("csrf", ""))
        return await self._grant(oauth_request, user, None)

    async def _grant(self, oauth_request: FormRequest, user: Any, patient: str | None) -> Response:
        """Issue the authorization code (with the launch's patient) and redirect to the app."""

        def grant() -> tuple[int, Any, dict[str, str]]:
            with self.app.state.lock:
                oauth_request.user = user
                oauth_request.launch_patient = patient  # type: ignore[attr-defined]
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

    async def _picker(self, username: str, ticket: str, csrf: str) -> Response:
        """The patient picker: the patients this user's Session may see (the policy decides)."""

        def visible() -> list[dict[str, str]]:
            with self.app.state.lock:
                session = self.app.state.sandbox.login(username)
                found = session.search("Patient").fetch()
            rows = [patient_row(p) for p in found]
            return sorted(rows, key=lambda r: (r["name"], r["id"]))[:PICKER_LIMIT]

        patients = await run_in_threadpool(visible)
        return self.app.render(
            "pick_patient.html",
            title="Choose a patient",
            patients=patients,
            ticket=ticket,
            csrf=csrf,
            who=username,
        )

    async def authorize_patient(self, request: Request) -> Response:
        """The picker's answer: the patient must be one this user may see."""
        form = await request.form()
        data = {k: str(v) for k, v in form.items()}
        if not secrets.compare_digest(data.get("csrf", ""), request.cookies.get(PRE_COOKIE, "-")):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="form expired or forged (CSRF)",
                status=403,
            )
        taken = self.launches.take_ticket(data.get("ticket", ""))
        if taken is None:
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="this patient choice expired or was used already; sign in again",
                status=400,
            )
        username, request_values = taken
        patient = data.get("patient", "")

        def allowed() -> bool:
            with self.app.state.lock:
                session = self.app.state.sandbox.login(username)
                try:
                    session.read("Patient", patient)
                except SandboxError:
                    return False
                return True

        if not ID_PATTERN.match(patient) or not await run_in_threadpool(allowed):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="patient: not a patient you may open; sign in again and choose from the list",
                status=400,
            )
        values = {k: [v] for k, v in request_values.items() if k in OAUTH_FIELDS}
        oauth_request = FormRequest(
            "POST", f"{self.app.root}/auth/authorize", request.headers, values
        )
        error = self._validate(values, oauth_request)
        if error:
            return self.app.render("base.html", title="Sign-in refused", error=error, status=400)
        return await self._grant(oauth_request, self.app.state.user(username), patient)

    async def ehr_launch(self, request: Request) -> Response:
        """EHR launch: a signed-in clinician's EHR asks for a launch id with a patient open;
        the app then signs in with ``launch=<id>`` and the scope ``launch``."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return unauthorized("a bearer access token is required")
        try:
            claims = self.app.state.tokens.verify(auth[7:].strip())
        except AccessDenied:
            return unauthorized("invalid or expired access token")
        form = await request.form()
        patient = str(form.get("patient", ""))
        if claims.attempt or claims.backend or claims.role in NO_PATIENT_PICKER:
            return error_response(AccessDenied("an EHR launch is made by a clinician's session"))

        def check() -> None:
            if not ID_PATTERN.match(patient):
                raise NotFound("not found")
            with self.app.state.using(claims) as session:
                session.read("Patient", patient)  # the policy decides (404 if hidden)

        try:
            await run_in_threadpool(check)
        except Exception as exc:  # noqa: BLE001 - every error becomes an OperationOutcome
            return error_response(exc)
        launch = self.launches.new_launch(claims.username, patient)
        return JSONResponse(
            {"launch": launch, "iss": f"{self.app.root}/fhir", "expires_in": LAUNCH_SECONDS},
            headers={"Cache-Control": "no-store"},
        )


def patient_row(patient: dict[str, Any]) -> dict[str, str]:
    """A picker row: id, display name and birth date.

    >>> patient_row({"id": "p1", "name": [{"given": ["Ada"], "family": "Ng"}], "birthDate": "1990-01-02"})
    {'id': 'p1', 'name': 'Ng, Ada', 'born': '1990-01-02'}
    """
    name = (patient.get("name") or [{}])[0]
    given = " ".join(name.get("given") or [])
    family = name.get("family") or ""
    return {
        "id": str(patient.get("id", "")),
        "name": f"{family}, {given}".strip(", ") or str(patient.get("id", "")),
        "born": str(patient.get("birthDate", "")),
    }


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
