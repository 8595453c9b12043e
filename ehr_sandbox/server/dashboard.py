"""The instructor's pages: courses and gradebook, enrolment and assignment forms, a student's
attempt with its variant and the timeline of every action from the audit trail, and the
clinic's break-the-glass review queue.
"""

from __future__ import annotations

import base64
import contextlib
import math
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.server.browser import COOKIE

if TYPE_CHECKING:
    from ehr_sandbox.server.app import ServerApp


class Dashboard:
    """The ``/dashboard`` pages of one server."""

    def __init__(self, app: ServerApp) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/dashboard", self.home, methods=["GET"]),
            Route("/dashboard/course", self.create_course, methods=["POST"]),
            Route("/dashboard/btg/{index:int}", self.review_btg, methods=["POST"]),
            Route("/dashboard/{course}/enroll", self.enroll, methods=["POST"]),
            Route("/dashboard/{course}/assign", self.assign, methods=["POST"]),
            Route("/dashboard/{course}/gradebook.csv", self.gradebook_csv, methods=["GET"]),
            Route(
                "/dashboard/{course}/attempt/{student}/{exercise:path}",
                self.attempt,
                methods=["GET"],
            ),
        ]

    def _instructor(self, request: Request) -> tuple[str, str] | None:
        item = self.app.browsers.get(request.cookies.get(COOKIE))
        if item is None or not item.username.startswith("instructor:"):
            return None
        return item.username, item.csrf

    async def home(
        self, request: Request, *, created: dict[str, str] | None = None, error: str = ""
    ) -> Response:
        who = self._instructor(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)

        def build() -> dict[str, Any]:
            with self.app.state.lock:
                return dashboard_view(self.app)

        view = await run_in_threadpool(build)
        return self.app.render(
            "dashboard.html",
            title="Instructor dashboard",
            user=who[0],
            csrf=who[1],
            created=created,
            error=error,
            **view,
        )

    async def _form(self, request: Request) -> dict[str, str] | None:
        who = self._instructor(request)
        form = await request.form()
        data = {k: str(v) for k, v in form.items()}
        if who is None or not self.app.browsers.check_csrf(
            request.cookies.get(COOKIE), data.get("csrf")
        ):
            return None
        return data

    async def create_course(self, request: Request) -> Response:
        data = await self._form(request)
        if data is None:
            return self.app.render(
                "base.html", title="Refused", error="sign in again (CSRF)", status=403
            )
        try:
            await run_in_threadpool(lambda: self.app.state.courses.create(data.get("name", "")))
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return RedirectResponse("/dashboard", status_code=303)

    async def review_btg(self, request: Request) -> Response:
        data = await self._form(request)
        if data is None:
            return self.app.render(
                "base.html", title="Refused", error="sign in again (CSRF)", status=403
            )
        note = data.get("note", "").strip()
        if not note:
            return await self.home(request, error="a break-the-glass review needs a note")
        who = self._instructor(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)

        def work() -> None:
            with self.app.state.lock:
                sb = self.app.state.sandbox
                sb.review_btg(
                    sb.grader_session(),
                    request.path_params["index"],
                    appropriate=data.get("appropriate") == "yes",
                    note=note,
                    on_behalf_of=who[0],  # the audit trail says which instructor reviewed
                )

        try:
            await run_in_threadpool(work)
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return RedirectResponse("/dashboard", status_code=303)

    async def enroll(self, request: Request) -> Response:
        data = await self._form(request)
        if data is None:
            return self.app.render(
                "base.html", title="Refused", error="sign in again (CSRF)", status=403
            )
        slug = request.path_params["course"]
        student = data.get("student", "").strip()

        def work() -> dict[str, str]:
            with self.app.state.lock:
                details = {"name": data["name"]} if data.get("name") else {}
                return self.app.state.courses.enroll(slug, student, **details)

        try:
            creds = await run_in_threadpool(work)
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return await self.home(request, created={**creds, "student": student})

    async def assign(self, request: Request) -> Response:
        data = await self._form(request)
        if data is None:
            return self.app.render(
                "base.html", title="Refused", error="sign in again (CSRF)", status=403
            )
        slug = request.path_params["course"]

        def work() -> None:
            limit = data.get("max_attempts", "").strip()
            checks = data.get("max_checks", "").strip()
            self.app.state.courses.assign(
                slug,
                data.get("exercise", ""),
                due=data.get("due") or None,
                max_attempts=int(limit) if limit.isdigit() else None,
                max_checks=int(checks) if checks.isdigit() else None,
            )

        try:
            await run_in_threadpool(work)
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return RedirectResponse("/dashboard", status_code=303)

    async def gradebook_csv(self, request: Request) -> Response:
        if self._instructor(request) is None:
            return RedirectResponse("/login", status_code=303)
        fmt = request.query_params.get("format", "canvas")
        fmt = fmt if fmt in ("canvas", "moodle") else "canvas"

        def work() -> str:
            with self.app.state.lock, tempfile.TemporaryDirectory() as tmp:
                course = self.app.state.courses.course(request.path_params["course"])
                out = Path(tmp) / "grades.csv"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    course.gradebook(out=out, format=fmt)  # type: ignore[arg-type]
                return out.read_text(encoding="utf-8")

        try:
            text = await run_in_threadpool(work)
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return Response(
            text,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="grades-{fmt}.csv"'},
        )

    async def attempt(self, request: Request) -> Response:
        who = self._instructor(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)
        p = request.path_params

        def build() -> dict[str, Any]:
            with self.app.state.lock:
                return attempt_view(self.app, p["course"], p["student"], p["exercise"])

        try:
            view = await run_in_threadpool(build)
        except SandboxError as exc:
            return await self.home(request, error=str(exc))
        return self.app.render(
            "attempt.html", title=f"{p['exercise']} — {p['student']}", user=who[0], **view
        )


