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
from synthetic.systems import CVX, HCPCS, ICD10CM, LOINC, RXNORM, SNOMED

__all__ = [
    "GradingContext",
    "SetupMark",
    "codes",
    "event_detail",
    "interpretation_in",
    "misfiled",
    "event_kind",
    "provenance_reason",
    "split_ref",
    "text_of",
]


@dataclass(frozen=True)
class SetupMark:
    """Where the record stood when setup finished: audit sequence and history position.

    Everything after it is the student's doing (and the grader's reads).

    >>> SetupMark(12, 3400).audit_seq
    12
    """

    audit_seq: int
    versions: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {"audit_seq": self.audit_seq, "versions": self.versions}


def event_kind(event: Mapping[str, Any]) -> str:
    """The interaction of an AuditEvent (``read``, ``create``, ``disclose``, ...).

    >>> event_kind({"subtype": [{"code": "disclose"}]})
    'disclose'
    """
    for coding in event.get("subtype", []) or []:
        if isinstance(coding, Mapping) and coding.get("code"):
            return str(coding["code"])
    return ""


def event_detail(event: Mapping[str, Any]) -> Any:
    """An AuditEvent's detail: parsed when it is JSON, else the text ('' when none).

    >>> event_detail({"outcomeDesc": '{"recipient": "Organization/x"}'})["recipient"]
    'Organization/x'
    >>> event_detail({"outcomeDesc": "unconscious"})
    'unconscious'
    """
    import json

    text = event.get("outcomeDesc", "")
    if isinstance(text, str) and text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def split_ref(ref: str) -> tuple[str, str, str | None]:
    """Split ``Type/id`` or ``Type/id/_history/v`` into (type, id, version or None).

    >>> split_ref("Patient/p1")
    ('Patient', 'p1', None)
    """
    from ehr_sandbox.references import split_relative

    parts = split_relative(ref)
    if parts is None:
        raise ValueError(f"reference: expected 'Type/id' or 'Type/id/_history/v' (found {ref!r})")
    return parts


def misfiled(coding: Mapping[str, Any]) -> bool:
    """True when a Coding files a code of a code system the sandbox ships (LOINC, RxNorm,
    ICD-10-CM, ...) under another system the EHR cannot check: the same code in the wrong code
    system is not that code (an RxNorm drug under an NDC system, a LOINC test under a made-up
    URI). Codings in a shipped system were checked when written; codings without a system are
    the sandbox's own short codes.

    >>> misfiled({"system": "http://hl7.org/fhir/sid/ndc", "code": "314076"})
    True
    >>> misfiled({"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"})
    False
    >>> misfiled({"system": "http://example.org/local", "code": "my-local-code"})
    False
    """
    from ehr_sandbox.validation.content_adapter import default_lookups

    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return False
    sets = default_lookups().code_sets
    if sets.checks(system):
        return False
    return any(sets.checks(s) and sets.contains(s, code) for s in _EXTERNAL)


_EXTERNAL = (
    LOINC,
    SNOMED,
    RXNORM,
    CVX,
    ICD10CM,
    HCPCS,
)
"""The published terminologies whose codes are looked for under the wrong system (the
sandbox's own systems and small HL7 value sets share short codes with other systems)."""


def codes(concept: Mapping[str, Any] | list[Any] | None) -> set[str]:
    """Every ``code`` in a CodeableConcept (or a list of them / of Codings); a code filed
    under the wrong code system (see :func:`misfiled`) is not counted.

    >>> sorted(codes([{"coding": [{"code": "x"}]}, {"code": "y"}]))
    ['x', 'y']
    >>> codes({"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "314076"}]})
    set()
    """
    out: set[str] = set()
    if concept is None:
        return out
    items = concept if isinstance(concept, list) else [concept]
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "code" in item and isinstance(item["code"], str) and not misfiled(item):
            out.add(item["code"])
        for coding in item.get("coding", []) or []:
            if (
                isinstance(coding, Mapping)
                and isinstance(coding.get("code"), str)
                and not misfiled(coding)
            ):
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


