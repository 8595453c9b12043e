"""Catalogue section "Privacy and access control": exercises 13-20 of EXERCISES.md.

The sandbox enforces PRIVACY.md on every path, so these exercises grade what really
happened: the record state, the Consents, the accounting of disclosures and the tamper-evident
audit trail (who read what, who broke the glass, who reviewed it).

How a student hands work in (the framework has no ``submit`` of its own):

- an artefact (an allow/deny matrix, a list of flagged audit events, a research folder) goes
  in with :func:`submit`, which keeps it in the attempt's sandbox state;
- a release of information goes out with :func:`disclose`, which reads every released
  resource through the student's session (so the policy checks it and the audit trail logs it)
  and adds the release to the sandbox's accounting of disclosures.

>>> from ehr_sandbox.exercises import get
>>> get("privacy/role-policy").role
'po.wilson'
>>> sorted(get("privacy/restriction").wrong_solutions)
['bill-anyway']
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ehr_sandbox.audit.events import event_patient, event_username
from ehr_sandbox.errors import (
    AccessDenied,
    CryptoError,
    ExerciseError,
    NotFound,
    SandboxError,
    ValidationError,
)
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

__all__ = [
    "BREAK_THE_GLASS",
    "DEIDENTIFICATION",
    "DISCLOSURES_KEY",
    "ENCRYPTION",
    "MINIMUM_NECESSARY",
    "RELEASE_OF_INFORMATION",
    "RESTRICTION",
    "ROLE_POLICY",
    "SNOOPING_REVIEW",
    "accounting_of_disclosures",
    "clinic_database",
    "disclose",
    "submit",
    "submitted",
]

PRIVACY_OFFICER = "po.wilson"
BILLING = "billing.davis"
FRONT_DESK = "fd.smith"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
DISCLOSURES_KEY = "privacy/disclosures"
"""Sandbox-state key of the accounting of disclosures (HIPAA 164.528)."""
_HANDIN = "handin/"
_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


# ------------------------------------------------------------------------------------------
# Hand-in helpers
# ------------------------------------------------------------------------------------------
def submit(att: Any, value: Any) -> None:
    """Hand in an exercise's artefact (JSON-ready: dict, list, str); a new one replaces it.

    >>> from types import SimpleNamespace
    >>> att = SimpleNamespace(sandbox=SimpleNamespace(state={}), exercise=SimpleNamespace(id="privacy/x"),
    ...                       student="alice")
    >>> submit(att, ["3", "7"])
    >>> submitted(att.sandbox, "privacy/x", "alice")
    ['3', '7']
    """
    if value is None:
        raise ExerciseError("submit: expected something to hand in (found None)")
    try:
        value = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise ExerciseError(
            f"submit: expected JSON-ready data (dict, list, str, numbers) (found {type(value).__name__})"
        ) from None
    att.sandbox.state[_handin_key(att.exercise.id, att.student)] = value


def _handin_key(exercise_id: str, student: str) -> str:
    # per (exercise, student): a course's shared clinic may hold several students' attempts
    return f"{_HANDIN}{exercise_id}|{student}"


def submitted(sandbox: Any, exercise_id: str, student: str) -> Any:
    """What was handed in for ``exercise_id`` with :func:`submit` (None when nothing).

    >>> from types import SimpleNamespace
    >>> submitted(SimpleNamespace(state={}), "privacy/x", "alice") is None
    True
    """
    return sandbox.state.get(_handin_key(exercise_id, student))


def _now(sandbox: Any) -> datetime:
    clock = sandbox.clock
    return clock.peek() if hasattr(clock, "peek") else clock()


def disclose(
    session: Any,
    *,
    recipient: str,
    purpose: str,
    refs: Iterable[str],
    authorization: str | None = None,
) -> dict[str, Any]:
    """Release resources to an outside ``recipient``: returns the collection Bundle to send.

    Every resource is read through ``session`` (the policy decides, the audit trail logs
    the read); the release is added to the accounting of disclosures with who, when, to whom,
    why (a v3-ActReason purpose such as HPAYMT) and under which ``authorization``
    (``Consent/id``). Nothing is recorded when any read is refused.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> s = sb.login("billing.davis")
    >>> claim = s.search("Claim").first()
    >>> payer = s.read(claim["insurance"][0]["coverage"]["reference"])["payor"][0]["reference"]
    >>> bundle = disclose(s, recipient=payer, purpose="HPAYMT", refs=[f"Claim/{claim['id']}"])
    >>> bundle["type"], len(accounting_of_disclosures(sb))
    ('collection', 1)
    """
    if not isinstance(recipient, str) or not _REF.match(recipient):
        raise ValidationError(
            "disclosure", "recipient", "a reference 'Type/id' to the recipient", found=recipient
        )
    if not isinstance(purpose, str) or not re.fullmatch(r"[A-Z]{3,12}", purpose):
        raise ValidationError(
            "disclosure", "purpose", "a v3-ActReason purpose code such as HPAYMT", found=purpose
        )
    if authorization is not None and not (
        isinstance(authorization, str) and authorization.startswith("Consent/")
    ):
        raise ValidationError(
            "disclosure", "authorization", "a reference 'Consent/id'", found=authorization
        )
    if not session.exists(recipient):
        raise ValidationError(
            "disclosure",
            "recipient",
            "an existing Organization, Practitioner, RelatedPerson or Patient you can see",
            found=recipient,
        )
    wanted = list(dict.fromkeys(refs))
    if not wanted or not all(isinstance(r, str) and _REF.match(r) for r in wanted):
        raise ValidationError(
            "disclosure", "refs", "a non-empty list of references 'Type/id'", found=wanted
        )
    released = [session.read(r) for r in wanted]  # all reads first: no partial accounting
    sandbox = session.sandbox
    entry = {
        "id": f"disclosure-{len(sandbox.state.get(DISCLOSURES_KEY, [])) + 1}",
        "when": _now(sandbox).replace(microsecond=0).isoformat(),
        "by": session.user.username,
        "recipient": recipient,
        "purpose": purpose,
        "authorization": authorization,
        "patients": sorted({p for p in (_patient_of(r) for r in released) if p}),
        "refs": [f"{r['resourceType']}/{r['id']}" for r in released],
        "versions": [str(r.get("meta", {}).get("versionId", "")) for r in released],
    }
    sandbox.state[DISCLOSURES_KEY] = [*sandbox.state.get(DISCLOSURES_KEY, []), entry]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in released],
    }


def accounting_of_disclosures(sandbox: Any, patient: str | None = None) -> list[dict[str, Any]]:
    """The disclosures recorded in a sandbox (oldest first), optionally for one patient id.

    >>> from types import SimpleNamespace
    >>> accounting_of_disclosures(SimpleNamespace(state={}))
    []
    """
    entries = list(sandbox.state.get(DISCLOSURES_KEY, []))
    if patient is None:
        return entries
    return [e for e in entries if patient in e.get("patients", [])]


def _patient_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for key in ("subject", "patient", "beneficiary"):
        ref = (resource.get(key) or {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    if resource.get("resourceType") == "Appointment":
        return _patient_of_appt(resource)
    return None


def _refs_in(node: Any) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            ref = cur.get("reference")
            if isinstance(ref, str):
                out.add(ref)
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return out


# ------------------------------------------------------------------------------------------
# Audit-trail helpers
# ------------------------------------------------------------------------------------------
def _seq(ev: Mapping[str, Any]) -> int:
    return int(ev.get("id", 0))


def _subtype(ev: Mapping[str, Any]) -> str:
    sub = ev.get("subtype") or [{}]
    return str(sub[0].get("code", ""))


def _entity_ref(ev: Mapping[str, Any]) -> str | None:
    for ent in ev.get("entity", []):
        if (ent.get("role") or {}).get("code") == "4":
            ref = (ent.get("what") or {}).get("reference", "")
            return "/".join(ref.split("/")[:2]) if ref else None
    return None


def _purposes(ev: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for agent in ev.get("agent", []):
        if agent.get("requestor"):
            out |= codes(agent.get("purposeOfUse", []))
    return out


def _last_seq(sandbox: Any) -> int:
    events = sandbox.audit.events()
    return max((_seq(e) for e in events), default=0)


def _events_after(ctx: GradingContext, after: int) -> list[dict[str, Any]]:
    return [e for e in ctx.audit_events() if _seq(e) > after]


def _users_by_practitioner(sandbox: Any) -> dict[str, str]:
    return {u.practitioner_id: u.username for u in sandbox.users if u.practitioner_id}


def _of_patient(sandbox: Any, rtype: str, pid: str) -> list[dict[str, Any]]:
    """Resources of a type about a patient (store order, deterministic)."""
    out = [r for r in sandbox.store.iter_type(rtype) if _patient_of(r) == pid]
    return sorted(out, key=lambda r: r["id"])


def _living_patients(sandbox: Any) -> list[dict[str, Any]]:
    found = [
        p
        for p in sandbox.store.iter_type("Patient")
        if not p.get("deceasedDateTime") and not p.get("deceasedBoolean")
    ]
    return sorted(found, key=lambda p: p["id"])


def _treated_by(sandbox: Any, username: str) -> set[str]:
    from ehr_sandbox.relationships import treating_patients

    return set(treating_patients(sandbox.store, sandbox.user(username), sandbox.reference_date))


# ------------------------------------------------------------------------------------------
# 13. Role policy
# ------------------------------------------------------------------------------------------
ALLOWED_FRONT_DESK = ("Patient", "Appointment", "Schedule", "Slot", "Coverage")
CLINICAL_PROBES = (
    "Observation",
    "Condition",
    "Encounter",
    "DocumentReference",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
)
_PERMS = re.compile(r"^c?r?u?d?s?$")
WILDCARD_ADVICE = "grant each resource type the job needs; never a wildcard grant"


def _setup_role_policy(sandbox: Any, variant: Any) -> dict[str, Any]:
    patients = _living_patients(sandbox)
    with_appt = [p for p in patients if _of_patient(sandbox, "Appointment", p["id"])]
    if not with_appt:
        raise ExerciseError("setup: no patient with an appointment; generate a larger sandbox")
    patient = variant.pick(with_appt, salt="patient")
    pid = patient["id"]
    clinical = [t for t in CLINICAL_PROBES if _of_patient(sandbox, t, pid)]
    chosen = sorted(variant.rng().sample(clinical, min(3, len(clinical))))
    probes = [f"Patient/{pid}", f"Appointment/{_of_patient(sandbox, 'Appointment', pid)[0]['id']}"]
    coverage = _of_patient(sandbox, "Coverage", pid)
    if coverage:
        probes.append(f"Coverage/{coverage[0]['id']}")
    probes += [f"{t}/{_of_patient(sandbox, t, pid)[0]['id']}" for t in chosen]
    fd_user = variant.pick(["fd.smith", "fd.brown"], salt="fd")
    return {
        "patient_name": patient_label(patient),
        "fd_user": fd_user,
        "matrix_types": list(ALLOWED_FRONT_DESK) + chosen,
        "matrix_list": ", ".join(f"`{t}`" for t in list(ALLOWED_FRONT_DESK) + chosen),
        "clinical_types": chosen,
        "probes": probes,
        "probe_list": "\n".join(f"- `{r}`" for r in probes),
        "after_event": _last_seq(sandbox),
    }


def _matrix(ctx: GradingContext) -> tuple[dict[str, str] | None, str]:
    value = submitted(ctx.sandbox, "privacy/role-policy", ctx.student)
    if not isinstance(value, dict) or not value:
        return None, "no matrix handed in (privacy.submit(att, {type: perms}))"
    bad = [
        f"{k}: {v!r}"
        for k, v in value.items()
        if not isinstance(v, str) or not _PERMS.match(v) or not isinstance(k, str)
    ]
    if bad:
        return None, f"invalid permissions {', '.join(bad)} (use letters of 'cruds' in that order)"
    return dict(value), ""


def _role_groups() -> dict[str, list[str]]:
    """The role matrix's named groups of resource types (``roles.toml`` [groups])."""
    import tomllib
    from importlib.resources import files

    data = tomllib.loads((files("ehr_sandbox.access") / "roles.toml").read_text(encoding="utf-8"))
    return {k: list(v) for k, v in data.get("groups", {}).items()}


