"""The course API (JSON): instructors create courses, enrol students and assign exercises;
students start attempts and have them checked (practice) or submitted (graded) on the server.

Routes::

    POST /course                                  instructor: {"name"} -> the course id
    POST /course/{course}/students                instructor: {"id", "name"?, "email"?} -> credentials (once)
    POST /course/{course}/assignments             instructor: {"exercise", "due"?, "max_attempts"?,
                                                  "max_checks"?}
    GET  /course/{course}/gradebook?format=canvas instructor: CSV
    GET  /course/{course}/results                 instructor: every submission (JSON)
    POST /course/{course}/attempts                student: {"exercise"} -> attempt id, instructions, token
    POST /course/{course}/attempts/{id}/check     student: practice feedback (never counts toward
                                                  the grade; counted, shown to the instructor)
    POST /course/{course}/attempts/{id}/submit    student: graded, counted, stamped by the server
    POST /course/{course}/attempts/{id}/hint      student: {"accept_cost"?} -> the hint or its cost
    POST /course/{course}/attempts/{id}/reset     student: back to the variant's start
    POST /course/{course}/attempts/{id}/login     student: {"username"} or {"patient"} -> a token
                                                  as one of the exercise's people, in this
                                                  attempt only (audited)
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehr_sandbox.errors import AccessDenied, ExerciseError, NotFound, SandboxError
from ehr_sandbox.exercises.attempt import LOGIN_KIND
from ehr_sandbox.server.courses import student_of
from ehr_sandbox.server.fhir_api import error_response, unauthorized
from ehr_sandbox.server.limits import parse_json

LOG = logging.getLogger("ehr_sandbox.server")

if TYPE_CHECKING:
    from ehr_sandbox.server.courses import HostedAttempt
    from ehr_sandbox.server.state import ServerState
    from ehr_sandbox.server.tokens import TokenClaims

ATTEMPT_SCOPE = "user/*.cruds"
"""Scopes of an attempt token (the exercise's role still caps what it may do)."""


class CourseApi:
    """The ``/course`` routes over one :class:`ServerState`."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/course", self.create_course, methods=["POST"]),
            Route("/course/{course}/students", self.enroll, methods=["POST"]),
            Route("/course/{course}/assignments", self.assign, methods=["POST"]),
            Route("/course/{course}/gradebook", self.gradebook, methods=["GET"]),
            Route("/course/{course}/results", self.results, methods=["GET"]),
            Route("/course/{course}/attempts", self.start, methods=["POST"]),
            Route("/course/{course}/attempts/{attempt}/{action}", self.act, methods=["POST"]),
        ]

    async def _run(
        self, request: Request, role: str, work: Callable[[TokenClaims, Any], Any]
    ) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return unauthorized("a bearer access token is required")
        try:
            claims = self.state.tokens.verify(auth[7:].strip())
        except AccessDenied:
            return unauthorized("invalid or expired access token")
        if claims.role != role or claims.attempt:
            return error_response(AccessDenied(f"this needs a {role.replace('_', ' ')} account"))
        body: Any = None
        if request.method == "POST":
            raw = await request.body()
            try:
                body = parse_json(raw) if raw else {}
                if not isinstance(body, dict):
                    raise ExerciseError(
                        "request body: expected a JSON object "
                        f"(found {type(body).__name__ if body is not None else 'null'})"
                    )
            except SandboxError as exc:
                return error_response(exc)

        try:  # course files and attempts take their own locks (shared by the workers)
            result = await run_in_threadpool(work, claims, body)
        except Exception as exc:  # noqa: BLE001 - every error becomes an OperationOutcome
            return error_response(exc)
        return result if isinstance(result, Response) else JSONResponse(result)

    # ------------------------------------------------------------------ instructor
    async def create_course(self, request: Request) -> Response:
        def work(claims: TokenClaims, body: Any) -> Any:
            name = _field(body, "name")
            course = self.state.courses.create(name)
            return {"course": _slug_of(self.state, course), "name": course.name}

        return await self._run(request, "course_instructor", work)

    async def enroll(self, request: Request) -> Response:
        def work(claims: TokenClaims, body: Any) -> Any:
            details = {k: str(body[k]) for k in ("name", "email", "section") if k in body}
            creds = self.state.courses.enroll(
                request.path_params["course"], _field(body, "id"), **details
            )
            return {**creds, "note": "shown once: the server keeps only hashes"}

        return await self._run(request, "course_instructor", work)

    async def assign(self, request: Request) -> Response:
        def work(claims: TokenClaims, body: Any) -> Any:
            a = self.state.courses.assign(
                request.path_params["course"],
                _field(body, "exercise"),
                due=body.get("due"),
                max_attempts=body.get("max_attempts"),
                max_checks=body.get("max_checks"),
            )
            return a.to_dict()

        return await self._run(request, "course_instructor", work)

    async def gradebook(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "canvas")

        def work(claims: TokenClaims, body: Any) -> Any:
            course = self.state.courses.course(request.path_params["course"])
            if fmt not in ("canvas", "moodle"):
                raise ExerciseError(f"format: expected canvas or moodle (found {fmt!r})")
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "grades.csv"
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    course.gradebook(out=out, format=fmt)  # type: ignore[arg-type]
                text = out.read_text(encoding="utf-8")
            return Response(
                text,
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="grades-{fmt}.csv"'},
            )

        return await self._run(request, "course_instructor", work)

    async def results(self, request: Request) -> Response:
        def work(claims: TokenClaims, body: Any) -> Any:
            course = self.state.courses.course(request.path_params["course"])
            table = course.results_table()
            return json.loads(table.to_json(orient="records"))

        return await self._run(request, "course_instructor", work)

    # ------------------------------------------------------------------ student
    async def start(self, request: Request) -> Response:
        def work(claims: TokenClaims, body: Any) -> Any:
            slug, student = student_of(claims.username)
            if slug != request.path_params["course"]:
                raise NotFound("no such course for this account")
            hosted = self.state.courses.start(slug, student, _field(body, "exercise"))
            att = hosted.attempt
            role_user = att.user
            token = self.state.tokens.issue(
                username=role_user.username,
                role=role_user.role,
                scope=ATTEMPT_SCOPE,
                client_id=claims.client_id,
                attempt=hosted.attempt_id,
                student=student,
            )
            return {
                "attempt": hosted.attempt_id,
                "exercise": att.exercise.id,
                "student": att.student,
                "role": role_user.username,
                "instructions": att.instructions,
                "facts": dict(att.facts),
                "access_token": token.access_token,
                "expires_in": token.expires_in,
            }

        return await self._run(request, "student", work)

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]

        def work(claims: TokenClaims, body: Any) -> Any:
            slug, student = student_of(claims.username)
            if slug != request.path_params["course"]:
                raise NotFound("no such attempt")
            if action not in ("check", "submit", "hint", "reset", "login"):
                raise NotFound(f"no attempt action {action!r} (check, submit, hint, reset, login)")
            host = self.state.courses
            hosted = host.attempt(request.path_params["attempt"], student)
            if hosted.course != slug:
                raise NotFound("no such attempt")
            att = hosted.attempt
            with hosted.handle.lock:
                if action == "login":
                    return self._person_token(claims, hosted, student, body)
                if action == "reset":
                    host.reset(hosted)
                    return {"reset": True}
                # Checks, submissions and hints of one attempt go one at a time across the
                # workers, counted against the course file as it is now; grading runs outside
                # the course's lock (only recording in the course file takes it). Feedback never
                # confirms a hand-in item by item (Result.for_student).
                with host.acting_on(hosted):
                    if action == "check":
                        return att.check().for_student().to_dict()
                    if action == "submit":
                        return att.submit().for_student().to_dict()
                    return {
                        "hint": att.hint(accept_cost=bool(body.get("accept_cost"))),
                        "next_cost": att.hint_cost(),
                    }

        return await self._run(request, "student", work)

    def _person_token(
        self, claims: TokenClaims, hosted: HostedAttempt, student: str, body: Any
    ) -> dict[str, Any]:
        """A token for one of the exercise's declared people, in this attempt's sandbox only
        (the caller owns the attempt: checked by :meth:`act`); recorded in the attempt's
        audit trail as the student's user and in the server log."""
        if not isinstance(body, dict) or ("username" in body) == ("patient" in body):
            raise ExerciseError("request body: expected a username or a patient, exactly one")
        who = "username" if "username" in body else "patient"
        login = hosted.person_login(**{who: _field(body, who)})
        session = hosted.handle.person_session(login)
        hosted.handle.sandbox.record_framework_action(
            hosted.attempt.exercise.role, LOGIN_KIND, detail=login
        )
        LOG.info("attempt %s: %s logged in as %s", hosted.attempt_id, claims.username, login)
        token = self.state.tokens.issue(
            username=login,
            role=session.user.role,
            scope=ATTEMPT_SCOPE,
            client_id=claims.client_id,
            patient=session.user.patient_id,
            attempt=hosted.attempt_id,
            student=student,
        )
        return {
            "username": login,
            "role": session.user.role,
            "access_token": token.access_token,
            "expires_in": token.expires_in,
        }


def _field(body: Any, name: str) -> str:
    if not isinstance(body, dict) or not isinstance(body.get(name), str) or not body[name].strip():
        raise ExerciseError(f"request body: {name}: expected a non-empty string")
    return body[name].strip()


def _slug_of(state: ServerState, course: Any) -> str:
    for slug, c in state.courses.courses.items():
        if c is course:
            return slug
    raise NotFound("course vanished")