def dashboard_view(app: ServerApp) -> dict[str, Any]:
    """Courses with their gradebooks, the catalogue, and the clinic's BTG review queue."""
    from ehr_sandbox.exercises.registry import catalog

    courses = []
    for slug, course in sorted(app.state.courses.courses.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = course.gradebook()  # what counts, as the CSV has it: late work left out
            with_late = course.gradebook(include_late=True)
        assignments = [
            {
                "id": a.exercise_id,
                "title": a.title,
                "due": a.due.date().isoformat() if a.due else "",
                "max_attempts": a.max_attempts,
                "max_checks": a.max_checks,
            }
            for a in course.assignments.values()
        ]
        students = []
        for sid in course.students:
            grades, late, checks = {}, {}, {}
            for a in assignments:
                grades[a["id"]] = _points(book, sid, a["id"])
                late[a["id"]] = (
                    _points(with_late, sid, a["id"])
                    if any(r.late and not r.flag for r in course.results(sid, a["id"]))
                    else ""
                )
                checks[a["id"]] = course.checks_used(sid, a["id"])
            students.append({"id": sid, "grades": grades, "late": late, "checks": checks})
        courses.append(
            {"slug": slug, "name": course.name, "assignments": assignments, "students": students}
        )
    queue = app.state.sandbox.grader_session().btg_review_queue()  # through the door
    btg = [
        {
            "at": q.get("at", ""),
            "user": q.get("user", ""),
            "patient": q.get("patient", ""),
            "reason": q.get("reason", ""),
        }
        for q in queue
    ]
    cat = catalog()
    entries = (
        [{"id": r["id"], "title": r["title"]} for r in cat.to_dict("records")]
        if hasattr(cat, "to_dict")
        else list(cat)
    )
    return {"courses": courses, "catalog": entries, "btg": btg}


def attempt_view(app: ServerApp, slug: str, student: str, exercise_id: str) -> dict[str, Any]:
    """A student's variant (regenerated from the course secret), submissions (with the full
    feedback, which the student is not shown item by item), practice checks and timeline."""
    course = app.state.courses.course(slug)
    hosted = app.state.courses.for_review(slug, student, exercise_id)
    timeline: list[dict[str, str]] = []
    if hosted is not None:  # the variant as the student has it (from the server's record)
        with hosted.handle.lock:
            instructions = hosted.attempt.instructions
            facts = sorted((k, _short(v)) for k, v in hosted.attempt.facts.items())
            events = hosted.attempt.sandbox.grader_session().audit_events()
        timeline = [_event_row(e) for e in events if _actor(e) != "system"]
    else:  # not started yet: regenerate the variant from the course secret
        review = course.review(student, exercise_id)
        try:
            instructions = review.instructions
            facts = sorted((k, _short(v)) for k, v in review.facts.items())
        finally:
            review.sandbox.close()
    results = [
        {**r.to_dict(), "feedback": r.feedback} for r in course.results(student, exercise_id)
    ]
    return {
        "student": student,
        "instructions": instructions,
        "facts": facts,
        "results": results,
        "timeline": timeline,
        "started": hosted is not None,
        "checks": course.checks_used(student, exercise_id),
    }


def _points(book: Any, student: str, exercise_id: str) -> str:
    """A gradebook cell as text ("—" when nothing counts yet).

    >>> import pandas as pd
    >>> book = pd.DataFrame({"x": [8.0, float("nan")]}, index=["ann", "bob"])
    >>> _points(book, "ann", "x"), _points(book, "bob", "x"), _points(book, "ann", "y")
    ('8', '—', '—')
    """
    value = book.loc[student, exercise_id] if exercise_id in book.columns else float("nan")
    return "—" if isinstance(value, float) and math.isnan(value) else f"{value:g}"


def _actor(event: dict[str, Any]) -> str:
    agents = event.get("agent") or [{}]
    return str(((agents[0].get("who") or {}).get("identifier") or {}).get("value", ""))


def _event_row(event: dict[str, Any]) -> dict[str, str]:
    subtype = (event.get("subtype") or [{}])[0].get("code", "")
    what = []
    for entity in event.get("entity", []):
        ref = (entity.get("what") or {}).get("reference")
        if ref:
            what.append(ref)
        elif entity.get("query"):
            with contextlib.suppress(ValueError):
                what.append(base64.b64decode(entity["query"]).decode("utf-8", "replace"))
    outcome = {"0": "ok", "4": "refused", "8": "failed", "12": "failed"}.get(
        str(event.get("outcome")), ""
    )
    return {
        "when": str(event.get("recorded", "")),
        "who": _actor(event),
        "action": subtype or str(event.get("action", "")),
        "what": ", ".join(what)[:200],
        "outcome": outcome,
    }


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."