def _grants(matrix: Mapping[str, str], rtype: str) -> str:
    """What a handed-in matrix grants on a type: its own row, else any wildcard or group row.

    >>> _grants({"*": "rs"}, "Observation"), _grants({"Observation": ""}, "Observation")
    ('rs', '')
    """
    if rtype in matrix:
        return matrix[rtype]
    groups = _role_groups()
    broad = [v for k, v in matrix.items() if "*" in k or rtype in groups.get(k, ())]
    return "".join(sorted(set("".join(broad)), key="cruds".index)) if broad else ""


def _role_allowed(ctx: GradingContext) -> Check:
    expected = "read and search ('rs' at least) on " + ", ".join(ALLOWED_FRONT_DESK)
    matrix, why = _matrix(ctx)
    if matrix is None:
        return Check(False, why, expected)
    missing = [t for t in ALLOWED_FRONT_DESK if not {"r", "s"} <= set(_grants(matrix, t))]
    if missing:
        return Check(
            False,
            f"no read/search on {', '.join(missing)}",
            expected,
            "the front desk needs demographics, the schedule and insurance to do its job",
        )
    return Check(True, "demographics, schedule and coverage granted", expected)


def _role_clinical(ctx: GradingContext) -> Check:
    types = ctx.facts["clinical_types"]
    expected = f"no permission at all on {', '.join(types)}"
    matrix, why = _matrix(ctx)
    if matrix is None:
        return Check(False, why, expected)
    granted = [f"{t} '{_grants(matrix, t)}'" for t in types if _grants(matrix, t)]
    if granted:
        return Check(
            False,
            f"clinical data granted: {', '.join(granted)}",
            expected,
            "minimum necessary: the front desk sees no clinical data",
        )
    return Check(True, "clinical data denied", expected)


def _role_no_wildcard(ctx: GradingContext) -> Check:
    from synthetic.fhir import is_resource_type

    expected = "one row per FHIR resource type, no wildcard or group grants"
    matrix, why = _matrix(ctx)
    if matrix is None:
        return Check(False, why, expected)
    wild = sorted(k for k in matrix if "*" in k)
    if wild:
        return Check(
            False,
            f"wildcard grant {', '.join(repr(k) for k in wild)}",
            expected,
            WILDCARD_ADVICE,
        )
    broad = sorted(k for k in matrix if not is_resource_type(k))
    if broad:
        return Check(
            False,
            f"group or unknown type grant {', '.join(repr(k) for k in broad)}",
            expected,
            WILDCARD_ADVICE,
        )
    return Check(True, f"{len(matrix)} resource types, no wildcard", expected)


def _role_verified(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"{f['fd_user']} tried each probe resource ({len(f['probes'])}) in the live sandbox"
    tried = {
        _entity_ref(e)
        for e in _events_after(ctx, f["after_event"])
        if event_username(e) == f["fd_user"]
    }
    missing = [r for r in f["probes"] if r not in tried]
    if missing:
        return Check(
            False,
            f"no access attempt by {f['fd_user']} on {', '.join(missing)} in the audit trail",
            expected,
            "test a policy by logging in as the role and trying each resource",
        )
    return Check(True, f"all {len(f['probes'])} probes tried as {f['fd_user']}", expected)


def _probe_as_front_desk(att: Any) -> None:
    fd = att.sandbox.login(att.facts["fd_user"])
    for ref in att.facts["probes"]:
        # denied reads look exactly like absent data
        with contextlib.suppress(NotFound):
            fd.read(ref)


def _role_solution(att: Any) -> None:
    f = att.facts
    matrix = {t: ("crus" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]}
    submit(att, matrix)
    _probe_as_front_desk(att)


def _role_wildcard(att: Any) -> None:
    submit(att, {"*": "crus"})
    _probe_as_front_desk(att)


ROLE_POLICY = register(
    Exercise(
        id="privacy/role-policy",
        title="Role policy: what the front desk may see",
        topic="privacy",
        competencies=("X.P.2", "VI.P.6"),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Fill the front desk's allow/deny matrix (minimum necessary) and test it live.",
        setup=_setup_role_policy,
        instructions=(
            "A new front-desk hire, `{fd_user}`, starts today. As privacy officer, write the front "
            "desk's access matrix: for each of {matrix_list} give the permissions the job needs, "
            "as letters of `cruds` in that order (`''` for none). The front desk registers patients, "
            "keeps the schedule and insurance, and sees **no clinical data**.\n\n"
            "1. Hand the matrix in: `privacy.submit(att, {{'Patient': '...', ...}})` "
            "(`from ehr_sandbox.exercises.builtin import privacy`).\n"
            "2. Check it against the live policy: log in as `{fd_user}` "
            "(`att.sandbox.login('{fd_user}')`) and try to read each of these resources of "
            "{patient_name}'s chart — refused reads look like absent data (`NotFound`):\n"
            "{probe_list}\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "demographics and schedule allowed",
                2,
                _role_allowed,
                "Each role gets what its job needs (HIPAA 164.514(d) minimum necessary; MAERB X.P.2).",
            ),
            Criterion(
                "clinical data denied",
                3,
                _role_clinical,
                "Workforce members see only the PHI their job needs (HIPAA 164.514(d)(2)).",
            ),
            Criterion(
                "no wildcard grants",
                2,
                _role_no_wildcard,
                "A wildcard grants every type, including those added later: access must be listed type by type (HIPAA 164.308(a)(4) access management).",
            ),
            Criterion(
                "policy checked as the front desk",
                1,
                _role_verified,
                "A policy is verified by trying it, and the audit trail shows the test (HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint(
                "PRIVACY.md's role table: front_desk may Patient, Appointment, Schedule/Slot, Coverage."
            ),
            Hint(
                "Give '' (nothing) to every clinical type; 'crus' to the ones the desk works with.",
                cost=1,
            ),
        ),
        solution=Solution(
            _role_solution, description="type-by-type matrix, probed as the front desk"
        ),
        wrong_solutions={
            "wildcard": Solution(
                _role_wildcard,
                fails="no wildcard grants",
                message="wildcard grant",
                description="{'*': 'crus'}",
            )
        },
        patients=8,
    )
)


# ------------------------------------------------------------------------------------------
# 14. Minimum necessary
# ------------------------------------------------------------------------------------------
MIN_NEC_ADVICE = "send only what the request needs: that claim's encounter, not the whole record"


def _payer_of(sandbox: Any, claim: Mapping[str, Any]) -> tuple[str, str]:
    for ins in claim.get("insurance", []) or []:
        cov = sandbox.store.read("Coverage", ref_id(ins.get("coverage")))
        for payor in (cov or {}).get("payor", []) or []:
            ref = payor.get("reference", "")
            if ref:
                org = sandbox.store.read(*ref.split("/", 1)) or {}
                return ref, str(org.get("name") or payor.get("display") or ref)
    raise ExerciseError(f"setup: Claim/{claim.get('id')} names no payer")


def _setup_min_nec(sandbox: Any, variant: Any) -> dict[str, Any]:
    candidates = []
    for p in _living_patients(sandbox):
        claims = [c for c in _of_patient(sandbox, "Claim", p["id"]) if c.get("insurance")]
        if len(claims) >= 2:
            candidates.append((p, claims))
    if not candidates:
        raise ExerciseError("setup: no patient with two insured claims; generate a larger sandbox")
    patient, claims = variant.pick(candidates, salt="patient")
    claim = variant.pick(claims, salt="claim")
    enc = ref_id((claim["item"][0].get("encounter") or [{}])[0])
    payer_ref, payer_name = _payer_of(sandbox, claim)
    return {
        "patient_id": patient["id"],
        "patient_name": patient_label(patient),
        "claim_id": claim["id"],
        "encounter_id": enc,
        "visit_date": str(claim.get("created", "")),
        "payer_ref": payer_ref,
        "payer_name": payer_name,
        "total": f"{float((claim.get('total') or {}).get('value', 0)):.2f}",
    }


def _disclosures_to(ctx: GradingContext, recipient: str) -> list[dict[str, Any]]:
    return [d for d in accounting_of_disclosures(ctx.sandbox) if d.get("recipient") == recipient]


