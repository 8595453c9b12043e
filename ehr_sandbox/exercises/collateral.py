"""The framework's "no collateral damage" criterion, added to every exercise.

Each exercise declares the changes it expects (:class:`~ehr_sandbox.exercises.model.Expect`).
This criterion diffs against that declaration:

- every resource version written since setup (the store's history, not the current state: a
  wrong write that was later repaired still counts), by operation (Provenance activity) and
  patient; a version with no audit entry was written around the EHR;
- every audited action since setup that is not a read (disclosures, exports, de-identified
  exports, break-the-glass, signatures, rights changes, ...);
- anything at all (even a read) done under a login other than the exercise's role and actors;
- any write to a record the answer depends on (the scenario's ``protect`` list);
- any record created twice: a second record with the same content as one created since setup
  (same type, patient, codes, values and references; only ids and time stamps differ) is
  duplicate documentation, even where the exercise expects any number of records of that type;
  likewise an audited action done twice alike (the same disclosure to the same recipient);
- more records of a type on a patient than the task needs: the framework runs the reference
  solution on a copy of the record as setup left it and counts what it creates per type and
  patient (the scenario's ``budget``); an extra record, even a different one of an expected
  type (a second, wrong reading), is collateral damage; so is a change to a record that
  existed at setup and that the reference solution leaves alone (another slot, device, room or
  account than the task's, even where the exercise expects changes of that type).

Each unexpected item is named in the feedback.

>>> c = collateral_criterion(2)
>>> c.name, c.points
('no collateral damage', 2)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ehr_sandbox.audit import event_patient, event_username
from ehr_sandbox.exercises.attempt import CHANGED, budget_patient
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import COLLATERAL, Check, Criterion, Expect
from ehr_sandbox.session import FRAMEWORK_AUDIT_KINDS
from ehr_sandbox.workflows.care import IDENTIFY_KIND

__all__ = [
    "Change",
    "changes_since_setup",
    "collateral_criterion",
    "content_signature",
    "duplicate_creates",
    "unexpected_changes",
]

READS = frozenset(
    {
        "read",
        "exists",
        "vread",
        "search",
        "search-type",
        "search-system",
        "history",
        "history-instance",
        "history-type",
        "history-system",
        "report",
        "audit-read",
        "capabilities",
        "break-glass-stop",
        "break-glass-end",
        IDENTIFY_KIND,
    }
)
"""Interactions that change nothing (reads by someone else's login still count); a patient
identification (two identifiers checked against the chart) is one: it writes and releases
nothing."""

BOOKKEEPING = FRAMEWORK_AUDIT_KINDS
"""The exercise framework's own audit entries (only the framework records them)."""

RESUBMITTABLE = frozenset({"submit-report"})
"""Actions that may be repeated with the same content (handing a report in again replaces it);
any other audited action done twice alike (the same disclosure, export, break-the-glass) is a
second release or access, not the same one."""

WRITES = frozenset({"create", "update", "patch", "delete"})

WHY = (
    "A task is done right only if nothing else was changed, disclosed or done under someone "
    "else's login: every extra write, release or look-up is a risk to patients and a HIPAA "
    "violation to answer for (164.502(b) minimum necessary, 164.312(b) audit controls, 164.308(a)(5) "
    "unique user identification)."
)


@dataclass(frozen=True)
class Change:
    """One thing that happened after setup: a written version or an audited action.

    >>> print(Change("Observation", "Observation/o1", "2", "p1", "entered-in-error", "ma.garcia").describe())
    Observation/o1 version 2 (entered-in-error) on patient p1 by ma.garcia
    """

    kind: str
    ref: str
    version: str
    patient: str
    op: str
    user: str
    recipient: str = ""
    audited: bool = True
    detail: str = ""
    name: str = ""
    """How feedback names an action (its kind when empty)."""

    def describe(self, label: str = "") -> str:
        """Human-readable description for feedback."""
        who = f" by {self.user}" if self.user else ""
        pat = f" on patient {label or self.patient}" if self.patient else ""
        to = f" to {self.recipient}" if self.recipient else ""
        if self.version:
            return f"{self.ref} version {self.version} ({self.op}){pat}{who}"
        what = f" {self.ref}" if self.ref else ""
        return f"{self.name or self.kind}{what}{pat}{to}{who}"


def _action_name(event: Mapping[str, Any], kind: str) -> str:
    """How feedback names an audited action: a coded one (a DICOM emergency override) by its
    display with the code, any other by its kind.

    >>> _action_name({"subtype": [{"code": "110127", "display": "Emergency Override Started"}]}, "110127")
    'Emergency Override Started (110127)'
    >>> _action_name({"subtype": [{"code": "disclose"}]}, "disclose")
    'disclose'
    """
    for coding in event.get("subtype", []) or []:
        if coding.get("code") == kind and kind.isdigit() and coding.get("display"):
            return f"{coding['display']} ({kind})"
    return kind


def _event_ref(event: dict[str, Any]) -> tuple[str, str]:
    for entity in event.get("entity", []) or []:
        if (entity.get("role") or {}).get("code") == "4":
            ref = (entity.get("what") or {}).get("reference", "")
            if "/_history/" in ref:
                base, version = ref.split("/_history/", 1)
                return base, version
            return ref, ""
    return "", ""


def changes_since_setup(ctx: GradingContext) -> tuple[list[Change], list[Change]]:
    """(writes, other actions) after setup, with the users who did them."""
    from ehr_sandbox.access import patient_of

    events = ctx.events()
    written_by: dict[tuple[str, str], str] = {}
    actions: list[Change] = []
    for e in events:
        if e.get("outcome") not in ("0", None):
            continue  # refused: nothing happened
        kind, user = e["kind"], (event_username(e) or "")
        ref, version = _event_ref(e)
        if kind in WRITES:
            written_by[(ref, version)] = user
            continue
        detail = e.get("detail")
        recipient = detail.get("recipient", "") if isinstance(detail, dict) else ""
        actions.append(
            Change(
                kind,
                ref,
                version,
                (event_patient(e) or ""),
                kind,
                user,
                str(recipient or ""),
                detail=content_signature(detail) if isinstance(detail, dict) else str(detail or ""),
                name=_action_name(e, kind),
            )
        )
    versions = ctx.versions_since_setup()
    activity: dict[tuple[str, str], str] = {}
    for v in versions:
        if v.get("resourceType") == "Provenance":
            act = sorted(GradingContext.activity(v))
            for t in v.get("target", []) or []:
                tref = t.get("reference", "")
                if "/_history/" in tref:
                    base, ver = tref.split("/_history/", 1)
                    activity[(base, ver)] = _activity_name(act)
    writes: list[Change] = []
    for v in versions:
        rtype = v.get("resourceType", "")
        if rtype == "Provenance":
            continue
        ref, ver = f"{rtype}/{v.get('id')}", str((v.get("meta") or {}).get("versionId", ""))
        user = written_by.get((ref, ver))
        op = activity.get((ref, ver), "create" if ver == "1" else "update")
        writes.append(
            Change(rtype, ref, ver, patient_of(v) or "", op, user or "", audited=user is not None)
        )
    return writes, actions


_STAMP = re.compile(r"^\d{4}-\d{2}(-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?)?$")
_VOLATILE = frozenset({"id", "meta", "text"})
"""Top-level keys the EHR fills in (id, version meta, generated narrative)."""


def content_signature(resource: dict[str, Any], new_refs: Mapping[str, str] | None = None) -> str:
    """What a record says, without what the EHR stamps on it: ids, meta, narrative and time
    stamps are left out, and a reference to a record written since setup is replaced by what
    that record says (``new_refs``: ref -> its own signature), not its fresh id. Two records
    created since setup with the same signature are one record documented twice.

    >>> a = {"resourceType": "Observation", "id": "1", "subject": {"reference": "Patient/p"},
    ...      "effectiveDateTime": "2026-01-01T08:00:00+00:00", "valueQuantity": {"value": 71}}
    >>> b = {**a, "id": "2", "effectiveDateTime": "2026-01-01T08:00:05+00:00"}
    >>> content_signature(a) == content_signature(b)
    True
    >>> content_signature(a) == content_signature({**b, "valueQuantity": {"value": 72}})
    False
    """

    refs = new_refs or {}

    def walk(v: Any, top: bool = False) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, sub in v.items():
                if top and k in _VOLATILE:
                    continue
                if k == "reference" and isinstance(sub, str) and sub in refs:
                    sub = sub.split("/", 1)[0] + "/(new:" + refs[sub] + ")"
                out[k] = walk(sub)
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and _STAMP.match(v):
            return "(time)"
        return v

    return json.dumps(walk(resource, top=True), sort_keys=True, separators=(",", ":"))


def duplicate_creates(versions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(duplicate, original) refs among the records created in ``versions`` (see
    :func:`content_signature`); Provenance is the EHR's own and not compared.

    >>> o = {"resourceType": "Observation", "meta": {"versionId": "1"}, "code": {"text": "HR"}}
    >>> duplicate_creates([{**o, "id": "a"}, {**o, "id": "b"}, {**o, "id": "c", "code": {"text": "T"}}])
    [('Observation/b', 'Observation/a')]
    """
    created = [
        v
        for v in versions
        if v.get("resourceType") != "Provenance"
        and str((v.get("meta") or {}).get("versionId", "")) == "1"
    ]
    # a reference to a new record stands for what that record says (one level deep): a second
    # batch whose message points at its own copy of the reading is still the same message, but
    # two eligibility checks of two different new plans are two checks
    unnamed = {f"{v.get('resourceType')}/{v.get('id')}": "" for v in created}
    level0 = {
        f"{v.get('resourceType')}/{v.get('id')}": hashlib.sha256(
            content_signature(v, unnamed).encode()
        ).hexdigest()[:16]
        for v in created
    }
    first: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for v in created:
        ref = f"{v.get('resourceType')}/{v.get('id')}"
        sig = content_signature(v, level0)
        if sig in first:
            out.append((ref, first[sig]))
        else:
            first[sig] = ref
    return out


def _activity_name(codes: list[str]) -> str:
    names = {"CREATE": "create", "UPDATE": "update", "DELETE": "delete"}
    for c in codes:
        if c in names:
            return names[c]
    return codes[0] if codes else "update"


def _values(ctx: GradingContext, keys: Iterable[str] | None) -> set[str] | None:
    if keys is None or "*" in keys:
        return None
    out: set[str] = set()
    for key in keys:
        try:
            value = ctx.value(key)
        except KeyError:
            continue
        for v in value if isinstance(value, list | tuple) else [value]:
            text = str(v)
            out.add(text)
            if text.startswith("Patient/"):
                out.add(text.split("/", 1)[1])
    return out


def _actors(ctx: GradingContext, actors: Iterable[str]) -> set[str]:
    """Usernames allowed besides the role; ``patient:<key>`` is the portal/kiosk login of the
    patient whose id is the scenario value ``<key>``."""
    out: set[str] = set()
    for actor in actors:
        if actor.startswith("patient:"):
            for pid in _values(ctx, (actor.split(":", 1)[1],)) or set():
                if not pid.startswith("Patient/"):
                    out.add(f"patient/{pid}")
        else:
            out.add(actor)
    return out


def _matches(ctx: GradingContext, expect: Expect, change: Change) -> bool:
    if expect.what != change.kind:
        return False
    if expect.ops is not None and change.op not in expect.ops:
        return False
    patients = _values(ctx, expect.patients)
    if patients is not None and change.patient and change.patient not in patients:
        return False
    recipients = _values(ctx, expect.recipients)
    return recipients is None or not change.recipient or change.recipient in recipients


def unexpected_changes(ctx: GradingContext) -> list[str]:
    """Descriptions of everything done since setup that the exercise did not declare."""
    ex = ctx.exercise
    role = getattr(ex, "role", ctx.user.username if ctx.user else "")
    allowed_users = {role, *_actors(ctx, getattr(ex, "actors", ()))}
    expects: tuple[Expect, ...] = tuple(getattr(ex, "expects", ()))
    writes, actions = changes_since_setup(ctx)
    used: Counter[int] = Counter()
    problems: list[str] = []
    labels: dict[str, str] = {}

    def label(pid: str) -> str:
        if pid and pid not in labels:
            pat = ctx.read(f"Patient/{pid}") or {}
            name = (pat.get("name") or [{}])[0]
            text = " ".join([*name.get("given", []), name.get("family", "")]).strip()
            labels[pid] = f"{text} (Patient/{pid})" if text else f"Patient/{pid}"
        return labels.get(pid, "")

    def expected(change: Change) -> bool:
        for i, e in enumerate(expects):
            if _matches(ctx, e, change) and (e.at_most is None or used[i] < e.at_most):
                used[i] += 1
                return True
        return False

    protected = set(ctx.protect)
    others: dict[str, list[str]] = {}
    created: Counter[str] = Counter()
    budget = getattr(ctx, "budget", None)
    new_refs = {w.ref for w in writes if w.version == "1"}
    registered = [
        w.ref.split("/", 1)[1] for w in writes if w.version == "1" and w.kind == "Patient"
    ]
    named = {budget_patient(pid, registered): pid for pid in registered}
    for w in writes:
        if not w.audited:
            problems.append(
                f"{w.describe(label(w.patient))} was written around the EHR (no audit entry)"
            )
            continue
        if w.user not in allowed_users:
            others.setdefault(w.user or "an unknown user", []).append(w.describe(label(w.patient)))
            continue
        if w.ref in protected:
            problems.append(
                f"changed {w.ref}, a record the expected answer depends on (the answer key depends on it; {w.op} by {w.user})"
            )
            continue
        if not expected(w):
            problems.append(f"unexpected change: {w.describe(label(w.patient))}")
        elif w.version == "1":
            created[f"{w.kind}|{budget_patient(w.patient, registered)}"] += 1
        elif w.ref not in new_refs and budget is not None and CHANGED + w.ref not in budget:
            problems.append(
                f"unexpected change: {w.describe(label(w.patient))}, a record the task does not change"
            )
    for dup, original in duplicate_creates(ctx.versions_since_setup()):
        problems.append(f"duplicate record: {dup} repeats {original} (documented twice)")
    done: set[tuple[str, ...]] = set()
    for a in actions:
        if a.kind in BOOKKEEPING:
            continue
        if a.kind in READS:
            # the grader's own reads (the system account, or the exercise's named grader)
            if a.user in allowed_users or a.user in ("system", "", getattr(ex, "grader", None)):
                continue
            others.setdefault(a.user, []).append(a.describe(label(a.patient)))
            continue
        if a.user not in allowed_users:
            others.setdefault(a.user or "an unknown user", []).append(a.describe(label(a.patient)))
            continue
        if not expected(a):
            problems.append(f"unexpected {a.describe(label(a.patient))}")
            continue
        if a.kind not in RESUBMITTABLE and a.detail:  # without a detail, two are not comparable
            key = (a.kind, a.ref, a.patient, a.recipient, a.detail)
            if key in done:
                problems.append(f"{a.describe(label(a.patient))} done twice (a second release)")
            done.add(key)
    for user, items in sorted(others.items()):
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        problems.append(f"work done under {user}'s login: {'; '.join(items[:3])}{more}")
    if budget is not None:
        for key, n in sorted(created.items()):
            allowed = budget.get(key, 0)
            if n > allowed:
                kind, pid = key.split("|", 1)
                pid = named.get(pid, pid)
                where = f" on patient {label(pid)}" if pid else ""
                problems.append(
                    f"{n} {kind} record(s) created{where}: more than the task needs ({allowed})"
                )
    return problems


def _check(ctx: GradingContext) -> Check:
    expected = "only the changes the task asks for, all under your own login"
    if ctx is None or ctx.mark is None:
        return Check(True, "no setup mark to compare with (not checked)", expected)
    problems = unexpected_changes(ctx)
    if not problems:
        return Check(True, "nothing changed, disclosed or done beyond the task", expected)
    more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
    return Check(
        False,
        "; ".join(problems[:6]) + more,
        expected,
        "do only what the task needs, as yourself; a later repair does not undo a wrong write or a release",
    )


def collateral_criterion(points: float = 2.0) -> Criterion:
    """The criterion the framework adds to every exercise (see module docstring)."""
    return Criterion(COLLATERAL, points, _check, WHY)
