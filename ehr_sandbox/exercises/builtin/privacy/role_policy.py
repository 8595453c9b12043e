"""Catalogue item 13 of EXERCISES.md: Role policy.

Defines and registers ``privacy/role-policy`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from ehr_sandbox.audit.events import event_username
from ehr_sandbox.errors import ExerciseError, NotFound
from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.privacy.common import (
    PRIVACY_OFFICER,
    SUBMIT_KIND,
    event_entity_ref,
    living_patients,
    records_of_patient,
    submit,
    submitted_answer,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from ehr_sandbox.exercises.registry import register

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
FRONT_DESK_USERS = ("fd.smith", "fd.brown")
_PERMS = re.compile(r"^c?r?u?d?s?$")
WILDCARD_ADVICE = "grant each resource type the job needs; never a wildcard grant"


def _setup_role_policy(sandbox: Any, variant: Any) -> dict[str, Any]:
    patients = living_patients(sandbox)
    with_appt = [p for p in patients if records_of_patient(sandbox, "Appointment", p["id"])]
    if not with_appt:
        raise ExerciseError("setup: no patient with an appointment; generate a larger sandbox")
    patient = variant.pick(with_appt, salt="patient")
    pid = patient["id"]
    clinical = [t for t in CLINICAL_PROBES if records_of_patient(sandbox, t, pid)]
    chosen = sorted(variant.rng().sample(clinical, min(3, len(clinical))))
    probes = [
        f"Patient/{pid}",
        f"Appointment/{records_of_patient(sandbox, 'Appointment', pid)[0]['id']}",
    ]
    coverage = records_of_patient(sandbox, "Coverage", pid)
    if coverage:
        probes.append(f"Coverage/{coverage[0]['id']}")
    probes += [f"{t}/{records_of_patient(sandbox, t, pid)[0]['id']}" for t in chosen]
    fd_user = variant.pick(list(FRONT_DESK_USERS), salt="fd")
    return {
        "patient_name": patient_label(patient),
        "fd_user": fd_user,
        "matrix_types": list(ALLOWED_FRONT_DESK) + chosen,
        "matrix_list": ", ".join(f"`{t}`" for t in list(ALLOWED_FRONT_DESK) + chosen),
        "clinical_types": chosen,
        "probes": probes,
        "probe_list": "\n".join(f"- `{r}`" for r in probes),
    }


def _matrix(ctx: GradingContext) -> tuple[dict[str, str] | None, str]:
    value = submitted_answer(ctx, "privacy/role-policy")
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
    from ehr_sandbox.access.roles import GROUPS

    return GROUPS


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


def _clinical_types() -> list[str]:
    groups = _role_groups()
    return sorted({*groups.get("clinical_record", ()), *groups.get("notes", ())})


def _front_desk_job() -> set[str]:
    """The resource types the front desk's job needs: its grants in the role table
    (``roles.toml`` [roles.front_desk], groups expanded)."""
    from ehr_sandbox.access.roles import ROLES

    return set(ROLES["front_desk"].grants)


def _role_clinical(ctx: GradingContext) -> Check:
    types = ctx.facts["clinical_types"]
    expected = (
        f"no permission at all on {', '.join(types)} or any other clinical type, nor on any "
        "type beyond the front desk's job"
    )
    matrix, why = _matrix(ctx)
    if matrix is None:
        return Check(False, why, expected)
    extra = sorted(t for t in matrix if t in _clinical_types() and t not in types)
    granted = [f"{t} '{_grants(matrix, t)}'" for t in [*types, *extra] if _grants(matrix, t)]
    if granted:
        return Check(
            False,
            f"clinical data granted: {', '.join(granted)}",
            expected,
            "minimum necessary: the front desk sees no clinical data",
        )
    job = _front_desk_job()
    beyond = [
        f"{t} '{v}'"
        for t, v in sorted(matrix.items())
        if v and "*" not in t and t not in job and t not in _role_groups()
    ]
    if beyond:
        return Check(
            False,
            f"data beyond the front desk's job granted: {', '.join(beyond)}",
            expected,
            "minimum necessary: the front desk sees demographics, the schedule and insurance; "
            "not claims, messages or audit records",
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


def _role_no_delete(ctx: GradingContext) -> Check:
    expected = "no delete ('d') on any type: records are corrected or voided, never deleted"
    matrix, why = _matrix(ctx)
    if matrix is None:
        return Check(False, why, expected)
    deleting = sorted(k for k, v in matrix.items() if "d" in v)
    if deleting:
        return Check(
            False,
            f"delete rights on {', '.join(deleting)}",
            expected,
            "nobody deletes from a legal record; the front desk least of all",
        )
    return Check(True, "no delete rights", expected)


def _role_verified(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"{f['fd_user']} tried each probe resource ({len(f['probes'])}) in the live sandbox"
    tried = {event_entity_ref(e) for e in ctx.events() if event_username(e) == f["fd_user"]}
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
    fd = att.login(att.facts["fd_user"])
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


def _role_delete_rights(att: Any) -> None:
    f = att.facts
    submit(att, {t: ("cruds" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]})
    _probe_as_front_desk(att)


def _role_billing_and_messages(att: Any) -> None:
    # Clinical types denied, but claims (diagnoses), messages and the audit trail granted.
    f = att.facts
    matrix = {t: ("crus" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]}
    matrix.update(Claim="rs", ExplanationOfBenefit="rs", Communication="rs", AuditEvent="rs")
    submit(att, matrix)
    _probe_as_front_desk(att)


def _role_extra_clinical(att: Any) -> None:
    # The listed clinical types are denied, but other clinical rows are granted "to be safe".
    f = att.facts
    matrix = {t: ("crus" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]}
    matrix.update({t: "rs" for t in ("Procedure", "DiagnosticReport") if t not in matrix})
    submit(att, matrix)
    _probe_as_front_desk(att)


def _role_wrong_clerk(att: Any) -> None:
    # The probes are tried as the other front-desk clerk, not as the new hire.
    f = att.facts
    submit(att, {t: ("crus" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]})
    other = next(u for u in FRONT_DESK_USERS if u != f["fd_user"])
    fd = att.login(other)
    for ref in f["probes"]:
        with contextlib.suppress(NotFound):
            fd.read(ref)


def _role_state_hand_in(att: Any) -> None:
    # Answer-key attack: the matrix is written into the sandbox's state, around the EHR.
    f = att.facts
    matrix = {t: ("crus" if t in ALLOWED_FRONT_DESK else "") for t in f["matrix_types"]}
    att.sandbox.state[f"handin/{att.exercise.id}|{att.student}"] = matrix
    _probe_as_front_desk(att)


ROLE_POLICY = register(
    Exercise(
        id="privacy/role-policy",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
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
            "(`fd = att.login('{fd_user}')`) and try to read each of these resources of "
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
                "no delete rights",
                1,
                _role_no_delete,
                "A legal health record keeps every entry: errors are corrected or voided with a reason, never deleted (HIPAA 164.312(c)(1) integrity).",
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
        topics=("privacy-security",),
        expects=(Expect(SUBMIT_KIND),),
        actors=FRONT_DESK_USERS,
        wrong_solutions={
            "delete-rights": Solution(
                _role_delete_rights,
                fails="no delete rights",
                message="delete rights",
                description="'cruds' on the front desk's types",
            ),
            "billing-and-messages": Solution(
                _role_billing_and_messages,
                fails="clinical data denied",
                message="data beyond the front desk's job",
                description="denies the clinical types but grants claims, messages and the audit trail",
            ),
            "extra-clinical-rows": Solution(
                _role_extra_clinical,
                fails="clinical data denied",
                message="clinical data granted",
                description="denies the listed clinical types but grants Procedure and DiagnosticReport",
            ),
            "probed-as-other-clerk": Solution(
                _role_wrong_clerk,
                fails="policy checked as the front desk",
                message="no access attempt by",
                description="tries the probes as the other front-desk clerk",
            ),
            "hand-in-around-the-ehr": Solution(
                _role_state_hand_in,
                fails="no wildcard grants",
                message="no matrix handed in",
                description="writes the matrix into the sandbox state instead of handing it in (answer-key attack)",
            ),
            "wildcard": Solution(
                _role_wildcard,
                fails="no wildcard grants",
                message="wildcard grant",
                description="{'*': 'crus'}",
            ),
        },
        patients=8,
    )
)