def _min_nec_requested(ctx: GradingContext) -> Check:
    f = ctx.facts
    need = {f"Claim/{f['claim_id']}", f"Encounter/{f['encounter_id']}"}
    expected = f"a disclosure to {f['payer_name']} with {' and '.join(sorted(need))}"
    sent = {r for d in _disclosures_to(ctx, f["payer_ref"]) for r in d.get("refs", [])}
    if not sent:
        return Check(
            False, f"nothing disclosed to {f['payer_ref']}", expected, "answer the payer's request"
        )
    missing = sorted(need - sent)
    if missing:
        return Check(False, f"the disclosure lacks {', '.join(missing)}", expected)
    return Check(True, "the claim and its encounter were sent", expected)


def _min_nec_only(ctx: GradingContext) -> Check:
    f = ctx.facts
    claim, enc = f"Claim/{f['claim_id']}", f"Encounter/{f['encounter_id']}"
    expected = f"only {claim}, {enc} and resources recorded for that encounter"
    sent = [r for d in _disclosures_to(ctx, f["payer_ref"]) for r in d.get("refs", [])]
    if not sent:
        return Check(False, "nothing disclosed", expected, MIN_NEC_ADVICE)
    extra = []
    for ref in dict.fromkeys(sent):
        if ref in (claim, enc, f"Patient/{f['patient_id']}"):
            continue
        res = ctx.read(ref)
        if res is None or not ({claim, enc} & _refs_in(res)):
            extra.append(ref)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return Check(
            False,
            f"more than the minimum necessary: {len(extra)} unrelated resources ({shown})",
            expected,
            MIN_NEC_ADVICE,
        )
    return Check(True, f"{len(set(sent))} resources, all about that visit", expected)


def _reads_logged(ctx: GradingContext, entry: Mapping[str, Any], after: int = 0) -> list[str]:
    """Refs of a disclosure that the audit trail shows no successful read of by its user."""
    read = {
        _entity_ref(e)
        for e in ctx.audit_events(user=entry.get("by"))
        if _seq(e) > after and str(e.get("outcome")) == "0"
    }
    return [r for r in entry.get("refs", []) if r not in read]


def _min_nec_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a disclosure by {ctx.user.username} to {f['payer_ref']} for payment (HPAYMT), its reads in the audit trail"
    entries = [d for d in _disclosures_to(ctx, f["payer_ref"]) if d.get("by") == ctx.user.username]
    if not entries:
        return Check(
            False,
            "no disclosure recorded by you to the payer",
            expected,
            "use privacy.disclose(...)",
        )
    wrong = [d for d in entries if d.get("purpose") != "HPAYMT"]
    if wrong:
        return Check(
            False,
            f"purpose {wrong[0].get('purpose')!r}",
            expected,
            "a payer's request is for payment: HPAYMT",
        )
    unlogged = [r for d in entries for r in _reads_logged(ctx, d)]
    if unlogged:
        return Check(
            False,
            f"no audited read of {', '.join(unlogged[:3])}",
            expected,
            "release only what you read through the EHR",
        )
    return Check(True, f"{len(entries)} disclosure(s) recorded for payment", expected)


def _min_nec_solution(att: Any) -> None:
    f, s = att.facts, att.session
    enc = f"Encounter/{f['encounter_id']}"
    conditions = [
        f"Condition/{c['id']}"
        for c in s.search("Condition", patient=f"Patient/{f['patient_id']}").fetch()
        if (c.get("encounter") or {}).get("reference") == enc
    ]
    disclose(
        s,
        recipient=f["payer_ref"],
        purpose="HPAYMT",
        refs=[f"Claim/{f['claim_id']}", enc, *conditions],
    )


def _min_nec_whole_record(att: Any) -> None:
    f, s = att.facts, att.session
    pref = f"Patient/{f['patient_id']}"
    refs = [f"Claim/{c['id']}" for c in s.search("Claim", patient=pref).fetch()]
    for rtype in ("Encounter", "Condition", "Observation"):
        refs += [f"{rtype}/{r['id']}" for r in s.search(rtype, patient=pref).fetch()]
    disclose(s, recipient=f["payer_ref"], purpose="HPAYMT", refs=refs)


MINIMUM_NECESSARY = register(
    Exercise(
        id="privacy/minimum-necessary",
        title="Minimum necessary: a payer asks about one claim",
        topic="privacy",
        competencies=("X.P.2", "VIII.P.4"),
        minutes=15,
        role=BILLING,
        summary="Answer a payer's question about one claim with that encounter only.",
        setup=_setup_min_nec,
        instructions=(
            "**{payer_name}** (`{payer_ref}`) is reviewing `Claim/{claim_id}` for {patient_name}'s "
            "visit of {visit_date} (total ${total}) and asks for the documentation that supports it.\n\n"
            "Send what supports *that claim*: the claim, its encounter (`Encounter/{encounter_id}`) "
            "and what was recorded for that encounter — release it with\n"
            "`privacy.disclose(att.session, recipient='{payer_ref}', purpose='HPAYMT', refs=[...])` "
            "(`from ehr_sandbox.exercises.builtin import privacy`), then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "requested claim disclosed",
                2,
                _min_nec_requested,
                "Disclosures for payment are allowed, and the payer needs the claim and its visit (HIPAA 164.506(c)).",
            ),
            Criterion(
                "only that encounter",
                3,
                _min_nec_only,
                "A disclosure for payment is limited to the minimum necessary for its purpose (HIPAA 164.502(b), 164.514(d)).",
            ),
            Criterion(
                "disclosure recorded",
                1,
                _min_nec_recorded,
                "Each release names its recipient and purpose and is traceable in the audit trail (HIPAA 164.312(b); MAERB X.P.2).",
            ),
        ),
        hints=(
            Hint(
                "Search the patient's Conditions and keep those whose `encounter` is the claim's encounter."
            ),
            Hint(
                "Three kinds of resource: the Claim, its Encounter, and that encounter's Conditions.",
                cost=1,
            ),
        ),
        solution=Solution(
            _min_nec_solution, description="claim, its encounter and that visit's diagnoses"
        ),
        wrong_solutions={
            "whole-record": Solution(
                _min_nec_whole_record,
                fails="only that encounter",
                message="more than the minimum necessary",
                description="every claim, encounter, condition and observation of the patient",
            )
        },
        patients=8,
    )
)


# ------------------------------------------------------------------------------------------
# 15. Release of information
# ------------------------------------------------------------------------------------------
ROI_PHYSICIAN = "dr.patel"
ROI_CLASSES = ("Immunization", "AllergyIntolerance", "Condition", "MedicationRequest")
ROI_RECIPIENTS = (
    "Lakeside Orthopedics",
    "Riverbend Physical Therapy",
    "Harbor Legal Group",
    "Summit Life Insurance",
    "Northside Pediatrics",
    "Valley Sleep Center",
)
ROI_ADVICE = "check the authorization's expiry, recipient and scope before releasing anything"


def _authorization(
    pid: str, org_ref: str, classes: list[str], start: date, end: date, signed: date
) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IDSCL",
                        "display": "information disclosure",
                    }
                ]
            }
        ],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": signed.isoformat(),
        "provision": {
            "type": "permit",
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": org_ref},
                }
            ],
            "action": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                            "code": "disclose",
                        }
                    ]
                }
            ],
            "class": [{"system": "http://hl7.org/fhir/resource-types", "code": c} for c in classes],
        },
    }


def _setup_roi(sandbox: Any, variant: Any) -> dict[str, Any]:
    treated = _treated_by(sandbox, ROI_PHYSICIAN)
    options = []
    for p in _living_patients(sandbox):
        if p["id"] in treated:
            have = [c for c in ROI_CLASSES if _of_patient(sandbox, c, p["id"])]
            if len(have) >= 2:
                options.append((p, have))
    if not options:
        raise ExerciseError(f"setup: {ROI_PHYSICIAN} treats no patient with enough history")
    patient, have = variant.pick(options, salt="patient")
    rng = variant.rng()
    scope = sorted(rng.sample(have, 2 if len(have) < 3 else rng.choice((1, 2))))
    names = rng.sample(list(ROI_RECIPIENTS), 2)
    today = sandbox.reference_date
    system = sandbox.system_session()
    expired_first = variant.pick([True, False], salt="order")
    facts: dict[str, Any] = {"patient_id": patient["id"], "patient_name": patient_label(patient)}
    for i, name in enumerate(names, start=1):
        org = system.create({"resourceType": "Organization", "active": True, "name": name})
        expired = (i == 1) == expired_first
        if expired:
            end = today - timedelta(days=rng.randint(3, 40))
            start = end - timedelta(days=180)
            classes = list(have)
        else:
            start = today - timedelta(days=rng.randint(2, 20))
            end = start + timedelta(days=180)
            classes = scope
        consent = system.create(
            _authorization(patient["id"], f"Organization/{org['id']}", classes, start, end, start)
        )
        facts[f"org{i}_ref"] = f"Organization/{org['id']}"
        facts[f"org{i}_name"] = name
        facts[f"auth{i}"] = f"Consent/{consent['id']}"
    return facts


def _auth_of(consent: Mapping[str, Any] | None) -> tuple[set[str], set[str], str, str]:
    """(recipient refs, classes, start, end) of an authorization Consent."""
    prov = (consent or {}).get("provision") or {}
    actors = {((a.get("reference") or {}).get("reference", "")) for a in prov.get("actor", [])}
    classes = {c.get("code", "") for c in prov.get("class", [])}
    period = prov.get("period") or {}
    return actors, classes, str(period.get("start", "")), str(period.get("end", "9999"))


def _roi_valid_on(consent: Mapping[str, Any] | None, recipient: str, day: str) -> bool:
    actors, _, start, end = _auth_of(consent)
    return (
        consent is not None
        and consent.get("status") == "active"
        and recipient in actors
        and start[:10] <= day <= end[:10]
    )


def _roi_requests(ctx: GradingContext) -> list[tuple[str, str, str]]:
    f = ctx.facts
    return [(f[f"org{i}_ref"], f[f"org{i}_name"], f[f"auth{i}"]) for i in (1, 2)]


def _roi_no_expired(ctx: GradingContext) -> Check:
    expected = "no release to a recipient whose authorization is expired (or missing)"
    for org_ref, name, auth in _roi_requests(ctx):
        consent = ctx.read(auth)
        for d in _disclosures_to(ctx, org_ref):
            if not _roi_valid_on(consent, org_ref, str(d.get("when", ""))[:10]):
                _, _, _, end = _auth_of(consent)
                return Check(
                    False,
                    f"{len(d.get('refs', []))} resources released to {name} on an expired authorization (ended {end})",
                    expected,
                    ROI_ADVICE,
                )
    return Check(True, "no release without a valid authorization", expected)


