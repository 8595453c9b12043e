"""Catalogue item 15 of EXERCISES.md: Release of information.

Defines and registers ``privacy/release-of-information`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.privacy.common import (
    _disclosures_to,
    _living_patients,
    _of_patient,
    _reads_logged,
    _treated_by,
    disclose,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

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
        # R4B ppc-1: a Consent names its policy (HIPAA Privacy Rule, 45 CFR 164.508)
        "policy": [{"uri": "https://www.ecfr.gov/current/title-45/section-164.508"}],
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
