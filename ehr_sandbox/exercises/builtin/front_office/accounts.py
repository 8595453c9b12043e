"""Catalogue item 37 (part): provisioning and de-provisioning users, with an access review.

HR's memo: a new hire starts next working day, a staff member left yesterday. The periodic
access review also finds a student-extern account whose end date has passed but which is
still active. The administrator gives the new hire the least-privilege role for the job, ends
the leaver's access, acts on the review, and changes no other account.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.front_office.common import ADMIN, check, next_workday, written
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import maintenance

__all__ = ["ACCOUNTS"]

USERNAME = maintenance.USERNAME_SYSTEM
HIRES = (
    ("Receptionist", "fd", "front_desk"),
    ("Billing specialist", "billing", "billing"),
    ("Medical assistant", "ma", "medical_assistant"),
    ("Registered nurse", "rn", "nurse"),
)
LEAVERS = ("fd.brown", "ma.chen", "ma.johnson", "rn.lopez")
FAMILIES = ("Okonkwo", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Reyes", "Ibrahim")
GIVEN = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gwen", "Hugo")


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    adm = sandbox.login(ADMIN)
    today = sandbox.reference_date
    fam_temp, fam_new = rng.sample(FAMILIES, 2)
    temp_user = f"st.{fam_temp.lower()}"
    maintenance.provision_user(
        adm,
        username=temp_user,
        given=rng.choice(GIVEN),
        family=fam_temp,
        job_title="Medical assistant",
        role="medical_assistant",
        start=(today - timedelta(days=70)).isoformat(),
        end=(today - timedelta(days=3)).isoformat(),
    )
    job, prefix, _role = variant.pick(HIRES, salt="hire")
    leaver = variant.pick(LEAVERS, salt="leaver")
    new_user = f"{prefix}.{fam_new.lower()}"
    return Scenario(
        facts={
            "new_given": rng.choice(GIVEN),
            "new_family": fam_new,
            "new_username": new_user,
            "job_title": job,
            "start": next_workday(today).isoformat(),
            "leaver": leaver,
            "last_day": (today - timedelta(days=1)).isoformat(),
            "temp_user": temp_user,
            "temp_end": (today - timedelta(days=3)).isoformat(),
        },
        answer={"role": _role},
    )


def _account(
    ctx: GradingContext, username: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    prac = next(
        (
            p
            for p in ctx.all("Practitioner")
            if any(
                i.get("system") == USERNAME and i.get("value") == username
                for i in p.get("identifier", [])
            )
        ),
        None,
    )
    if prac is None:
        return None, []
    roles = [
        r
        for r in ctx.all("PractitionerRole")
        if r.get("practitioner", {}).get("reference") == f"Practitioner/{prac['id']}"
    ]
    return prac, roles


def _role_code(r: dict[str, Any]) -> str | None:
    return next((c.get("code") for cc in r.get("code", []) for c in cc.get("coding", [])), None)


def _new(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = f"an account {f['new_username']} with the least-privilege role for a {f['job_title']}, starting {f['start']}"
    prac, roles = _account(ctx, f["new_username"])
    if prac is None or not roles:
        return check(False, "no such account", expected, "create the account before the first day")
    codes = {_role_code(r) for r in roles}
    if codes != {ctx.answer["role"]}:
        return check(
            False,
            f"roles {sorted(c or '' for c in codes)}",
            expected,
            "give the least privilege the job needs (HIPAA 164.308(a)(4))",
        )
    if any((r.get("period") or {}).get("start") != f["start"] for r in roles):
        return check(
            False,
            f"start {[(r.get('period') or {}).get('start') for r in roles]}",
            expected,
            "the account starts on the first working day",
        )
    name = (prac.get("name") or [{}])[0]
    if str(name.get("family", "")).strip().casefold() != f["new_family"].casefold() or f[
        "new_given"
    ].casefold() not in {str(g).strip().casefold() for g in name.get("given", [])}:
        return check(
            False,
            f"{f['new_username']} is named {patient_label(prac)}",
            expected,
            "the account is the new hire's, in their name as HR gave it: the audit trail "
            "names a person by it",
        )
    if (
        any((r.get("period") or {}).get("end") for r in roles)
        or not prac.get("active", True)
        or not all(r.get("active", True) for r in roles)
    ):
        return check(
            False,
            f"end {[(r.get('period') or {}).get('end') for r in roles]}, active "
            f"{[prac.get('active', True), *(r.get('active', True) for r in roles)]}",
            expected,
            "a new hire's access is open-ended: an end date (or an inactive account) locks them "
            "out on a day nobody chose",
        )
    return check(True, f"{f['new_username']} provisioned", expected)


def _leaver(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = f"{f['leaver']}'s access ended on the last day worked and the account deactivated"
    prac, roles = _account(ctx, f["leaver"])
    if prac is None:
        return check(False, "account missing", expected, "end access, never delete the account")
    if prac.get("active", True) or any(
        r.get("active", True) or (r.get("period") or {}).get("end") != f["last_day"] for r in roles
    ):
        return check(
            False,
            f"Practitioner active={prac.get('active', True)}, roles {[((r.get('period') or {}).get('end'), r.get('active', True)) for r in roles]}",
            expected,
            "end a leaver's access with the last day worked (HIPAA 164.308(a)(3)(ii)(C) termination procedures)",
        )
    return check(True, "access ended", expected)


def _review(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the account the access review flags deactivated, its end date kept"
    prac, roles = _account(ctx, f["temp_user"])
    if not roles or any(r.get("active", True) for r in roles):
        return check(
            False,
            f"{f['temp_user']} still active",
            expected,
            "act on the access review: deactivate accounts past their end date",
        )
    if any((r.get("period") or {}).get("end") != f["temp_end"] for r in roles):
        return check(
            False,
            f"{f['temp_user']} end date changed",
            expected,
            "deactivate the account and keep its end date: the review's evidence must stay true",
        )
    return check(True, "review acted on", expected)


def _nobody_else(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "no other account changed"
    allowed = set()
    for u in (f["new_username"], f["leaver"], f["temp_user"]):
        prac, roles = _account(ctx, u)
        if prac:
            allowed.add(f"Practitioner/{prac['id']}")
        allowed |= {f"PractitionerRole/{r['id']}" for r in roles}
    others = sorted(
        {
            f"{v['resourceType']}/{v['id']}"
            for t in ("Practitioner", "PractitionerRole")
            for v in written(ctx, t)
        }
        - allowed
    )
    if others:
        return check(
            False,
            f"also changed {others}",
            expected,
            "change only the accounts the memo and the review name",
        )
    return check(True, "no other account changed", expected)


def _provision(att: Any, role: str | None = None, given: str | None = None) -> None:
    f = att.facts
    r = role or maintenance.role_for(f["job_title"])
    maintenance.provision_user(
        att.session,
        username=f["new_username"],
        given=given or f["new_given"],
        family=f["new_family"],
        job_title=f["job_title"],
        role=r,
        start=f["start"],
    )


def _solution(att: Any, *, review: bool = True, given: str | None = None) -> None:
    """The reference (wrong solutions: ``review`` False skips the access review; ``given``
    provisions the new hire under another given name)."""
    s, f = att.session, att.facts
    _provision(att, given=given)
    maintenance.deprovision_user(
        s, f["leaver"], last_day=f["last_day"], reason="resigned (HR memo)"
    )
    if review:
        for finding in maintenance.access_review(s):
            maintenance.deprovision_user(
                s,
                finding["username"],
                last_day=finding["end"] or f["last_day"],
                reason=f"access review: {finding['finding']}",
            )


def _new_hire_ends_day_one(att: Any) -> None:
    """Everything right, but the new hire's access given an end date on their first day."""
    s, f = att.session, att.facts
    maintenance.provision_user(
        s,
        username=f["new_username"],
        given=f["new_given"],
        family=f["new_family"],
        job_title=f["job_title"],
        role=maintenance.role_for(f["job_title"]),
        start=f["start"],
        end=f["start"],
    )
    maintenance.deprovision_user(
        s, f["leaver"], last_day=f["last_day"], reason="resigned (HR memo)"
    )
    for finding in maintenance.access_review(s):
        maintenance.deprovision_user(
            s,
            finding["username"],
            last_day=finding["end"] or f["last_day"],
            reason=f"access review: {finding['finding']}",
        )