def _roi_valid_request(ctx: GradingContext) -> tuple[str, str, str, dict[str, Any]] | None:
    today = ctx.sandbox.reference_date.isoformat()
    for org_ref, name, auth in _roi_requests(ctx):
        consent = ctx.read(auth)
        if consent is not None and _roi_valid_on(consent, org_ref, today):
            return org_ref, name, auth, consent
    return None


def _roi_scope(ctx: GradingContext) -> Check:
    valid = _roi_valid_request(ctx)
    if valid is None:
        return Check(False, "no valid authorization on file", "a valid authorization (setup error)")
    org_ref, name, _, consent = valid
    _, classes, _, _ = _auth_of(consent)
    expected = (
        f"a release to {name} of the authorized {', '.join(sorted(classes))} and nothing else"
    )
    sent = [r for d in _disclosures_to(ctx, org_ref) for r in d.get("refs", [])]
    if not sent:
        return Check(
            False,
            f"nothing released to {name}",
            expected,
            "release what a valid authorization covers",
        )
    pid = ctx.facts["patient_id"]
    outside = [r for r in sent if r.split("/")[0] not in classes and r != f"Patient/{pid}"]
    if outside:
        return Check(
            False,
            f"{len(outside)} resources outside the authorization's scope ({', '.join(outside[:3])})",
            expected,
            ROI_ADVICE,
        )
    missing = sorted(c for c in classes if not any(r.startswith(c + "/") for r in sent))
    if missing:
        return Check(False, f"no {', '.join(missing)} released", expected)
    return Check(True, f"{len(set(sent))} resources within scope released to {name}", expected)


def _roi_accounted(ctx: GradingContext) -> Check:
    valid = _roi_valid_request(ctx)
    expected = (
        "the release in the accounting of disclosures, naming its authorization, reads audited"
    )
    if valid is None:
        return Check(False, "no valid authorization on file", expected)
    org_ref, name, auth, _ = valid
    entries = [d for d in _disclosures_to(ctx, org_ref) if d.get("by") == ctx.user.username]
    if not entries:
        return Check(
            False,
            f"no release to {name} by you in the accounting",
            expected,
            "use privacy.disclose(...)",
        )
    unnamed = [d for d in entries if d.get("authorization") != auth]
    if unnamed:
        return Check(
            False,
            f"the release names authorization {unnamed[0].get('authorization')!r}",
            expected,
            f"name the authorization it relies on ({auth})",
        )
    unlogged = [r for d in entries for r in _reads_logged(ctx, d)]
    if unlogged:
        return Check(False, f"no audited read of {', '.join(unlogged[:3])}", expected)
    return Check(True, f"release to {name} accounted under {auth}", expected)


def _roi_release(att: Any, org_ref: str, auth: str, classes: Iterable[str]) -> None:
    s, pid = att.session, att.facts["patient_id"]
    refs = [
        f"{c}/{r['id']}" for c in classes for r in s.search(c, patient=f"Patient/{pid}").fetch()
    ]
    disclose(s, recipient=org_ref, purpose="PATRQT", refs=refs, authorization=auth)


def _roi_solution(att: Any) -> None:
    s, f = att.session, att.facts
    today = att.sandbox.reference_date.isoformat()
    for i in (1, 2):
        consent = s.read(f[f"auth{i}"])
        if _roi_valid_on(consent, f[f"org{i}_ref"], today):
            _roi_release(att, f[f"org{i}_ref"], f[f"auth{i}"], sorted(_auth_of(consent)[1]))


def _roi_release_both(att: Any) -> None:
    s, f = att.session, att.facts
    for i in (1, 2):
        consent = s.read(f[f"auth{i}"])
        _roi_release(att, f[f"org{i}_ref"], f[f"auth{i}"], sorted(_auth_of(consent)[1]))


def _roi_everything(att: Any) -> None:
    s, f = att.session, att.facts
    today = att.sandbox.reference_date.isoformat()
    for i in (1, 2):
        consent = s.read(f[f"auth{i}"])
        if _roi_valid_on(consent, f[f"org{i}_ref"], today):
            _roi_release(att, f[f"org{i}_ref"], f[f"auth{i}"], (*ROI_CLASSES, "Encounter"))


RELEASE_OF_INFORMATION = register(
    Exercise(
        id="privacy/release-of-information",
        title="Release of information: check the authorization first",
        topic="privacy",
        competencies=("X.P.2", "X.P.4"),
        minutes=20,
        role=ROI_PHYSICIAN,
        summary="Two records requests with authorizations: release only what a valid one covers.",
        setup=_setup_roi,
        instructions=(
            "Two requests for {patient_name}'s records arrived today, each with the patient's signed "
            "authorization on file:\n\n"
            "1. **{org1_name}** (`{org1_ref}`), authorization `{auth1}`\n"
            "2. **{org2_name}** (`{org2_ref}`), authorization `{auth2}`\n\n"
            "Read each authorization (`att.session.read('Consent/...')`): who may receive, which "
            "kinds of records (`provision.class`), and until when (`provision.period`). Release "
            "only what a valid authorization covers, with\n"
            "`privacy.disclose(att.session, recipient=..., purpose='PATRQT', refs=[...], authorization='Consent/...')` "
            "(`from ehr_sandbox.exercises.builtin import privacy`). Refuse the rest. Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "no release on an expired authorization",
                3,
                _roi_no_expired,
                "A disclosure that needs an authorization is void once it has expired (HIPAA 164.508(b)(2)(i), (c)(1)(v)).",
            ),
            Criterion(
                "released within the authorization's scope",
                2,
                _roi_scope,
                "An authorization covers only the information it describes (HIPAA 164.508(c)(1)(i); MAERB X.P.2).",
            ),
            Criterion(
                "disclosure accounted",
                1,
                _roi_accounted,
                "Patients may ask who received their information: each release is logged with its basis (HIPAA 164.528).",
            ),
        ),
        hints=(
            Hint(
                "Compare `provision.period.end` with today's date (`att.sandbox.reference_date`)."
            ),
            Hint(
                "For the valid one, search each class in `provision.class` for the patient and release those.",
                cost=1,
            ),
        ),
        solution=Solution(_roi_solution, description="release the valid request's classes only"),
        wrong_solutions={
            "expired": Solution(
                _roi_release_both,
                fails="no release on an expired authorization",
                message="expired authorization",
                description="releases to both requesters",
            ),
            "everything": Solution(
                _roi_everything,
                fails="released within the authorization's scope",
                message="outside the authorization's scope",
                description="releases every clinical class to the valid requester",
            ),
        },
        patients=10,
    )
)


# ------------------------------------------------------------------------------------------
# 16. Break the glass
# ------------------------------------------------------------------------------------------
BTG_PHYSICIAN = "dr.okafor"
BTG_START_CODE, BTG_STOP_CODE = "110127", "110138"
EMERGENCIES = (
    "collapsed in the waiting room and is unresponsive",
    "has severe chest pain and shortness of breath",
    "is having an anaphylactic reaction after a bee sting",
    "arrived confused with a glucose of 41 mg/dL",
)
ROUTINE = (
    "calls to ask whether their cholesterol result came back",
    "wants a refill of a routine prescription",
    "asks for a copy of last year's immunization record",
)


def _setup_btg(sandbox: Any, variant: Any) -> dict[str, Any]:
    treated = _treated_by(sandbox, BTG_PHYSICIAN)
    others = [p for p in _living_patients(sandbox) if p["id"] not in treated]
    if len(others) < 2:
        raise ExerciseError(f"setup: need two patients {BTG_PHYSICIAN} does not treat")
    emergency = variant.pick(others, salt="emergency")
    routine = variant.pick([p for p in others if p["id"] != emergency["id"]], salt="routine")
    gp = ref_id((emergency.get("generalPractitioner") or [{}])[0])
    return {
        "emergency_id": emergency["id"],
        "emergency_name": patient_label(emergency),
        "emergency_what": variant.pick(EMERGENCIES, salt="what"),
        "emergency_gp": _users_by_practitioner(sandbox).get(gp, "another physician"),
        "routine_id": routine["id"],
        "routine_name": patient_label(routine),
        "routine_what": variant.pick(ROUTINE, salt="routine-what"),
        "after_event": _last_seq(sandbox),
    }


def _btg_events(ctx: GradingContext, code: str) -> list[dict[str, Any]]:
    return [
        e
        for e in _events_after(ctx, ctx.facts["after_event"])
        if _subtype(e) == code and event_username(e) == ctx.user.username
    ]


def _btg_override(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"break-the-glass on {f['emergency_name']} with a reason, and the chart read under it"
    )
    starts = [
        e
        for e in _btg_events(ctx, BTG_START_CODE)
        if event_patient(e) == f["emergency_id"] and str(e.get("outcome")) == "0"
    ]
    if not starts:
        return Check(
            False,
            "no emergency override for the emergency patient",
            expected,
            "session.break_glass(patient, reason)",
        )
    if not any((e.get("outcomeDesc") or "").strip() for e in starts):
        return Check(False, "the override has no reason", expected)
    used = [
        e
        for e in _events_after(ctx, f["after_event"])
        if event_username(e) == ctx.user.username
        and event_patient(e) == f["emergency_id"]
        and "BTG" in _purposes(e)
        and str(e.get("outcome")) == "0"
        and _subtype(e) not in (BTG_START_CODE, BTG_STOP_CODE)
    ]
    if not used:
        return Check(False, "the override was started but the chart was never read", expected)
    return Check(
        True, f"override with reason {starts[0].get('outcomeDesc')!r}, {len(used)} reads", expected
    )