def interpretation_in(resource: Mapping[str, Any]) -> list[str]:
    """Where a record states an interpretation, anywhere in it: an ``interpretation`` code (on
    the record or a component), a ``conclusion`` or ``conclusionCode``, or free text (notes,
    comments, values, message payloads) with phrases that interpret, diagnose or reassure.
    Scope-of-practice graders use it so a reading is not hidden in another field.

    >>> interpretation_in({"resourceType": "Observation", "valueQuantity": {"value": 72}})
    []
    >>> interpretation_in({"interpretation": [{"coding": [{"code": "N"}]}], "note": [{"text": "Normal sinus rhythm"}]})
    ['interpretation N', "text 'normal'"]
    """
    from ehr_sandbox.workflows.portal import interpretive_phrases

    found: list[str] = []
    texts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for key, sub in v.items():
                if key == "interpretation":
                    found.extend(f"interpretation {c}" for c in sorted(codes(sub)) or ["(text)"])
                elif key in ("conclusion", "conclusionCode") and sub:
                    found.append(key)
                    walk(sub)
                elif key in ("text", "valueString", "contentString", "comment") and isinstance(
                    sub, str
                ):
                    texts.append(sub)
                else:
                    walk(sub)
        elif isinstance(v, list):
            for sub in v:
                walk(sub)

    walk({k: x for k, x in resource.items() if k != "text"})  # not the generated narrative
    for phrase in interpretive_phrases(" ".join(texts)):
        found.append(f"text {phrase!r}")
    return found


def provenance_reason(prov: Mapping[str, Any]) -> str:
    """The reason a Provenance records (text and displays of ``reason``), or ''.

    >>> provenance_reason({"reason": [{"text": "wrong patient"}]})
    'wrong patient'
    """
    return text_of(prov.get("reason", [])).strip()