def _broad_role(att: Any) -> None:
    s, f = att.session, att.facts
    url = "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001"
    s.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": url,
                    "resource": {
                        "resourceType": "Practitioner",
                        "active": True,
                        "identifier": [{"system": USERNAME, "value": f["new_username"]}],
                        "name": [{"family": f["new_family"], "given": [f["new_given"]]}],
                    },
                    "request": {"method": "POST", "url": "Practitioner"},
                },
                {
                    "resource": {
                        "resourceType": "PractitionerRole",
                        "active": True,
                        "period": {"start": f["start"]},
                        "practitioner": {"reference": url},
                        "code": [
                            {
                                "coding": [
                                    {"system": maintenance.ROLE_SYSTEM, "code": "physician"}
                                ],
                                "text": f["job_title"],
                            }
                        ],
                    },
                    "request": {"method": "POST", "url": "PractitionerRole"},
                },
            ],
        }
    )
    maintenance.deprovision_user(s, f["leaver"], last_day=f["last_day"], reason="resigned")
    for finding in maintenance.access_review(s):
        if finding["username"] == f["temp_user"]:
            maintenance.deprovision_user(
                s, finding["username"], last_day=finding["end"], reason="access review"
            )


def _wrong_account(att: Any) -> None:
    _solution(att)
    maintenance.deprovision_user(
        att.session, "ma.garcia", last_day=att.facts["last_day"], reason="thought she left"
    )


