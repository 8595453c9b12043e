"""FHIR R4 REST at ``/fhir``: a thin adapter from HTTP to Session methods.

Every route authenticates the bearer token, takes the Session the token stands for, calls the
same Session method a script would call in-process, and turns the result (or the typed error)
into FHIR JSON (or an OperationOutcome with its status). Nothing is re-implemented here: the
policy, validation, Provenance and audit are the Session's.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ehr_sandbox.errors import AccessDenied, ConflictError, NotFound, ValidationError
from ehr_sandbox.reports import wire
from ehr_sandbox.server.capability import capability_statement
from ehr_sandbox.server.limits import MAX_BODY_BYTES, BodyTooLarge, parse_json
from ehr_sandbox.server.operations import OPERATIONS, TYPE_OPERATIONS, Parameters, whoami_parameters
from ehr_sandbox.server.outcomes import operation_outcome, outcome_for
from synthetic.fhir import is_resource_type

if TYPE_CHECKING:
    from ehr_sandbox.server.state import ServerState
    from ehr_sandbox.session import Session

LOG = logging.getLogger("ehr_sandbox.server")

FHIR_JSON = "application/fhir+json"
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
"""FHIR ``id``: anything else in a URL is simply not found (no traversal, no probing)."""

Handler = Callable[["Session"], tuple[int, Any, dict[str, str]]]


def fhir_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON response.

    >>> fhir_response(200, {"resourceType": "Patient"}).media_type
    'application/fhir+json'
    """
    return JSONResponse(body, status_code=status, headers=headers or {}, media_type=FHIR_JSON)


def error_response(exc: BaseException) -> Response:
    """The OperationOutcome response for an exception (one body for hidden and absent).
    Unexpected errors are logged on the server; the client sees only "internal error"."""
    status, body = outcome_for(exc)
    if status >= 500:
        LOG.error("internal error behind the API", exc_info=exc)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else {}
    return fhir_response(status, body, headers)


def unauthorized(message: str) -> Response:
    """401 with an OperationOutcome and ``WWW-Authenticate: Bearer``."""
    return fhir_response(
        401,
        operation_outcome("login", message),
        {"WWW-Authenticate": 'Bearer realm="ehr-sandbox"'},
    )