HAND_IN_KIND = "submit-report"
"""Audit action kind of a student's hand-in (an answer written as an audited action: the
exercises' one writer is ``builtin.common.record_hand_in``). A criterion that reads these
events grades the student's own answer, which a classroom server's feedback must not confirm
item by item (:attr:`GradingContext.read_hand_in`)."""


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
    answer: dict[str, Any] = field(default_factory=dict)
    mark: SetupMark | None = None
    protect: tuple[str, ...] = ()
    exercise: Any = None
    budget: Mapping[str, int] | None = None
    read_hand_in: bool = False
    """Set when a check reads the student's hand-ins (:data:`HAND_IN_KIND` events); the
    grader resets it before each criterion, so a criterion's result says whether its feedback
    is about the student's answer."""

    def value(self, key: str) -> Any:
        """A value of the scenario by key: the answer first, then the public facts.

        >>> GradingContext(None, None, {"a": 1}, None, "s", answer={"b": 2}).value("b")
        2
        """
        if key in self.answer:
            return self.answer[key]
        if key in self.facts:
            return self.facts[key]
        raise KeyError(key)

    def events(self, kind: str | None = None, *, since_setup: bool = True) -> list[dict[str, Any]]:
        """Audit events after setup (all when ``since_setup=False``), optionally of one kind.

        ``detail`` (parsed JSON or text) and ``kind`` are added to each event for convenience.
        """
        if kind == HAND_IN_KIND:
            self.read_hand_in = True
        start = self.mark.audit_seq if (since_setup and self.mark is not None) else 0
        out = []
        for e in self.sandbox.audit.events():
            if int(e.get("id", 0)) <= start:
                continue
            k = event_kind(e)
            if kind is not None and k != kind:
                continue
            out.append({**e, "kind": k, "detail": event_detail(e)})
        return out

    def versions_since_setup(self, ref: str | None = None) -> list[dict[str, Any]]:
        """Every resource version written after setup (of ``ref`` only, when given), oldest
        first: history, not only current state (a wrong write later "repaired" is still here)."""
        mark = self.mark.versions if self.mark is not None else 0
        found = self.sandbox.system_session().changes_since(mark)
        if ref is None:
            return found
        rtype, rid, _ = split_ref(ref)
        return [v for v in found if v.get("resourceType") == rtype and v.get("id") == rid]

    @staticmethod
    def written_at(version: Mapping[str, Any]) -> datetime | None:
        """When the EHR wrote this version (``meta.lastUpdated``, stamped by the EHR's clock):
        graders time work by this, never by a time the author typed (``sent``, ``authoredOn``,
        ``effectiveDateTime`` can be backdated by hand).

        >>> GradingContext.written_at({"sent": "2026-01-01T08:00:00+00:00",
        ...                            "meta": {"lastUpdated": "2026-01-02T09:30:00.000+00:00"}}).day
        2
        >>> GradingContext.written_at({}) is None
        True
        """
        stamp = (version.get("meta") or {}).get("lastUpdated")
        if not isinstance(stamp, str):
            return None
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None

    def read_before(self, patient_id: str, ref: str) -> bool:
        """True when the acting user looked at ``patient_id``'s record (a read, search or
        report the audit trail shows) after setup and before the first audited write of ``ref``.

        Evidence that a check was done, for graders of workflows whose tag a student can type
        (``meta.tag`` is written by whoever writes the record; the audit trail is not).
        """
        from ehr_sandbox.audit import event_patient, event_username

        user = getattr(self.user, "username", None)
        for e in self.events():
            if event_username(e) != user or e.get("outcome") not in ("0", None):
                continue
            what = [(x.get("what") or {}).get("reference", "") for x in e.get("entity", []) or []]
            if e["kind"] in ("create", "update") and any(
                w.startswith(f"{ref}/") or w == ref for w in what
            ):
                return False
            if e["kind"] in ("read", "search", "search-type", "report", "vread") and (
                event_patient(e) == patient_id
            ):
                return True
        return False

    def identified_before(self, patient_id: str) -> bool:
        """True when the acting user identified ``patient_id`` with two matching identifiers
        (the audit event :func:`ehr_sandbox.workflows.care.identify` records) after setup and
        before their first audited write about that patient; a mismatch recorded after a
        match undoes it. With no such write, whether the patient was identified at all.

        The audit trail, not the record, is the evidence: a write names no identification,
        and a tag typed into it proves none.

        >>> from types import SimpleNamespace as NS
        >>> def ev(kind, detail="", pid="p1"):
        ...     return {"subtype": [{"code": kind}], "outcome": "0", "outcomeDesc": detail,
        ...             "agent": [{"requestor": True, "altId": "ma"}],
        ...             "entity": [{"role": {"code": "1"}, "what": {"reference": f"Patient/{pid}"}}]}
        >>> ok = '{"checked": {"birth_date": true, "name": true}, "matched": true}'
        >>> ctx = GradingContext(None, None, {}, NS(username="ma"), "s")
        >>> ctx.events = lambda: [ev("patient-identify", ok), ev("create")]
        >>> ctx.identified_before("p1")
        True
        >>> ctx.events = lambda: [ev("create"), ev("patient-identify", ok)]
        >>> ctx.identified_before("p1")
        False
        """
        from ehr_sandbox.audit import event_patient, event_username
        from ehr_sandbox.workflows.care import identification

        user = getattr(self.user, "username", None)
        identified = False
        for e in self.events():
            if event_username(e) != user or event_patient(e) != patient_id:
                continue
            found = identification(e)
            if found is not None:
                identified = bool(found["matched"])
            elif event_kind(e) in ("create", "update", "delete", "patch") and e.get("outcome") in (
                "0",
                None,
            ):
                return identified
        return identified

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
