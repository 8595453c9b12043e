"""A minimal stand-in sandbox for testing the exercise framework without generating a clinic.

It honours the parts of the Sandbox contract the framework touches: ``state``, ``users``,
``user``, ``login``, ``record_framework_action``, ``system_session`` (``change_mark``,
``changes_since``, ``audit_action``),
``copy``, ``close``, ``clock.peek`` and ``audit`` (``verify``, ``count``, ``events``).
Audit events are kept in the FHIR AuditEvent shape the collateral criterion reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ehr_sandbox.exercises import Check, Criterion, Exercise, Expect, Hint, Solution


@dataclass(frozen=True)
class FakeUser:
    username: str
    role: str
    practitioner_id: str


@dataclass(frozen=True)
class FakeVerdict:
    ok: bool
    first_bad: int | None = None
    reason: str = ""


class FakeAudit:
    def __init__(self) -> None:
        self.tampered = False
        self.log: list[dict[str, Any]] = []

    def verify(self) -> FakeVerdict:
        return FakeVerdict(False, 3, "hash mismatch") if self.tampered else FakeVerdict(True)

    def count(self) -> int:
        return len(self.log)

    def append(self, username: str, kind: str, detail: str | None = None) -> None:
        event = {
            "id": str(len(self.log) + 1),
            "subtype": [{"code": kind}],
            "outcome": "0",
            "agent": [{"requestor": True, "altId": username}],
        }
        if detail:
            event["outcomeDesc"] = detail
        self.log.append(event)

    def events(self, *, user: str | None = None, **_: Any) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(e) for e in self.log if user is None or e["agent"][0]["altId"] == user
        ]


class FakeClock:
    def peek(self) -> datetime:
        return datetime(2026, 1, 1, 8, tzinfo=UTC)


class FakeSession:
    def __init__(self, sandbox: FakeSandbox, username: str) -> None:
        self.sandbox = sandbox
        self.username = username

    def say(self, text: str) -> None:
        self.sandbox.data["greeting"] = text
        self.sandbox.data["by"] = self.username
        self.sandbox.audit.append(self.username, "greet", text)

    def audit_action(self, kind: str, **kw: Any) -> None:
        self.sandbox.audit.append(self.username, kind, kw.get("detail"))

    def change_mark(self) -> int:
        return 0

    def changes_since(self, mark: int, *, until: int | None = None) -> list[dict[str, Any]]:
        return []

    def read(self, *a: Any) -> dict[str, Any]:
        return {}


class FakeSandbox:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.audit = FakeAudit()
        self.clock = FakeClock()
        self.users = [FakeUser("ma.garcia", "medical_assistant", "prac-ma")]
        self.closed = False

    def user(self, username: str) -> FakeUser:
        return next(u for u in self.users if u.username == username)

    def login(self, username: str) -> FakeSession:
        return FakeSession(self, username)

    def system_session(self, purpose: str = "HOPERAT") -> FakeSession:
        return FakeSession(self, "system")

    def record_framework_action(self, username: str, kind: str, *, detail: Any = None) -> None:
        self.audit.append(username, kind, detail)

    def copy(self) -> FakeSandbox:
        other = FakeSandbox()
        other.state = copy.deepcopy(self.state)
        other.data = copy.deepcopy(self.data)
        other.audit.log = copy.deepcopy(self.audit.log)
        return other

    def close(self) -> None:
        self.closed = True


NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Donald")


def _setup(sandbox: FakeSandbox, variant: Any) -> dict[str, Any]:
    name = variant.pick(NAMES, salt="name")
    sandbox.data["visitor"] = name
    return {"name": name, "times": variant.rng().randint(1, 9)}


def _greeted(ctx: Any) -> Check:
    want = f"Hello {ctx.facts['name']}"
    got = ctx.sandbox.data.get("greeting")
    return Check(
        got == want, repr(got), repr(want), "" if got == want else "greet the visitor by name"
    )


def _as_self(ctx: Any) -> tuple[bool, str, str]:
    by = ctx.sandbox.data.get("by")
    return by == ctx.user.username, str(by), ctx.user.username


def greet_exercise(exercise_id: str = "demo/greet") -> Exercise:
    """A two-criterion exercise whose whole world is ``sandbox.data``."""
    return Exercise(
        id=exercise_id,
        title="Greet the visitor",
        topic="demo",
        competencies=("V.P.11", "X.P.3"),
        minutes=2,
        role="ma.garcia",
        setup=_setup,
        expects=(Expect("greet"),),
        instructions="Greet **{name}** <script>alert(1)</script>.",
        criteria=(
            Criterion(
                "greeted by name", 2, _greeted, "Patients are addressed by name (MAERB V.P.11)."
            ),
            Criterion(
                "greeted as yourself", 1, _as_self, "Actions are attributable (HIPAA 164.312(b))."
            ),
        ),
        hints=(Hint("Use att.session.say(...)."), Hint("Say 'Hello <name>'.", cost=1)),
        solution=Solution(lambda att: att.session.say(f"Hello {att.facts['name']}")),
        wrong_solutions={
            "anonymous": (
                lambda att: att.session.say("Hello you"),
                "greeted by name",
                "greet the visitor by name",
            )
        },
    )