def _btg_not_routine(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"no break-the-glass except for {f['emergency_name']}'s emergency"
    misuse = [e for e in _btg_events(ctx, BTG_START_CODE) if event_patient(e) != f["emergency_id"]]
    if misuse:
        names = {f["routine_id"]: f["routine_name"]}
        who = sorted({names.get(event_patient(e) or "", event_patient(e) or "?") for e in misuse})
        return Check(
            False,
            f"break-the-glass used for a routine look-up ({', '.join(who)})",
            expected,
            "the glass is for emergencies; route routine requests to the patient's own care team",
        )
    return Check(True, "break-the-glass used only for the emergency", expected)


def _btg_ended(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the override ended once the emergency was handled"
    stops = [e for e in _btg_events(ctx, BTG_STOP_CODE) if event_patient(e) == f["emergency_id"]]
    if not stops:
        return Check(
            False, "the override was left open", expected, "session.end_break_glass(patient)"
        )
    return Check(True, "override ended", expected)


def _btg_reviewed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"the override on {f['emergency_name']} reviewed by {PRIVACY_OFFICER} with a note"
    uses = [
        q
        for q in ctx.sandbox.private.get("btg_review", [])
        if q.get("user") == ctx.user.username and q.get("patient") == f["emergency_id"]
    ]
    if not uses:
        return Check(False, "no override in the review queue", expected)
    pending = [q for q in uses if not q.get("reviewed")]
    if pending:
        return Check(
            False,
            f"{len(pending)} override(s) not reviewed",
            expected,
            "every emergency override is reviewed by the privacy officer",
        )
    bad = [
        q
        for q in uses
        if q.get("reviewer") != PRIVACY_OFFICER or not str(q.get("note", "")).strip()
    ]
    if bad:
        return Check(
            False,
            f"reviewed by {bad[0].get('reviewer')!r} with note {bad[0].get('note')!r}",
            expected,
        )
    return Check(True, f"reviewed by {PRIVACY_OFFICER}", expected)


def _btg_emergency(att: Any) -> None:
    f, s = att.facts, att.session
    s.break_glass(
        f"Patient/{f['emergency_id']}",
        f"Emergency: patient {f['emergency_what']}; need allergies and medications",
    )
    s.read("Patient", f["emergency_id"])
    s.search("AllergyIntolerance", patient=f"Patient/{f['emergency_id']}").fetch()
    s.search("MedicationRequest", patient=f"Patient/{f['emergency_id']}").fetch()
    s.end_break_glass(f["emergency_id"])


def _btg_review(att: Any) -> None:
    po = att.sandbox.login(PRIVACY_OFFICER)
    for _ in range(len(att.sandbox.btg_review_queue(po))):
        item = att.sandbox.btg_review_queue(po)[0]
        ok = item["patient"] == att.facts["emergency_id"]
        note = (
            "Emergency treatment documented; access appropriate"
            if ok
            else "Routine look-up: not an emergency"
        )
        att.sandbox.review_btg(po, 0, appropriate=ok, note=note)


def _btg_solution(att: Any) -> None:
    _btg_emergency(att)
    _btg_review(att)


def _btg_routine(att: Any) -> None:
    f, s = att.facts, att.session
    _btg_emergency(att)
    s.break_glass(f"Patient/{f['routine_id']}", "Patient called about a result")
    s.search("Observation", patient=f"Patient/{f['routine_id']}").fetch()
    s.end_break_glass(f["routine_id"])
    _btg_review(att)


BREAK_THE_GLASS = register(
    Exercise(
        id="privacy/break-the-glass",
        title="Break the glass: emergency access, then review",
        topic="privacy",
        competencies=("X.P.2", "XI.P.2"),
        minutes=15,
        role=BTG_PHYSICIAN,
        summary="Override access for an emergency with a reason, end it, and review it as privacy officer.",
        setup=_setup_btg,
        instructions=(
            "You are covering the clinic. **{emergency_name}** (`Patient/{emergency_id}`), a patient "
            "of {emergency_gp}, {emergency_what}. You do not treat this patient, so the chart is "
            "closed to you — but you need their allergies and medications now.\n\n"
            "1. Break the glass for this patient with a reason "
            "(`att.session.break_glass('Patient/{emergency_id}', reason)`), read what you need, "
            "and end the override (`att.session.end_break_glass('{emergency_id}')`).\n"
            "2. Meanwhile **{routine_name}** (`Patient/{routine_id}`), also not your patient, "
            "{routine_what}. Handle it the normal way.\n"
            "3. Then, as the privacy officer (`po = att.sandbox.login('po.wilson')`), review each "
            "override in `att.sandbox.btg_review_queue(po)` with "
            "`att.sandbox.review_btg(po, index, appropriate=..., note=...)`.\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "emergency override with a reason",
                3,
                _btg_override,
                "Emergency access is allowed, with a documented reason (HIPAA 164.312(a)(2)(ii) emergency access procedure).",
            ),
            Criterion(
                "no override for routine work",
                3,
                _btg_not_routine,
                "Break-the-glass is for emergencies only; a routine look-up is an unauthorized access (HIPAA 164.502(a); MAERB X.P.2).",
            ),
            Criterion(
                "override ended",
                1,
                _btg_ended,
                "Emergency access lasts only as long as the emergency (HIPAA 164.312(a)(2)(iii) automatic logoff).",
            ),
            Criterion(
                "override reviewed",
                2,
                _btg_reviewed,
                "Every override is reviewed by the privacy officer (HIPAA 164.308(a)(1)(ii)(D) information system activity review).",
            ),
        ),
        hints=(
            Hint(
                "A routine request for someone else's patient goes to that patient's physician: no override."
            ),
            Hint(
                "The review queue lists pending items; index 0 is the oldest pending one.", cost=1
            ),
        ),
        solution=Solution(
            _btg_solution, description="override for the emergency only, ended and reviewed"
        ),
        wrong_solutions={
            "routine-lookup": Solution(
                _btg_routine,
                fails="no override for routine work",
                message="routine look-up",
                description="also breaks the glass for the routine phone call",
            ),
            "unreviewed": Solution(
                _btg_emergency,
                fails="override reviewed",
                message="not reviewed",
                description="never reviews the override",
            ),
        },
        patients=10,
    )
)


# ------------------------------------------------------------------------------------------
# 17. Restriction (self-pay visit not disclosed to the health plan)
# ------------------------------------------------------------------------------------------
RESTRICTION_ADVICE = (
    "a visit paid in full out of pocket is never billed to the plan once the patient asks"
)


def _visit_copy(template: Mapping[str, Any], start: datetime, minutes: int = 30) -> dict[str, Any]:
    enc = copy.deepcopy(dict(template))
    for key in ("id", "meta", "appointment", "text"):
        enc.pop(key, None)
    enc["status"] = "finished"
    enc["period"] = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }
    return enc


def _claim_for(
    template: Mapping[str, Any], encounter_id: str, coverage_id: str, day: str
) -> dict[str, Any]:
    claim = copy.deepcopy(dict(template))
    for key in ("id", "meta", "text"):
        claim.pop(key, None)
    claim["created"] = day
    claim["billablePeriod"] = {"start": day, "end": day}
    claim["insurance"] = [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage_id}"}}
    ]
    for item in claim.get("item", []):
        item["servicedDate"] = day
        item["encounter"] = [{"reference": f"Encounter/{encounter_id}"}]
    return claim


def _setup_restriction(sandbox: Any, variant: Any) -> dict[str, Any]:
    options = []
    for p in _living_patients(sandbox):
        claims = [c for c in _of_patient(sandbox, "Claim", p["id"]) if c.get("insurance")]
        covs = [c for c in _of_patient(sandbox, "Coverage", p["id"]) if c.get("status") == "active"]
        encs = _of_patient(sandbox, "Encounter", p["id"])
        if claims and covs and encs:
            options.append((p, claims[-1], covs[0], encs[-1]))
    if not options:
        raise ExerciseError(
            "setup: no insured patient with a billed visit; generate a larger sandbox"
        )
    patient, claim, cov, enc = variant.pick(options, salt="patient")
    start = datetime.fromisoformat(enc["period"]["start"])
    today = sandbox.reference_date
    rng = variant.rng()
    self_pay_at = start.replace(
        year=today.year, month=today.month, day=today.day, hour=rng.randint(8, 11), minute=0
    )
    covered_at = self_pay_at - timedelta(days=rng.randint(1, 3), hours=-2)
    system = sandbox.system_session()
    self_pay = system.create(_visit_copy(enc, self_pay_at))
    covered = system.create(_visit_copy(enc, covered_at))
    payer = _payer_of(sandbox, claim)
    return {
        "patient_id": patient["id"],
        "patient_name": patient_label(patient),
        "self_pay_id": self_pay["id"],
        "self_pay_date": self_pay_at.date().isoformat(),
        "covered_id": covered["id"],
        "covered_date": covered_at.date().isoformat(),
        "coverage_id": cov["id"],
        "plan_name": payer[1],
        "template_claim": claim["id"],
        "paid": f"{rng.randint(95, 260)}.00",
    }


def _claims_on(ctx: GradingContext, encounter_id: str) -> list[dict[str, Any]]:
    want = f"Encounter/{encounter_id}"
    return [c for c in ctx.all("Claim") if want in _refs_in(c)]


def _restriction_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = f"Encounter/{f['self_pay_id']}"
    expected = f"an active Consent for {f['patient_name']} denying purpose HPAYMT for data related to {want}"
    found = [c for c in ctx.all("Consent") if _patient_of(c) == f["patient_id"]]
    if not found:
        return Check(
            False,
            "no Consent on the patient's record",
            expected,
            "record the patient's restriction as a Consent",
        )

    def denies(prov: Mapping[str, Any]) -> bool:
        hit = (
            prov.get("type") == "deny"
            and "HPAYMT" in codes(prov.get("purpose", []))
            and want in _refs_in(prov.get("data", []))
        )
        return hit or any(denies(p) for p in prov.get("provision", []) or [])

    good = [c for c in found if c.get("status") == "active" and denies(c.get("provision") or {})]
    if not good:
        return Check(False, f"{len(found)} Consent(s), none denying HPAYMT for {want}", expected)
    return Check(True, f"Consent/{good[0]['id']} restricts the visit", expected)


def _restriction_not_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"no Claim to {f['plan_name']} references the self-pay visit Encounter/{f['self_pay_id']}"
    )
    claims = _claims_on(ctx, f["self_pay_id"])
    if claims:
        return Check(
            False,
            f"billed the health plan for the self-pay visit (Claim/{claims[0]['id']})",
            expected,
            RESTRICTION_ADVICE,
        )
    return Check(True, "the self-pay visit was not billed to the plan", expected)


