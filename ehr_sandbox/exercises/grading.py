"""What a criterion's check sees: the attempt's record state, Provenance and the acting user.

The grader reads through a Session (the only door to patient data), logged in as the
exercise's grader user, and offers small helpers for the questions graders keep asking:
who wrote this version, through which operation, with which reason.

>>> sorted(codes({"coding": [{"system": "s", "code": "a"}, {"code": "b"}]}))
['a', 'b']
>>> split_ref("Observation/1/_history/2")
('Observation', '1', '2')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ehr_sandbox.errors import NotFound, SandboxError

__all__ = ["GradingContext", "codes", "provenance_reason", "split_ref", "text_of"]


def split_ref(ref: str) -> tuple[str, str, str | None]:
    """Split ``Type/id`` or ``Type/id/_history/v`` into (type, id, version or None).

    >>> split_ref("Patient/p1")
    ('Patient', 'p1', None)
    """
    parts = ref.split("/")
    if len(parts) == 2:
        return parts[0], parts[1], None
    if len(parts) == 4 and parts[2] == "_history":
        return parts[0], parts[1], parts[3]
    raise ValueError(f"reference: expected 'Type/id' or 'Type/id/_history/v' (found {ref!r})")


def codes(concept: Mapping[str, Any] | list[Any] | None) -> set[str]:
    """Every ``code`` in a CodeableConcept (or a list of them / of Codings).

    >>> sorted(codes([{"coding": [{"code": "x"}]}, {"code": "y"}]))
    ['x', 'y']
    """
    out: set[str] = set()
    if concept is None:
        return out
    items = concept if isinstance(concept, list) else [concept]
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "code" in item and isinstance(item["code"], str):
            out.add(item["code"])
        for coding in item.get("coding", []) or []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                out.add(coding["code"])
    return out


def text_of(value: Any) -> str:
    """All human-readable text inside a FHIR fragment, joined (for "does it mention X").

    >>> text_of({"text": "Wrong patient", "coding": [{"display": "error"}]})
    'Wrong patient error'
    """
    parts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for key, sub in v.items():
                if (
                    key in ("text", "display", "contentString", "valueString", "description")
                    and isinstance(sub, str)
                    or key == "div"
                    and isinstance(sub, str)
                ):
                    parts.append(sub)
                else:
                    walk(sub)
        elif isinstance(v, list):
            for sub in v:
                walk(sub)

    walk(value)
    return " ".join(p for p in parts if p)


def provenance_reason(prov: Mapping[str, Any]) -> str:
    """The reason a Provenance records (text and displays of ``reason``), or ''.

    >>> provenance_reason({"reason": [{"text": "wrong patient"}]})
    'wrong patient'
    """
    return text_of(prov.get("reason", [])).strip()


@dataclass
class GradingContext:
    """Read access to the attempt's sandbox for criterion checks.

    ``facts`` are the variant's facts from setup; ``user`` is the sandbox user the student
    works as (``username``, ``practitioner_id``); ``session`` is the grader's session.
    """

    sandbox: Any
    session: Any
    facts: dict[str, Any]
    user: Any
    student: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def practitioner_ref(self) -> str:
        """``Practitioner/<id>`` of the acting user (Provenance.agent.who must point here)."""
        return f"Practitioner/{self.user.practitioner_id}"

    @property
    def now(self) -> datetime:
        """The sandbox clock (grading never looks at the wall clock)."""
        clock = self.sandbox.clock
        return clock.peek() if hasattr(clock, "peek") else clock()

    def read(self, ref: str) -> dict[str, Any] | None:
        """The current version of ``ref``, or None when it is absent (or hidden)."""
        rtype, rid, _ = split_ref(ref)
        try:
            return self.session.read(rtype, rid)
        except NotFound:
            return None

    def history(self, ref: str) -> list[dict[str, Any]]:
        """Every version of ``ref``, newest first ([] when absent)."""
        rtype, rid, _ = split_ref(ref)
        try:
            return list(self.session.history(rtype, rid))
        except NotFound:
            return []

    def search(self, resource_type: str, **params: Any) -> list[dict[str, Any]]:
        """Search results as a list (params as in ``Session.search``)."""
        found = self.session.search(resource_type, params={k: str(v) for k, v in params.items()})
        return list(found.fetch() if hasattr(found, "fetch") else found)

    def all(self, resource_type: str) -> list[dict[str, Any]]:
        """Every resource of a type the grader may read (graders filter in Python)."""
        every = getattr(self.session, "resources", None)
        if callable(every):
            return list(every(resource_type))
        return self.search(resource_type)

    def provenance(self, ref: str) -> list[dict[str, Any]]:
        """Provenance records whose target is ``ref`` (any version), oldest first."""
        try:
            records = list(self.session.provenance(ref))
        except (NotFound, SandboxError):
            return []
        return sorted(records, key=lambda p: (p.get("recorded", ""), p.get("id", "")))

    def provenance_of_version(self, ref: str, version: str) -> list[dict[str, Any]]:
        """Provenance records whose target is exactly ``ref/_history/version``."""
        want = f"{ref}/_history/{version}"
        return [
            p
            for p in self.provenance(ref)
            if any(t.get("reference") == want for t in p.get("target", []))
        ]

    def by_user(self, prov: Mapping[str, Any]) -> bool:
        """True when the Provenance's agent is the attempt's user."""
        return any(
            (a.get("who") or {}).get("reference") == self.practitioner_ref
            for a in prov.get("agent", [])
        )

    def audit_events(self, **filters: Any) -> list[dict[str, Any]]:
        """AuditEvents of the attempt's sandbox (for graders of access and privacy exercises)."""
        return list(self.sandbox.audit.events(**filters))

    @staticmethod
    def activity(prov: Mapping[str, Any]) -> set[str]:
        """The activity codes of a Provenance (e.g. ``{'entered-in-error'}``)."""
        return codes(prov.get("activity"))