def _extended(att: Any) -> None:
    s, f = att.session, att.facts
    _provision(att)
    maintenance.deprovision_user(s, f["leaver"], last_day=f["last_day"], reason="resigned")
    for a in maintenance.accounts(s):
        if a["username"] == f["temp_user"]:
            r = s.read(a["role_ref"])
            s.update({**r, "period": {**r["period"], "end": "2026-12-31"}})


ACCOUNTS = Exercise(
    id="front-office/accounts-review",
    skip_traps=(
        "done-twice",
        "one-more-record",
    ),  # the EHR refuses the repeat (the accounts were already changed)
    title="Provisioning and de-provisioning users, with an access review",
    topic="front-office",
    topics=("ehr-maintenance", "privacy-security"),
    competencies=("X.P.2", "VI.P.6"),
    minutes=15,
    role=ADMIN,
    summary="New hire with least privilege, leaver ended on the last day, access-review finding acted on, nothing else touched.",
    setup=_setup,
    instructions=(
        "HR memo:\n\n- **New hire**: {new_given} {new_family}, *{job_title}*, starts **{start}**; username `{new_username}`.\n"
        "- **Leaver**: `{leaver}`, last day worked **{last_day}**.\n\n"
        "Set up the accounts, then run this month's access review (`maintenance.access_review(session)`) and act on it."
    ),
    criteria=(
        Criterion(
            "new account with least privilege",
            2,
            _new,
            "Workforce members get only the access their job needs (HIPAA 164.308(a)(4) information access management).",
        ),
        Criterion(
            "leaver's access ended",
            2,
            _leaver,
            "Access ends when employment ends (HIPAA 164.308(a)(3)(ii)(C) termination procedures).",
        ),
        Criterion(
            "access review acted on",
            2,
            _review,
            "Periodic access reviews only help when their findings are fixed (ONC SAFER Guides: system configuration).",
        ),
        Criterion(
            "no other account changed",
            1,
            _nobody_else,
            "Changing colleagues' access by mistake locks out care or leaves doors open (HIPAA 164.308(a)(4)).",
        ),
    ),
    expects=(
        Expect("Practitioner", ops=("create", "update")),
        Expect("PractitionerRole", ops=("create", "update")),
    ),
    hints=(
        Hint(
            "`maintenance.role_for(job_title)`, `maintenance.provision_user(...)`, `maintenance.deprovision_user(...)`, `maintenance.access_review(...)`."
        ),
    ),
    solution=Solution(
        _solution,
        description="provision, deprovision the leaver, deprovision what the review flags",
    ),
    wrong_solutions={
        "new-hire-misnamed": Solution(
            lambda att: _solution(att, given=next(g for g in GIVEN if g != att.facts["new_given"])),
            fails="new account with least privilege",
            message="in their name as HR gave it",
            description="the new hire's account in another given name (any name scored full "
            "marks before)",
        ),
        "new-hire-ends-day-one": Solution(
            _new_hire_ends_day_one,
            fails="new account with least privilege",
            message="a new hire's access is open-ended",
            description="the new hire's access given an end date on their first day",
        ),
        "broad-role": Solution(
            _broad_role,
            fails="new account with least privilege",
            message="least privilege",
            description="gave the new hire the physician role",
        ),
        "review-skipped": Solution(
            lambda att: _solution(att, review=False),
            fails="access review acted on",
            message="act on the access review",
            description="did not act on the access review",
        ),
        "ended-wrong-account": Solution(
            _wrong_account,
            fails="no other account changed",
            message="change only the accounts",
            description="also ended a colleague's account",
        ),
        "extended-the-flagged-account": Solution(
            _extended,
            fails="access review acted on",
            message="act on the access review",
            description="moved the flagged account's end date instead",
        ),
    },
)