def _restriction_covered_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a Claim by {ctx.user.username} for Encounter/{f['covered_id']} to Coverage/{f['coverage_id']}"
    claims = [
        c
        for c in _claims_on(ctx, f["covered_id"])
        if f"Coverage/{f['coverage_id']}" in _refs_in(c.get("insurance", []))
    ]
    if not claims:
        return Check(
            False,
            "the covered visit was not billed",
            expected,
            "restrict only what the patient paid for",
        )
    provs = [p for c in claims for p in ctx.provenance_of_version(f"Claim/{c['id']}", "1")]
    if not any(ctx.by_user(p) for p in provs):
        return Check(False, "the claim was not created by you", expected)
    return Check(True, f"Claim/{claims[0]['id']} for the covered visit", expected)


def _restriction_consent(att: Any) -> None:
    f = att.facts
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "INFA",
                        "display": "information access",
                    }
                ]
            }
        ],
        "patient": {"reference": f"Patient/{f['patient_id']}"},
        "dateTime": f["self_pay_date"],
        "provision": {
            "type": "permit",
            "provision": [
                {
                    "type": "deny",
                    "purpose": [{"system": ACT_REASON, "code": "HPAYMT"}],
                    "data": [
                        {
                            "meaning": "related",
                            "reference": {"reference": f"Encounter/{f['self_pay_id']}"},
                        }
                    ],
                }
            ],
        },
    }
    att.sandbox.login_patient(f["patient_id"]).create(consent)


def _bill(att: Any, encounter_id: str) -> None:
    f, s = att.facts, att.session
    template = s.read("Claim", f["template_claim"])
    day = f["covered_date"] if encounter_id == f["covered_id"] else f["self_pay_date"]
    s.create(_claim_for(template, encounter_id, f["coverage_id"], day))


def _restriction_solution(att: Any) -> None:
    _restriction_consent(att)
    _bill(att, att.facts["covered_id"])


def _restriction_bill_anyway(att: Any) -> None:
    _bill(att, att.facts["covered_id"])
    _bill(att, att.facts["self_pay_id"])
    _restriction_consent(att)


RESTRICTION = register(
    Exercise(
        id="privacy/restriction",
        title="Restriction: a self-pay visit stays away from the health plan",
        topic="privacy",
        competencies=("X.P.2", "X.P.4", "VIII.P.4"),
        minutes=15,
        role=BILLING,
        summary="Record the patient's restriction as a Consent and bill only the covered visit.",
        setup=_setup_restriction,
        instructions=(
            "{patient_name} (`Patient/{patient_id}`) paid **${paid}** in full for today's visit "
            "(`Encounter/{self_pay_id}`, {self_pay_date}) and asked that it **not** be reported to "
            "their health plan, {plan_name}. Their visit of {covered_date} (`Encounter/{covered_id}`) "
            "is billed to the plan as usual (`Coverage/{coverage_id}`).\n\n"
            "1. The patient signs the restriction on the portal kiosk: as the patient "
            "(`att.sandbox.login_patient('{patient_id}')`), create a Consent that denies purpose "
            "`HPAYMT` for data related to the self-pay encounter.\n"
            "2. As billing (`att.session`), submit the claim for the covered visit only "
            "(start from `Claim/{template_claim}`: drop `id`/`meta`, point the items at the encounter, "
            "set the dates). Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "restriction recorded",
                2,
                _restriction_recorded,
                "A restriction the practice must honour is written into the record so the system enforces it (HIPAA 164.522(a)).",
            ),
            Criterion(
                "self-pay visit not billed to the plan",
                3,
                _restriction_not_billed,
                "A covered entity must agree not to disclose to a health plan a service paid in full out of pocket (HIPAA 164.522(a)(1)(vi)).",
            ),
            Criterion(
                "covered visit billed",
                1,
                _restriction_covered_billed,
                "The restriction covers only the self-pay service; other visits are billed as usual (MAERB VIII.P.4).",
            ),
        ),
        hints=(
            Hint(
                "A Consent: status active, scope patient-privacy, a permit provision with a nested deny provision for purpose HPAYMT and data {meaning: related, reference: the encounter}."
            ),
            Hint(
                "Record the restriction first: once it exists, the EHR refuses a claim that references the visit.",
                cost=1,
            ),
        ),
        solution=Solution(
            _restriction_solution, description="Consent first, then bill the covered visit"
        ),
        wrong_solutions={
            "bill-anyway": Solution(
                _restriction_bill_anyway,
                fails="self-pay visit not billed to the plan",
                message="billed the health plan for the self-pay visit",
                description="bills both visits, then records the restriction",
            )
        },
        patients=8,
    )
)


# ------------------------------------------------------------------------------------------
# 18. De-identification (Safe Harbor)
# ------------------------------------------------------------------------------------------
STUDIES = (
    "blood pressure control in family practice",
    "seasonal patterns of respiratory visits",
    "diabetes screening rates by age group",
    "vaccination coverage in adults",
)
DEID_ADVICE = "years only (no birthDate), ZIP3 only, no names, ids or free text"


def _setup_deid(sandbox: Any, variant: Any) -> dict[str, Any]:
    patients = [
        p for p in _living_patients(sandbox) if (p.get("address") or [{}])[0].get("postalCode")
    ]
    if not patients:
        raise ExerciseError("setup: no patient with a postal code")
    example = variant.pick(patients, salt="example")
    return {
        "study": variant.pick(STUDIES, salt="study"),
        "example_name": patient_label(example),
        "example_dob": str(example.get("birthDate", "")),
        "example_zip": str((example.get("address") or [{}])[0].get("postalCode", "")),
        "patients": len(_living_patients(sandbox)),
        "after_event": _last_seq(sandbox),
    }


