"""Server-rendered pages: sign-in and the patient portal (no build step, escaped HTML).

The portal reads and writes through the patient's own Session, so it shows exactly what the
policy lets a patient see (their record, minus psychotherapy notes) and nothing else.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.server.browser import COOKIE, PRE_COOKIE, cookie_flags
from synthetic.systems import OBSERVATION_CATEGORY, SANDBOX_MESSAGE_CATEGORY

if TYPE_CHECKING:
    from ehr_sandbox.server.app import ServerApp
    from ehr_sandbox.session import Session

MESSAGE_CATEGORY = SANDBOX_MESSAGE_CATEGORY
"""Categories of portal messages (``question``, ``amendment-request``)."""

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#2a6"/><path d="M7 3h2v4h4v2H9v4H7V9H3V7h4z" fill="#fff"/></svg>'
)

OBS_CATEGORY = OBSERVATION_CATEGORY


class Pages:
    """Sign-in and portal pages of one server."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/favicon.ico", self.favicon, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login_submit, methods=["POST"]),
            Route("/logout", self.logout, methods=["GET"]),
            Route("/portal", self.portal, methods=["GET"]),
            Route("/portal/message", self.portal_message, methods=["POST"]),
            Route("/portal/amendment", self.portal_amendment, methods=["POST"]),
        ]

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/login", status_code=302)

    async def favicon(self, request: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    async def login_page(self, request: Request) -> Response:
        csrf = secrets.token_urlsafe(24)
        response = self.app.render(
            "login.html", title="Sign in", action="/login", csrf=csrf, hidden=[]
        )
        response.set_cookie(PRE_COOKIE, csrf, max_age=600, **cookie_flags(self.app.secure))
        return response

    async def login_submit(self, request: Request) -> Response:
        form = await request.form()
        data = {k: str(v) for k, v in form.items()}
        if not secrets.compare_digest(data.get("csrf", ""), request.cookies.get(PRE_COOKIE, "-")):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="form expired or forged (CSRF)",
                status=403,
            )
        if not self.app.auth.signin_limit.allow(request.client.host if request.client else "?"):
            return self.app.render(
                "base.html",
                title="Sign-in refused",
                error="too many attempts; wait a minute",
                status=429,
            )
        username = data.get("username", "")
        if not self.app.state.accounts.check_password(username, data.get("password", "")):
            return self.app.render(
                "login.html",
                title="Sign in",
                action="/login",
                csrf=data.get("csrf", ""),
                hidden=[],
                error="wrong username or password",
            )
        sid, _ = self.app.browsers.start(username)
        target = "/portal" if username.startswith("patient/") else "/dashboard"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, sid, max_age=3600, **cookie_flags(self.app.secure))
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        self.app.browsers.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def _patient_session(self, request: Request) -> tuple[Session, str] | None:
        sid = request.cookies.get(COOKIE)
        item = self.app.browsers.get(sid)
        if item is None or not item.username.startswith("patient/"):
            return None
        session = self.app.state.sandbox.login_patient(item.username.split("/", 1)[1])
        return session, item.csrf

    async def portal(self, request: Request, notice: str = "", error: str = "") -> Response:
        def build() -> dict[str, Any] | None:
            with self.app.state.lock:
                found = self._patient_session(request)
                if found is None:
                    return None
                session, csrf = found
                return {**portal_view(session), "csrf": csrf, "user": session.user.display}

        view = await run_in_threadpool(build)
        if view is None:
            return RedirectResponse("/login", status_code=303)
        return self.app.render(
            "portal.html", title="My health record", notice=notice, error=error, **view
        )

    async def _portal_post(self, request: Request, category: str, done: str) -> Response:
        form = await request.form()
        text = str(form.get("text", "")).strip()
        sid = request.cookies.get(COOKIE)
        if not self.app.browsers.check_csrf(sid, str(form.get("csrf", ""))):
            return self.app.render(
                "base.html", title="Refused", error="form expired or forged (CSRF)", status=403
            )

        def send() -> str:
            with self.app.state.lock:
                found = self._patient_session(request)
                if found is None:
                    return "signed out"
                session, _ = found
                if not text:
                    return "write a message first"
                session.create(portal_message(session, text, category))
                return ""

        try:
            problem = await run_in_threadpool(send)
        except SandboxError as exc:
            problem = str(exc)
        if problem == "signed out":
            return RedirectResponse("/login", status_code=303)
        return await self.portal(request, notice="" if problem else done, error=problem)

    async def portal_message(self, request: Request) -> Response:
        return await self._portal_post(
            request, "question", "Your message was sent to your care team."
        )

    async def portal_amendment(self, request: Request) -> Response:
        return await self._portal_post(
            request,
            "amendment-request",
            "Your amendment request was sent. The practice answers within 60 days.",
        )


def portal_message(session: Session, text: str, category: str) -> dict[str, Any]:
    """A Communication from the signed-in patient to their care team.

    >>> class S:
    ...     patient_id = "p1"
    ...     class sandbox:
    ...         class clock:
    ...             @staticmethod
    ...             def peek():
    ...                 from datetime import datetime, timezone
    ...                 return datetime(2026, 1, 2, tzinfo=timezone.utc)
    >>> portal_message(S(), "hello", "question")["sender"]
    {'reference': 'Patient/p1'}
    """
    from ehr_sandbox.clock import instant

    pid = session.patient_id
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": MESSAGE_CATEGORY, "code": category}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "sender": {"reference": f"Patient/{pid}"},
        "sent": instant(session.sandbox.clock.peek()),
        "payload": [{"contentString": text}],
    }


def portal_view(session: Session) -> dict[str, Any]:
    """What the portal page shows, read through the patient's Session."""
    pid = session.patient_id
    patient = session.read("Patient", pid)
    name = (patient.get("name") or [{}])[0]
    problems = [
        {
            "text": _text(c.get("code")),
            "status": _text(c.get("clinicalStatus")),
        }
        for c in session.search("Condition", patient=f"Patient/{pid}").fetch()
    ]
    results = []
    obs = session.search(
        "Observation", patient=f"Patient/{pid}", category=f"{OBS_CATEGORY}|laboratory"
    )
    for o in obs.sort("-date").limit(50).fetch():
        q = o.get("valueQuantity")
        value = (
            f"{q.get('value')} {q.get('unit', '')}".strip()
            if isinstance(q, dict)
            else _text(o.get("valueCodeableConcept")) or o.get("valueString", "")
        )
        results.append(
            {
                "name": _text(o.get("code")),
                "value": value,
                "date": str(o.get("effectiveDateTime", ""))[:10],
            }
        )
    messages = [
        {
            "sent": str(m.get("sent", ""))[:10],
            "topic": _text({"coding": (m.get("category") or [{}])[0].get("coding", [])}),
            "text": " ".join(p.get("contentString", "") for p in m.get("payload", [])),
        }
        for m in session.search("Communication", subject=f"Patient/{pid}").fetch()
    ]
    return {
        "patient": {
            "name": " ".join([*name.get("given", []), name.get("family", "")]).strip(),
            "birth_date": patient.get("birthDate", ""),
        },
        "problems": problems,
        "results": results,
        "messages": messages,
    }


def _text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for c in concept.get("coding", []):
        if c.get("display") or c.get("code"):
            return str(c.get("display") or c.get("code"))
    return ""
