"""The classroom server's ASGI application (Starlette on uvicorn).

Run it with ``ehr-sandbox serve --data DIR`` (uvicorn); in Python, :func:`create_app` gives
the ASGI application and :class:`ServerApp` the server with its state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ehr_sandbox.server.auth_routes import AuthRoutes
from ehr_sandbox.server.browser import BrowserSessions
from ehr_sandbox.server.course_api import CourseApi
from ehr_sandbox.server.dashboard import Dashboard
from ehr_sandbox.server.fhir_api import FhirApi
from ehr_sandbox.server.limits import MAX_BODY_BYTES
from ehr_sandbox.server.outcomes import operation_outcome
from ehr_sandbox.server.pages import Pages
from ehr_sandbox.server.state import ServerState

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


class BodyLimit:
    """ASGI middleware: refuse bodies over :data:`MAX_BODY_BYTES` before reading them whole,
    and add security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            body = operation_outcome("too-costly", f"request body over {MAX_BODY_BYTES} bytes")
            await JSONResponse(body, status_code=413, media_type="application/fhir+json")(
                scope, receive, send
            )
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class ServerApp:
    """One classroom server: its state, its routes and its pages.

    Parameters
    ----------
    data : str or Path
        The data directory (``serve --data``).
    root : str
        The public base URL, e.g. ``http://127.0.0.1:8080`` (token issuer; FHIR at ``/fhir``).
    patients, seed : int
        The clinic to generate on first start.
    anchor : str or Path, optional
        An append-only file, outside ``data``, that receives a signed checkpoint of the
        clinic's audit trail after every write (``audit verify --anchor FILE`` checks it).
    """

    def __init__(
        self,
        data: str | Path,
        *,
        root: str,
        patients: int = 50,
        seed: int = 7,
        anchor: str | Path | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.secure = True
        self.state = ServerState(
            data, issuer=self.root, patients=patients, seed=seed, anchor=anchor
        )
        self.browsers = BrowserSessions(self.state.accounts.connection)
        self.templates = Environment(
            loader=PackageLoader("ehr_sandbox.server", "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self.fhir = FhirApi(self.state, self.root)
        self.auth = AuthRoutes(self)
        self.pages = Pages(self)
        self.course_api = CourseApi(self.state)
        self.dashboard = Dashboard(self)
        routes = [
            *self.auth.routes(),
            *self.pages.routes(),
            *self.dashboard.routes(),
            *self.course_api.routes(),
            *self.fhir.routes(),
        ]
        self.asgi = Starlette(
            routes=routes, middleware=[Middleware(BodyLimit)], lifespan=self._lifespan
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.state.publish_anchor()  # a last signed checkpoint when the server stops

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a page (autoescaped: patient data is untrusted)."""
        context.setdefault("user", None)
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)

    def close(self) -> None:
        """Close the clinic and the registries."""
        self.state.close()


def create_app(
    data: str | Path,
    *,
    root: str,
    patients: int = 50,
    seed: int = 7,
    anchor: str | Path | None = None,
) -> Starlette:
    """The ASGI app for ``uvicorn`` (``ehr-sandbox serve`` calls this).

    Parameters
    ----------
    data : str or Path
        The server's data directory.
    root : str
        Its public base URL.
    patients, seed : int
        The clinic generated on first start.
    anchor : str or Path, optional
        The audit anchor file (see :class:`ServerApp`).

    Returns
    -------
    Starlette
        The application.

    Examples
    --------
    >>> import tempfile
    >>> app = create_app(tempfile.mkdtemp(), root="http://127.0.0.1:8080", patients=2, seed=1)
    >>> sorted({r.path for r in app.routes})[:2]
    ['/', '/.well-known/smart-configuration']
    """
    return ServerApp(data, root=root, patients=patients, seed=seed, anchor=anchor).asgi