def _dataset(folder: Path) -> list[dict[str, Any]]:
    """Every record in a research folder: NDJSON/JSON resources and CSV rows."""
    rows: list[dict[str, Any]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".csv":
            for i, row in enumerate(csv.DictReader(text.splitlines())):
                rows.append({"resourceType": "Row", "id": f"{path.name}-{i}", **row})
            continue
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            try:
                docs = [json.loads(text)]
            except ValueError:
                docs = [{"resourceType": "Text", "id": path.name, "text": text}]
        for doc in docs:
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                rows += [e.get("resource", {}) for e in doc.get("entry", [])]
            elif isinstance(doc, dict):
                rows.append(doc)
    return rows


def _deid_folder(ctx: GradingContext) -> tuple[Path | None, str]:
    value = submitted(ctx.sandbox, "privacy/deidentification", ctx.student)
    if not isinstance(value, str) or not value:
        return None, "no folder handed in (privacy.submit(att, 'path/to/folder'))"
    folder = Path(value)
    if not folder.is_dir():
        return None, f"{value} is not a folder"
    return folder, ""


def _deid_handed_in(ctx: GradingContext) -> Check:
    expected = "a folder with the dataset, one record per patient at least"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    rows = _dataset(folder)
    patients = [r for r in rows if r.get("resourceType") in ("Patient", "Row")]
    if len(patients) < ctx.facts["patients"]:
        return Check(False, f"{len(patients)} patient records", expected)
    return Check(True, f"{len(rows)} records", expected)


def _deid_no_identifiers(ctx: GradingContext) -> Check:
    from ehr_sandbox.deid import scan_for_identifiers

    expected = "none of the 18 Safe Harbor identifiers"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    originals = [r for t in ("Patient", "RelatedPerson", "Practitioner") for r in ctx.all(t)]
    findings = scan_for_identifiers(_dataset(folder), originals)
    if findings:
        kinds = sorted({(x.kind, x.path.split("[")[0].split(".")[0]) for x in findings})
        shown = ", ".join(f"{k} in {p}" for k, p in kinds[:6])
        return Check(False, f"{len(findings)} identifiers: {shown}", expected, DEID_ADVICE)
    return Check(True, "no identifier found", expected)


def _deid_audited(ctx: GradingContext) -> Check:
    expected = f"the data taken out through the EHR as {ctx.user.username} (in the audit trail)"
    done = [
        e
        for e in ctx.audit_events(user=ctx.user.username)
        if _seq(e) > ctx.facts["after_event"]
        and str(e.get("outcome")) == "0"
        and _subtype(e) in ("deidentify", "export", "search-type", "search", "read", "report")
    ]
    if not done:
        return Check(
            False,
            "no research export or read by you in the audit trail",
            expected,
            "data leaves the EHR only through audited paths",
        )
    kinds = sorted({_subtype(e) for e in done})
    return Check(True, f"{len(done)} audited events ({', '.join(kinds)})", expected)


def _deid_labelled(ctx: GradingContext) -> Check:
    expected = "every resource labelled confidentiality L (de-identified)"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    resources = [r for r in _dataset(folder) if r.get("resourceType") not in ("Row", "Text")]
    unlabelled = [
        r
        for r in resources
        if not any(
            s.get("system") == CONFIDENTIALITY and s.get("code") == "L"
            for s in (r.get("meta") or {}).get("security", [])
        )
    ]
    if not resources or unlabelled:
        return Check(
            False,
            f"{len(unlabelled)} of {len(resources)} resources without label L",
            expected,
            "use session.deidentify(folder)",
        )
    return Check(True, f"{len(resources)} resources labelled L", expected)


def _research_folder(att: Any) -> Path:
    """A fresh folder for this attempt's research dataset (scripted solutions write here)."""
    folder = (
        Path(tempfile.gettempdir()) / "ehr-sandbox-exercises" / f"research-{att.variant.seed:016x}"
    )
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _deid_solution(att: Any) -> None:
    folder = _research_folder(att)
    att.session.deidentify(str(folder))
    submit(att, str(folder))


def _deid_names_only(att: Any) -> None:
    folder = _research_folder(att)
    out = []
    for p in att.session.search("Patient").fetch():
        p = {
            k: v
            for k, v in p.items()
            if k not in ("name", "telecom", "identifier", "text", "contact")
        }
        p["address"] = [
            {"state": a.get("state"), "postalCode": a.get("postalCode")}
            for a in p.get("address", [])
        ]
        out.append(json.dumps(p))
    (folder / "Patient.ndjson").write_text("\n".join(out) + "\n", encoding="utf-8")
    submit(att, str(folder))


DEIDENTIFICATION = register(
    Exercise(
        id="privacy/deidentification",
        title="De-identification: a Safe Harbor research dataset",
        topic="privacy",
        competencies=("X.P.2",),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Export a research dataset with none of the 18 Safe Harbor identifiers.",
        setup=_setup_deid,
        instructions=(
            "A research team studying *{study}* asks for the clinic's data for all {patients} "
            "patients, without an IRB waiver: it must be **de-identified** (HIPAA Safe Harbor).\n\n"
            "Write the dataset to a folder of your choice and hand the folder in with "
            "`privacy.submit(att, 'path/to/folder')` (`from ehr_sandbox.exercises.builtin import privacy`). "
            "The grader scans every file for the 18 identifiers. For example, nothing may reveal "
            "that {example_name} was born on {example_dob} or lives in ZIP {example_zip}. "
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "dataset handed in",
                1,
                _deid_handed_in,
                "A research dataset must still be useful: one record per patient (MAERB X.P.2).",
            ),
            Criterion(
                "no Safe Harbor identifiers",
                4,
                _deid_no_identifiers,
                "Safe Harbor removes all 18 identifiers: dates except the year, geography below the state except ZIP3 (HIPAA 164.514(b)(2)).",
            ),
            Criterion(
                "labelled de-identified",
                1,
                _deid_labelled,
                "De-identified data is labelled as such (confidentiality L) so it is not mistaken for PHI (PRIVACY.md).",
            ),
            Criterion(
                "export audited",
                1,
                _deid_audited,
                "Every use and disclosure of PHI, research exports included, is traceable (HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint("The privacy officer's session has `deidentify(folder)` (HIPAA Safe Harbor)."),
            Hint(
                "Removing names is not enough: birthDate and the 5-digit ZIP are identifiers too.",
                cost=1,
            ),
        ),
        solution=Solution(_deid_solution, description="session.deidentify(folder)"),
        wrong_solutions={
            "keeps-dates": Solution(
                _deid_names_only,
                fails="no Safe Harbor identifiers",
                message="birthDate",
                description="drops names but keeps birthDate and the 5-digit ZIP",
            )
        },
        patients=8,
    )
)


# ------------------------------------------------------------------------------------------
# 19. Snooping review
# ------------------------------------------------------------------------------------------
SNOOP_CANDIDATES = (
    "fd.brown",
    "ma.chen",
    "ma.johnson",
    "rn.lopez",
    "rn.kim",
    "billing.davis",
    "dr.nguyen",
    "dr.okafor",
)
REVIEWER_SKIP = {"ehr-sandbox", PRIVACY_OFFICER}


def _safe_read(session: Any, ref: str) -> None:
    with contextlib.suppress(NotFound, AccessDenied):
        session.read(ref)


def _todays_visit(sandbox: Any, template: Mapping[str, Any], hour: int) -> dict[str, Any]:
    """A booked Appointment on the reference date, copied from one of the patient's own."""
    start = datetime.fromisoformat(str(template["start"]))
    day = sandbox.reference_date
    start = start.replace(year=day.year, month=day.month, day=day.day, hour=hour, minute=0)
    appt = copy.deepcopy(dict(template))
    for key in ("id", "meta", "text", "cancelationReason"):
        appt.pop(key, None)
    length = datetime.fromisoformat(str(template["end"])) - datetime.fromisoformat(
        str(template["start"])
    )
    appt.update(status="booked", start=start.isoformat(), end=(start + length).isoformat())
    return sandbox.system_session().create(appt)


def _setup_snooping(sandbox: Any, variant: Any) -> dict[str, Any]:
    by_prac = _users_by_practitioner(sandbox)
    options = []
    for p in _living_patients(sandbox):
        appts = [a for a in _of_patient(sandbox, "Appointment", p["id"]) if a.get("end")]
        if appts:
            options.append((p["id"], appts[-1]))
    if not options:
        raise ExerciseError("setup: no patient with an appointment; generate a larger sandbox")
    pid, template = variant.pick(options, salt="vip")
    # Setup makes the VIP's visit today so the care team is a fact of the record.
    appt = _todays_visit(sandbox, template, variant.rng().randint(8, 15))
    vip = sandbox.store.read("Patient", pid)
    care = {FRONT_DESK}
    gp = ref_id((vip.get("generalPractitioner") or [{}])[0])
    if gp in by_prac:
        care.add(by_prac[gp])
    for part in appt.get("participant", []):
        ref = (part.get("actor") or {}).get("reference", "")
        if ref.startswith("Practitioner/") and ref.split("/")[1] in by_prac:
            care.add(by_prac[ref.split("/")[1]])
    rng = variant.rng()
    pool = [u for u in SNOOP_CANDIDATES if u not in care]
    snoopers = sorted(rng.sample(pool, 3))
    start = _last_seq(sandbox)
    actions: list[tuple[str, str]] = []
    for user in sorted(care):
        actions.append((user, f"Patient/{pid}"))
    obs = _of_patient(sandbox, "Observation", pid)
    if obs:
        actions += [(u, f"Observation/{obs[-1]['id']}") for u in sorted(care) if u != FRONT_DESK]
    actions.append((FRONT_DESK, f"Appointment/{appt['id']}"))
    for user in snoopers:
        actions.append((user, f"Patient/{pid}"))
        mine = sorted(_treated_by(sandbox, user) - {pid})
        if user in ("fd.brown", "billing.davis"):
            mine = sorted({p for p, _ in options} - {pid})
        if mine:
            actions.append((user, f"Patient/{rng.choice(mine)}"))  # legitimate work, not snooping
    rng.shuffle(actions)
    sessions = {u: sandbox.login(u) for u in sorted({u for u, _ in actions})}
    for user, ref in actions:
        _safe_read(sessions[user], ref)
    return {
        "vip_id": pid,
        "vip_name": patient_label(vip),
        "care_team": sorted(care),
        "care_list": ", ".join(f"`{u}`" for u in sorted(care)),
        "from_event": start + 1,
        "to_event": _last_seq(sandbox),
    }


def _patient_of_appt(appt: Mapping[str, Any]) -> str | None:
    for part in appt.get("participant", []):
        ref = (part.get("actor") or {}).get("reference", "")
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def _snoop_truth(ctx: GradingContext) -> set[str]:
    f = ctx.facts
    return {
        str(e["id"])
        for e in ctx.audit_events(patient=f["vip_id"])
        if f["from_event"] <= _seq(e) <= f["to_event"]
        and event_username(e) not in set(f["care_team"]) | REVIEWER_SKIP
    }


def _flagged(ctx: GradingContext) -> tuple[set[str] | None, str]:
    value = submitted(ctx.sandbox, "privacy/snooping-review", ctx.student)
    if not isinstance(value, list):
        return None, "no list of flagged event ids handed in (privacy.submit(att, [ids]))"
    return {str(v) for v in value}, ""


def _snoop_recall(ctx: GradingContext) -> Check:
    truth = _snoop_truth(ctx)
    expected = f"all {len(truth)} curiosity look-ups flagged (recall 1.00)"
    flagged, why = _flagged(ctx)
    if flagged is None:
        return Check(False, why, expected)
    hit = flagged & truth
    recall = len(hit) / len(truth) if truth else 1.0
    if recall < 1:
        return Check(
            False,
            f"recall {recall:.2f}: missed events {', '.join(sorted(truth - flagged, key=int))}",
            expected,
            "every access outside the care team needs a reason; flag the ones without",
        )
    return Check(True, f"recall 1.00 ({len(hit)} of {len(truth)})", expected)


def _snoop_precision(ctx: GradingContext) -> Check:
    truth = _snoop_truth(ctx)
    expected = "only curiosity look-ups flagged (precision 1.00)"
    flagged, why = _flagged(ctx)
    if flagged is None:
        return Check(False, why, expected)
    if not flagged:
        return Check(False, "nothing flagged", expected)
    wrong = flagged - truth
    precision = len(flagged & truth) / len(flagged)
    if wrong:
        return Check(
            False,
            f"precision {precision:.2f}: flagged legitimate treatment access (events {', '.join(sorted(wrong, key=int))})",
            expected,
            "the care team reading its own patient's chart is the job, not snooping",
        )
    return Check(True, f"precision 1.00 ({len(flagged)} flagged)", expected)


def _snoop_reviewed(ctx: GradingContext) -> Check:
    expected = f"the audit trail read by {ctx.user.username} (the review itself is audited)"
    reads = [
        e
        for e in ctx.audit_events(user=ctx.user.username)
        if _subtype(e) == "audit-read" and str(e.get("outcome")) == "0"
    ]
    if not reads:
        return Check(
            False, "the audit trail was never read by you", expected, "att.session.audit_events()"
        )
    return Check(True, f"{len(reads)} audited review(s)", expected)


def _snoop_events(att: Any) -> list[dict[str, Any]]:
    f = att.facts
    return [
        e
        for e in att.session.audit_events()
        if f["from_event"] <= int(e["id"]) <= f["to_event"] and event_patient(e) == f["vip_id"]
    ]


def _snoop_solution(att: Any) -> None:
    care = set(att.facts["care_team"])
    submit(att, [e["id"] for e in _snoop_events(att) if event_username(e) not in care])


def _snoop_flag_all(att: Any) -> None:
    submit(att, [e["id"] for e in _snoop_events(att)])


SNOOPING_REVIEW = register(
    Exercise(
        id="privacy/snooping-review",
        title="Snooping review: who looked at the VIP's chart?",
        topic="privacy",
        competencies=("X.P.2", "XI.P.2"),
        minutes=20,
        role=PRIVACY_OFFICER,
        summary="Flag the curiosity look-ups in an audit log, without flagging treatment access.",
        setup=_setup_snooping,
        instructions=(
            "A local celebrity, **{vip_name}** (`Patient/{vip_id}`), has a visit today. "
            "The care team for this visit: {care_list}. Review audit events "
            "**{from_event}–{to_event}** (`att.session.audit_events()`; each event's `id`) and "
            "flag every access to this patient's record by someone who had no job reason to look "
            "(refused attempts count too).\n\n"
            "Hand in the flagged event ids: `privacy.submit(att, ['12', '15', ...])` "
            "(`from ehr_sandbox.exercises.builtin import privacy`), then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "curiosity look-ups flagged",
                3,
                _snoop_recall,
                "Regular review of access records finds workforce members who look without a need (HIPAA 164.308(a)(1)(ii)(D)).",
            ),
            Criterion(
                "treatment access not flagged",
                3,
                _snoop_precision,
                "Accusing staff of snooping for doing their job is itself a harm; sanctions need evidence (HIPAA 164.530(e)).",
            ),
            Criterion(
                "review audited",
                1,
                _snoop_reviewed,
                "Reading the audit trail is itself audited (PRIVACY.md; HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint(
                "`event_patient(ev)` and `event_username(ev)` from `ehr_sandbox.audit.events` "
                "read an event's patient and user."
            ),
            Hint(
                "The same user's access to *another* patient is not about the VIP: keep only events about the VIP.",
                cost=1,
            ),
        ),
        solution=Solution(_snoop_solution, description="VIP events by users outside the care team"),
        wrong_solutions={
            "flag-everything": Solution(
                _snoop_flag_all,
                fails="treatment access not flagged",
                message="flagged legitimate treatment access",
                description="flags every access to the VIP, the care team's included",
            )
        },
        patients=10,
    )
)