class FhirApi:
    """The ``/fhir`` routes over one :class:`ServerState`."""

    def __init__(self, state: ServerState, base_url: str) -> None:
        self.state = state
        self.base = base_url.rstrip("/") + "/fhir"

    # ------------------------------------------------------------------ plumbing
    async def _run(self, request: Request, handler: Handler) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return unauthorized(
                "a bearer access token is required (see /.well-known/smart-configuration)"
            )
        token = auth[7:].strip()
        try:
            claims = self.state.tokens.verify(token)
        except AccessDenied:
            return unauthorized("invalid or expired access token")

        def work() -> tuple[int, Any, dict[str, str]]:
            with self.state.using(claims) as session:
                return handler(session)

        try:
            status, body, headers = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - every error becomes an OperationOutcome
            return error_response(exc)
        if request.method in ("POST", "PUT") and status < 300:
            await run_in_threadpool(self.state.publish_anchor)
        if isinstance(body, Response):
            return body
        return fhir_response(status, body, headers)

    @staticmethod
    async def _body(request: Request) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            raise BodyTooLarge(
                "request", "body", f"at most {MAX_BODY_BYTES} bytes", found=int(size)
            )
        chunks = bytearray()
        async for chunk in request.stream():
            chunks.extend(chunk)
            if len(chunks) > MAX_BODY_BYTES:
                raise BodyTooLarge("request", "body", f"at most {MAX_BODY_BYTES} bytes")
        return parse_json(bytes(chunks))

    async def _with_body(self, request: Request, make: Callable[[Any], Handler]) -> Response:
        try:
            body = await self._body(request)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return await self._run(request, make(body))

    @staticmethod
    def _type_and_id(request: Request) -> tuple[str, str | None]:
        rtype = request.path_params["rtype"]
        rid = request.path_params.get("rid")
        if not is_resource_type(rtype) or (rid is not None and not ID_PATTERN.match(rid)):
            raise NotFound("not found")
        return rtype, rid

    # ------------------------------------------------------------------ routes
    def routes(self) -> list[Route]:
        """The Starlette routes of the FHIR API."""
        return [
            Route("/fhir/metadata", self.metadata, methods=["GET"]),
            Route("/fhir", self.bundle, methods=["POST"]),
            Route("/fhir/$export", self.export_kickoff, methods=["GET", "POST"]),
            Route("/fhir/$export-status/{job}", self.export_status, methods=["GET"]),
            Route("/fhir/$export-file/{job}/{name}", self.export_file, methods=["GET"]),
            Route("/fhir/$report", self.report, methods=["POST"]),
            Route("/fhir/$run-view", self.run_view, methods=["POST"]),
            Route("/fhir/$audit-action", self.audit_action, methods=["POST"]),
            Route("/fhir/$whoami", self.whoami, methods=["GET"]),
            Route("/fhir/$own-actions", self.own_actions, methods=["POST"]),
            Route("/fhir/$audit-events", self.audit_events, methods=["GET"]),
            Route("/fhir/$btg-review-queue", self.btg_review_queue, methods=["GET"]),
            Route("/fhir/$btg-review", self.btg_review, methods=["POST"]),
            Route("/fhir/{rtype}/_search", self.search, methods=["POST"]),
            Route("/fhir/{rtype}/{op}", self.type_operation, methods=["POST"]),
            Route("/fhir/{rtype}/_history", self.type_history, methods=["GET"]),
            Route("/fhir/{rtype}/{rid}/_history/{vid}", self.vread, methods=["GET"]),
            Route("/fhir/{rtype}/{rid}/_history", self.history, methods=["GET"]),
            Route("/fhir/{rtype}/{rid}/{op}", self.operation, methods=["POST"]),
            Route("/fhir/{rtype}/{rid}", self.read, methods=["GET"]),
            Route("/fhir/{rtype}/{rid}", self.update, methods=["PUT"]),
            Route("/fhir/{rtype}", self.search, methods=["GET"]),
            Route("/fhir/{rtype}", self.create, methods=["POST"]),
        ]

    async def metadata(self, request: Request) -> Response:
        """The CapabilityStatement (no token needed)."""
        return fhir_response(200, capability_statement(self.base))

    async def read(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            rtype, rid = self._type_and_id(request)
            res = s.read(rtype, rid)
            return 200, res, _etag(res)

        return await self._run(request, handler)

    async def vread(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            rtype, rid = self._type_and_id(request)
            vid = request.path_params["vid"]
            if not vid.isdigit():
                raise NotFound("not found")
            res = s.vread(rtype, rid or "", vid)
            return 200, res, _etag(res)

        return await self._run(request, handler)

    async def history(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            rtype, rid = self._type_and_id(request)
            return 200, _history_bundle(s.history(rtype, rid)), {}

        return await self._run(request, handler)

    async def type_history(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            rtype, _ = self._type_and_id(request)
            return 200, _history_bundle(s.history(rtype)), {}

        return await self._run(request, handler)

    async def search(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            form = await request.form()
            params += [(k, str(v)) for k, v in form.multi_items()]

        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            rtype, _ = self._type_and_id(request)
            return 200, self._search_bundle(s, rtype, params), {}

        return await self._run(request, handler)

    def _search_bundle(
        self, s: Session, rtype: str, params: list[tuple[str, str]]
    ) -> dict[str, Any]:
        bundle = s.search(rtype, params).bundle()
        query = "&".join(f"{k}={v}" for k, v in params)
        links = [{"relation": "self", "url": f"{self.base}/{rtype}?{query}"}]
        count = next((int(v) for k, v in params if k == "_count" and v.isdigit()), None)
        offset = next((int(v) for k, v in params if k == "_offset" and v.isdigit()), 0)
        if count is not None and bundle.get("total", 0) >= count > 0:
            rest = [(k, v) for k, v in params if k != "_offset"]
            nxt = "&".join(f"{k}={v}" for k, v in [*rest, ("_offset", str(offset + count))])
            links.append({"relation": "next", "url": f"{self.base}/{rtype}?{nxt}"})
        for entry in bundle.get("entry", []):
            res = entry["resource"]
            entry["fullUrl"] = f"{self.base}/{res['resourceType']}/{res['id']}"
        return {**bundle, "link": links}

    async def whoami(self, request: Request) -> Response:
        """The token's user and the attempt's sandbox clock (``now``), as ``Parameters``:
        the one place a remote session asks the time."""

        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            return 200, whoami_parameters(s), {}

        return await self._run(request, handler)

    async def own_actions(self, request: Request) -> Response:
        """``Session.own_actions``: this user's own events of an action kind, as a Bundle."""

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                p = Parameters(body)
                events = s.own_actions(
                    p.text("kind"), patient=p.text("patient", required=False) or None
                )
                return 200, _collection(events), {}

            return handler

        return await self._with_body(request, make)

    async def audit_events(self, request: Request) -> Response:
        """``Session.audit_events``: the audit trail, for the roles that may read it (reading
        it is audited; others get the Session's AccessDenied)."""

        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            return 200, _collection(s.audit_events()), {}

        return await self._run(request, handler)

    async def btg_review_queue(self, request: Request) -> Response:
        """``Session.btg_review_queue``: break-the-glass uses awaiting review, as
        ``Parameters`` (one ``item`` per use, its JSON); the Session decides who may see it."""

        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            items = [
                {"name": "item", "valueString": json.dumps(item, sort_keys=True)}
                for item in s.btg_review_queue()
            ]
            return 200, {"resourceType": "Parameters", "parameter": items}, {}

        return await self._run(request, handler)

    async def btg_review(self, request: Request) -> Response:
        """``Session.review_btg``: the privacy officer's review of one pending use
        (``index``, ``appropriate``, ``note``), decided and audited by the Session."""

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                p = Parameters(body)
                appropriate = p.value("appropriate")
                if not isinstance(appropriate, bool):
                    raise ValidationError(
                        "Parameters", "parameter[appropriate]", "a boolean", found=appropriate
                    )
                s.review_btg(p.value("index"), appropriate=appropriate, note=p.text("note"))
                done = operation_outcome("informational", "reviewed", severity="information")
                return 200, done, {}

            return handler

        return await self._with_body(request, make)

    async def type_operation(self, request: Request) -> Response:
        """An operation on a resource type (``POST /fhir/Patient/$find``)."""
        op = request.path_params["op"]
        rtype = request.path_params["rtype"]
        if not op.startswith("$") or (rtype, op[1:]) not in TYPE_OPERATIONS:
            return error_response(NotFound("not found"))

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                found = TYPE_OPERATIONS[(rtype, op[1:])](s, Parameters(body))
                bundle = {**_collection(found), "type": "searchset"}
                for entry in bundle["entry"]:
                    res = entry["resource"]
                    entry["fullUrl"] = f"{self.base}/{res['resourceType']}/{res['id']}"
                return 200, bundle, {}

            return handler

        return await self._with_body(request, make)

    async def create(self, request: Request) -> Response:
        prov = request.headers.get("x-provenance")
        override = request.headers.get("x-override-reason")

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                rtype, _ = self._type_and_id(request)
                if not isinstance(body, dict) or body.get("resourceType") != rtype:
                    raise ValidationError(rtype, "resourceType", f"a {rtype} resource in the body")
                resource = {
                    k: v for k, v in body.items() if k != "id"
                }  # POST: the server assigns ids
                created = s.create(
                    resource,
                    reason=provenance_reason(prov),
                    override_reason=override_reason(override),
                )
                loc = f"{self.base}/{rtype}/{created['id']}/_history/{created['meta']['versionId']}"
                return 201, created, {**_etag(created), "Location": loc}

            return handler

        return await self._with_body(request, make)

    async def update(self, request: Request) -> Response:
        if_match = request.headers.get("if-match")
        prov = request.headers.get("x-provenance")
        override = request.headers.get("x-override-reason")

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                rtype, rid = self._type_and_id(request)
                if not isinstance(body, dict) or body.get("resourceType") != rtype:
                    raise ValidationError(rtype, "resourceType", f"a {rtype} resource in the body")
                if body.get("id") != rid:
                    raise ValidationError(
                        f"{rtype}/{rid}", "id", "the id in the URL", found=body.get("id")
                    )
                resource = dict(body)
                if if_match is not None:
                    wanted = _version_from_etag(if_match)
                    current = s.read(rtype, rid or "")
                    have = str(current.get("meta", {}).get("versionId"))
                    if wanted != have:
                        raise ConflictError(f"{rtype}/{rid}", expected=wanted, current=have)
                    resource["meta"] = {**resource.get("meta", {}), "versionId": wanted}
                updated = s.update(
                    resource,
                    reason=provenance_reason(prov),
                    override_reason=override_reason(override),
                )
                return 200, updated, _etag(updated)

            return handler

        return await self._with_body(request, make)

    async def bundle(self, request: Request) -> Response:
        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                return 200, s.transaction(body), {}

            return handler

        return await self._with_body(request, make)

    async def operation(self, request: Request) -> Response:
        op = request.path_params["op"]
        if not op.startswith("$") or op[1:] not in OPERATIONS:
            return error_response(NotFound("not found"))

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                rtype, rid = self._type_and_id(request)
                params = Parameters(body)
                result = OPERATIONS[op[1:]](s, f"{rtype}/{rid}", params)
                if result is None:
                    return (
                        200,
                        operation_outcome("informational", f"{op} done", severity="information"),
                        {},
                    )
                return 200, result, _etag(result)

            return handler

        return await self._with_body(request, make)

    async def report(self, request: Request) -> Response:
        """``Session.reports.run`` (``name``) or ``Session.reports.sql`` (``sql``) run here, as
        the token's session: its rows (at most :data:`~ehr_sandbox.reports.wire.MAX_REPORT_ROWS`, ``truncated`` says
        when more were left out), columns and how it was made. ``_format=arrow`` adds the
        rows as a base64 Arrow IPC stream (exact types: decimals, dates), which
        ``RemoteSession.reports`` reads."""

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                params = Parameters(body)
                name = params.text("name", required=False)
                fmt = params.text("_format", required=False)
                extra = {
                    k: v for k, v in params.values().items() if k not in ("name", "sql", "_format")
                }
                if name:
                    rep = s.reports.run(name, **extra)
                else:
                    rep = s.reports.sql(params.text("sql"), **extra)
                return 200, wire.report_body(rep, arrow=fmt == "arrow"), {}

            return handler

        return await self._with_body(request, make)

    async def run_view(self, request: Request) -> Response:
        """``Session.run_view``: a SQL on FHIR ViewDefinition (parameter ``view``) run here over
        what the token's session may see; the rows (at most :data:`~ehr_sandbox.reports.wire.MAX_REPORT_ROWS`, else a
        ValidationError: a view is never answered in part)."""

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                view = Parameters(body).value("view")
                if not isinstance(view, dict):
                    raise ValidationError(
                        "Parameters", "parameter[view]", "a ViewDefinition (a JSON object)"
                    )
                rows = s.run_view(view)
                if len(rows) > wire.MAX_REPORT_ROWS:
                    raise ValidationError(
                        "run_view",
                        "view",
                        f"at most {wire.MAX_REPORT_ROWS} rows over HTTP",
                        found=len(rows),
                        why="narrow it with a where clause",
                    )
                plain = json.loads(json.dumps(rows, default=str))
                return 200, {"rows": plain, "total": len(rows)}, {}

            return handler

        return await self._with_body(request, make)

    async def audit_action(self, request: Request) -> Response:
        """``Session.audit_action``: record an action of the token's user (a hand-in, a
        disclosure) in the audit trail; the Session refuses the kinds only the sandbox
        records."""

        def make(body: Any) -> Handler:
            def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
                p = Parameters(body)
                s.audit_action(
                    p.text("kind"),
                    patient=p.text("patient", required=False) or None,
                    ref=p.text("ref", required=False) or None,
                    detail=p.text("detail", required=False) or None,
                )
                done = operation_outcome("informational", "recorded", severity="information")
                return 200, done, {}

            return handler

        return await self._with_body(request, make)

    # ------------------------------------------------------------------ bulk export
    async def export_kickoff(self, request: Request) -> Response:
        types = request.query_params.get("_type")

        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            job = secrets.token_urlsafe(12)
            out = self.state.data / "exports" / job
            out.mkdir()
            if types:
                wanted = types.split(",")
            else:  # FHIR Bulk Data: every type the client is authorized for
                from ehr_sandbox.search.registry import REGISTRY

                wanted = [t for t in sorted(REGISTRY) if s.can_read(t)]
            try:
                counts = s.export(str(out), types=wanted)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
            owner = {"user": s.user.username, "counts": counts}
            (out / "owner.json").write_text(json.dumps(owner), encoding="utf-8")
            return (
                202,
                operation_outcome("informational", "export accepted", severity="information"),
                {"Content-Location": f"{self.base}/$export-status/{job}"},
            )

        return await self._run(request, handler)

    def _job_dir(self, s: Session, job: str) -> Path:
        if not ID_PATTERN.match(job.replace("_", "-")):
            raise NotFound("not found")
        out = self.state.data / "exports" / job
        owner_file = out / "owner.json"
        if not owner_file.is_file():
            raise NotFound("not found")
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
        if owner.get("user") != s.user.username:
            raise NotFound("not found")
        return out

    async def export_status(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            job = request.path_params["job"]
            out = self._job_dir(s, job)
            files = sorted(p.name for p in out.glob("*.ndjson"))
            manifest = {
                "transactionTime": s.sandbox.clock.peek().isoformat(),
                "request": f"{self.base}/$export",
                "requiresAccessToken": True,
                "output": [
                    {
                        "type": f.removesuffix(".ndjson"),
                        "url": f"{self.base}/$export-file/{job}/{f}",
                    }
                    for f in files
                ],
                "error": [],
            }
            return 200, manifest, {}

        return await self._run(request, handler)

    async def export_file(self, request: Request) -> Response:
        def handler(s: Session) -> tuple[int, Any, dict[str, str]]:
            job, name = request.path_params["job"], request.path_params["name"]
            out = self._job_dir(s, job)
            allowed = {p.name for p in out.glob("*.ndjson")}
            if name not in allowed:
                raise NotFound("not found")
            return 200, FileResponse(out / name, media_type="application/fhir+ndjson"), {}

        return await self._run(request, handler)


def provenance_reason(header: str | None) -> str | None:
    """The reason text of an ``X-Provenance`` header (a Provenance resource in JSON, as FHIR
    REST defines it), which the Session records in the write's Provenance.

    >>> provenance_reason('{"resourceType": "Provenance", "reason": [{"text": "no-show"}]}')
    'no-show'
    >>> provenance_reason(None) is None
    True
    >>> provenance_reason("not json")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: X-Provenance: reason: expected a Provenance resource in JSON with reason[0].text (found 'not json')
    """
    if header is None:
        return None
    try:
        prov = json.loads(header)
        text = prov["reason"][0]["text"] if prov.get("resourceType") == "Provenance" else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        text = None
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            "X-Provenance",
            "reason",
            "a Provenance resource in JSON with reason[0].text",
            found=header[:80],
        )
    return text


def override_reason(header: str | None) -> str | None:
    """The drug-allergy override reason of an ``X-Override-Reason`` header (a JSON string, so
    any text travels in an ASCII header), which the Session keeps in the Provenance and audit.

    >>> override_reason('"benefit outweighs the risk"')
    'benefit outweighs the risk'
    >>> override_reason(None) is None
    True
    >>> override_reason("3")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: X-Override-Reason: override_reason: expected a JSON string with the reason (found '3')
    """
    if header is None:
        return None
    try:
        text = json.loads(header)
    except ValueError:
        text = None
    if not isinstance(text, str):
        raise ValidationError(
            "X-Override-Reason",
            "override_reason",
            "a JSON string with the reason",
            found=header[:80],
        )
    return text


def _collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def _etag(resource: dict[str, Any]) -> dict[str, str]:
    vid = resource.get("meta", {}).get("versionId")
    return {"ETag": f'W/"{vid}"'} if vid else {}


def _version_from_etag(value: str) -> str:
    """``W/"3"`` -> ``"3"``.

    >>> _version_from_etag('W/"3"'), _version_from_etag('"4"'), _version_from_etag("5")
    ('3', '4', '5')
    """
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    return v.strip('"')


def _history_bundle(versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(versions),
        "entry": [{"resource": v} for v in versions],
    }