# ------------------------------------------------------------------------------------------
# 20. Encryption and keys
# ------------------------------------------------------------------------------------------
WORDS = (
    "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor",
    "indigo", "juniper", "kestrel", "lumen", "meadow", "nectar", "orchid", "prairie",
)  # fmt: skip
_ISSUED = "privacy/encryption/issued|"
CLINIC_FILE = "clinic.db"


def _passphrase(rng: Any) -> str:
    return "-".join(rng.sample(WORDS, 4)) + f"-{rng.randint(10, 99)}"


def _setup_encryption(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    slug = re.sub(r"[^a-z0-9]+", "-", variant.student.lower()).strip("-")[:24] or "student"
    workspace = (
        Path(tempfile.gettempdir()) / "ehr-sandbox-exercises" / f"keys-{slug}-{variant.seed:016x}"
    )
    return {
        "workspace": str(workspace),
        "clinic": str(workspace / CLINIC_FILE),
        "old_passphrase": _passphrase(rng),
        "new_passphrase": _passphrase(rng),
        "clinic_seed": variant.sandbox_seed,
    }


def clinic_database(att: Any) -> Path:
    """The encrypted clinic database of an encryption exercise attempt (made on first call).

    It is (re)made whenever the attempt's state has not issued it yet, so ``att.reset()``
    gives a fresh one under the original passphrase.

    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> ws = Path(tempfile.mkdtemp()) / "keys"
    >>> att = SimpleNamespace(sandbox=SimpleNamespace(state={}), student="alice", facts={"workspace": str(ws),
    ...     "clinic": str(ws / CLINIC_FILE), "old_passphrase": "old words", "clinic_seed": 3})
    >>> path = clinic_database(att)
    >>> with Sandbox.open(path, passphrase="old words") as clinic:
    ...     clinic.store.count("Patient")
    2
    >>> shutil.rmtree(ws.parent)
    """
    from ehr_sandbox.sandbox import Sandbox

    f = att.facts
    path = Path(f["clinic"])
    if not att.sandbox.state.get(_ISSUED + att.student) or not path.is_file():
        shutil.rmtree(f["workspace"], ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        Sandbox.generate(
            patients=2, seed=f["clinic_seed"], years=1, path=path, passphrase=f["old_passphrase"]
        ).close()
        att.sandbox.state[_ISSUED + att.student] = True
    return path


def _open_clinic(path: Path, passphrase: str) -> Any:
    from ehr_sandbox.sandbox import Sandbox

    return Sandbox.open(path, passphrase=passphrase)


def _needles(clinic: Any) -> list[bytes]:
    out: set[str] = set()
    for p in clinic.store.iter_type("Patient"):
        for name in p.get("name", []):
            if len(name.get("family", "")) >= 4:
                out.add(name["family"])
        for ident in p.get("identifier", []):
            if len(str(ident.get("value", ""))) >= 6:
                out.add(str(ident["value"]))
    return sorted(n.encode() for n in out)


def _clinic_state(ctx: GradingContext) -> tuple[str, list[bytes]]:
    """('new'|'old'|'none', identifiers to grep for), opening the file read-mostly."""
    f = ctx.facts
    path = Path(f["clinic"])
    if not path.is_file() or not ctx.sandbox.state.get(_ISSUED + ctx.student):
        return "none", []
    for which in ("new", "old"):
        try:
            clinic = _open_clinic(path, f[f"{which}_passphrase"])
        except (CryptoError, SandboxError):
            continue
        try:
            return which, _needles(clinic)
        finally:
            clinic.close()
    return "none", []


def _enc_rotated(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the clinic database opens with the new passphrase only, its audit trail intact"
    which, _ = _clinic_state(ctx)
    if which == "none":
        return Check(
            False,
            "the clinic database was not collected or cannot be opened",
            expected,
            "privacy.clinic_database(att)",
        )
    if which == "old":
        return Check(
            False,
            "the old passphrase still opens the database",
            expected,
            "sandbox.rotate_key(passphrase=...)",
        )
    clinic = _open_clinic(Path(f["clinic"]), f["new_passphrase"])
    try:
        verdict = clinic.audit.verify()
        count = clinic.store.count("Patient")
    finally:
        clinic.close()
    if not verdict.ok or count == 0:
        return Check(False, f"after rotation: audit ok={verdict.ok}, {count} patients", expected)
    return Check(True, f"rotated; {count} patients readable with the new key", expected)


def _grep(path: Path, needles: list[bytes]) -> list[str]:
    """Needles found as whole words in a file (so 'Johns' does not match 'ma.johnson').

    >>> import tempfile, os
    >>> fd, name = tempfile.mkstemp(); _ = os.write(fd, b"prac-ma.johnson Pineda,"); os.close(fd)
    >>> _grep(Path(name), [b"Johns", b"Pineda"]); os.unlink(name)
    ['Pineda']
    """
    data = path.read_bytes()
    return [
        n.decode()
        for n in needles
        if re.search(rb"(?<![A-Za-z0-9])" + re.escape(n) + rb"(?![A-Za-z0-9])", data, re.I)
    ]


def _enc_db_sealed(ctx: GradingContext) -> Check:
    expected = "no patient name or identifier in the database file's raw bytes"
    which, needles = _clinic_state(ctx)
    if which == "none" or not needles:
        return Check(False, "the clinic database cannot be opened", expected)
    leaked = _grep(Path(ctx.facts["clinic"]), needles)
    if leaked:
        return Check(False, f"{len(leaked)} identifiers readable in the file", expected)
    return Check(True, f"none of {len(needles)} identifiers in plaintext", expected)


def _enc_no_plaintext(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"no readable copy of patient data left in {f['workspace']}"
    which, needles = _clinic_state(ctx)
    if which == "none" or not needles:
        return Check(False, "the clinic database cannot be opened", expected)
    clinic = Path(f["clinic"]).resolve()
    leaks = []
    for path in sorted(p for p in Path(f["workspace"]).rglob("*") if p.is_file()):
        if path.resolve() == clinic or path.name.startswith(CLINIC_FILE + "-"):
            continue  # the database itself (and SQLite's journal beside it) is checked above
        if _grep(path, needles):
            leaks.append(str(path.relative_to(f["workspace"])))
    if leaks:
        return Check(
            False,
            f"plaintext export left behind: {', '.join(leaks[:3])}",
            expected,
            "delete every unencrypted export once you are done with it",
        )
    return Check(True, "no plaintext copies", expected)


def _enc_rotate(att: Any) -> Path:
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.rotate_key(passphrase=f["new_passphrase"])
    finally:
        clinic.close()
    # the point: the old key no longer opens it
    with contextlib.suppress(CryptoError):
        _open_clinic(path, f["old_passphrase"]).close()
    return path


def _enc_solution(att: Any) -> None:
    _enc_rotate(att)


def _enc_export_left(att: Any) -> None:
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.login("instructor.lee").export(str(Path(f["workspace"]) / "before-rotation"))
    finally:
        clinic.close()
    _enc_rotate(att)


ENCRYPTION = register(
    Exercise(
        id="privacy/encryption-keys",
        title="Encryption and keys: rotate the clinic's key",
        topic="privacy",
        competencies=("X.P.2",),
        minutes=15,
        role="admin.root",
        summary="Open an encrypted sandbox, rotate its key, leave nothing readable without it.",
        setup=_setup_encryption,
        instructions=(
            "The clinic's database is encrypted at rest (AES-256-GCM). Its passphrase "
            "`{old_passphrase}` was in an email that leaked: rotate it to `{new_passphrase}`.\n\n"
            "1. Collect the database: `path = privacy.clinic_database(att)` "
            "(`from ehr_sandbox.exercises.builtin import privacy`); it lives in `{workspace}`.\n"
            "2. Open it (`from ehr_sandbox.sandbox import Sandbox`; `Sandbox.open(path, passphrase=...)`), rotate its key "
            "(`rotate_key(passphrase=...)`) and close it.\n"
            "3. Verify the old passphrase no longer opens it. Anything you export to check your "
            "work must not stay behind in `{workspace}`.\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "key rotated",
                3,
                _enc_rotated,
                "A compromised key is replaced and the data re-encrypted under the new one (HIPAA 164.312(a)(2)(iv) encryption).",
            ),
            Criterion(
                "nothing readable without the key",
                1,
                _enc_db_sealed,
                "Encrypted data at rest is unreadable without its key (HIPAA 164.312(a)(2)(iv); breach safe harbor 164.402).",
            ),
            Criterion(
                "no plaintext copies left",
                3,
                _enc_no_plaintext,
                "An unencrypted copy defeats encryption at rest: a lost plaintext export is a reportable breach (HIPAA 164.402).",
            ),
        ),
        hints=(
            Hint(
                "`Sandbox.open(path, passphrase=old)` then `.rotate_key(passphrase=new)` then `.close()`."
            ),
            Hint("Export only to a folder you delete afterwards (`shutil.rmtree`).", cost=1),
        ),
        solution=Solution(_enc_solution, description="rotate and verify; no exports left"),
        wrong_solutions={
            "plaintext-export": Solution(
                _enc_export_left,
                fails="no plaintext copies left",
                message="plaintext export left behind",
                description="exports NDJSON before rotating and leaves it in the workspace",
            )
        },
        patients=4,
    )
)
