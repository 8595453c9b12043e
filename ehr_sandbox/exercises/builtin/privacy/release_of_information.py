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
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.builtin.privacy.common import (
    disclose,
    disclosure_events,
    disclosures_to,
    living_patients,
    reads_logged,
    records_of_patient,
    submit,
    submitted_answer,
    treated_by,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from synthetic.systems import (
    CONSENT_ACTION,
    CONSENT_SCOPE,
    HIPAA_164_508,
    RESOURCE_TYPES,
    V3_ACT_CODE,
    V3_PARTICIPATION_TYPE,
)

ACT_CODE = V3_ACT_CODE

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
ROI_PURPOSE = "PATRQT"
"""The purpose of a release under the patient's authorization (v3-ActReason: patient requested)."""
ROI_ADVICE = "check the authorization's expiry, recipient and scope before releasing anything"


def _authorization(
    pid: str, org_ref: str, classes: list[str], start: date, end: date, signed: date
) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        # R4B ppc-1: a Consent names its policy (HIPAA Privacy Rule, 45 CFR 164.508)
        "policy": [{"uri": HIPAA_164_508}],
        "scope": {
            "coding": [
                {
                    "system": CONSENT_SCOPE,
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": V3_ACT_CODE,
                        "code": "IDSCL",
                        "display": "information disclosure",
                    }
                ]
            }
        ],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": signed.isoformat(),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": V3_PARTICIPATION_TYPE,
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
                            "system": CONSENT_ACTION,
                            "code": "disclose",
                        }
                    ]
                }
            ],
            "class": [{"system": RESOURCE_TYPES, "code": c} for c in classes],
        },
    }


def _setup_roi(sandbox: Any, variant: Any) -> Scenario:
    treated = treated_by(sandbox, ROI_PHYSICIAN)
    options = []
    for p in living_patients(sandbox):
        if p["id"] in treated:
            have = [c for c in ROI_CLASSES if records_of_patient(sandbox, c, p["id"])]
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
    answer: dict[str, Any] = {}
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
        if expired:
            answer.update(
                expired_ref=f"Organization/{org['id']}",
                expired_name=name,
                expired_auth=f"Consent/{consent['id']}",
                expired_end=end.isoformat(),
            )
        else:
            answer.update(
                valid_ref=f"Organization/{org['id']}",
                valid_name=name,
                valid_auth=f"Consent/{consent['id']}",
                classes=list(classes),
            )
    answer["in_scope"] = sorted(
        f"{c}/{r['id']}"
        for c in answer["classes"]
        for r in records_of_patient(sandbox, c, patient["id"])
    )
    return Scenario(
        facts=facts,
        answer=answer,
        protect=(answer["valid_auth"], answer["expired_auth"]),
    )


def _auth_of(consent: Mapping[str, Any] | None) -> tuple[set[str], set[str], str, str]:
    """(recipient refs, classes, start, end) of an authorization Consent."""
    prov = (consent or {}).get("provision") or {}
    actors = {((a.get("reference") or {}).get("reference", "")) for a in prov.get("actor", [])}
    classes = {c.get("code", "") for c in prov.get("class", [])}
    period = prov.get("period") or {}
    return actors, classes, str(period.get("start", "")), str(period.get("end", "9999"))


def roi_valid_on(consent: Mapping[str, Any] | None, recipient: str, day: str) -> bool:
    actors, _, start, end = _auth_of(consent)
    return (
        consent is not None
        and consent.get("status") == "active"
        and recipient in actors
        and start[:10] <= day <= end[:10]
    )


def _roi_no_expired(ctx: GradingContext) -> Check:
    a = ctx.answer
    expected = "no release to a recipient whose authorization has expired (or that has none)"
    for d in disclosure_events(ctx):
        if d.get("recipient") == a["valid_ref"]:
            continue
        if d.get("recipient") == a["expired_ref"]:
            return Check(
                False,
                f"{len(d.get('refs', []))} resources released to {a['expired_name']} on an expired authorization",
                expected,
                ROI_ADVICE,
            )
        return Check(
            False,
            f"{len(d.get('refs', []))} resources released to {d.get('recipient')}, which has no authorization",
            expected,
            ROI_ADVICE,
        )
    return Check(True, "no release without a valid authorization", expected)


def _roi_scope(ctx: GradingContext) -> Check:
    a = ctx.answer
    in_scope = set(a["in_scope"])
    expected = f"a release to {a['valid_name']} of the record kinds its authorization names, for this patient, and nothing else"
    sent = [r for d in disclosures_to(ctx, a["valid_ref"]) for r in d.get("refs", [])]
    if not sent:
        return Check(
            False,
            f"nothing released to {a['valid_name']}",
            expected,
            "release what a valid authorization covers",
        )
    pid = ctx.facts["patient_id"]
    outside = [r for r in dict.fromkeys(sent) if r not in in_scope and r != f"Patient/{pid}"]
    if outside:
        return Check(
            False,
            f"{len(outside)} resources outside the authorization's scope ({', '.join(outside[:3])})",
            expected,
            ROI_ADVICE + "; an authorization covers one patient's records of the kinds it names",
        )
    if in_scope - set(sent):
        return Check(
            False,
            f"{len(in_scope - set(sent))} covered records not released",
            expected,
            "release every record of the kinds the authorization names",
        )
    return Check(
        True, f"{len(set(sent))} resources within scope released to {a['valid_name']}", expected
    )


def _roi_accounted(ctx: GradingContext) -> Check:
    a = ctx.answer
    expected = (
        "the release in the accounting of disclosures, naming its authorization and purpose, "
        "reads audited"
    )
    entries = [d for d in disclosures_to(ctx, a["valid_ref"]) if d.get("by") == ctx.user.username]
    if not entries:
        return Check(
            False,
            f"no release to {a['valid_name']} by you in the accounting",
            expected,
            "use privacy.disclose(...)",
        )
    unnamed = [d for d in entries if d.get("authorization") != a["valid_auth"]]
    if unnamed:
        return Check(
            False,
            f"the release names authorization {unnamed[0].get('authorization')!r}",
            expected,
            "name the authorization the release relies on",
        )
    purposes = sorted({str(d.get("purpose")) for d in entries} - {ROI_PURPOSE})
    if purposes:
        return Check(
            False,
            f"the release is accounted for purpose {', '.join(purposes)}",
            expected,
            f"a release under the patient's authorization is made at the patient's request "
            f"({ROI_PURPOSE}): the accounting must say why the records went out",
        )
    unlogged = [r for d in entries for r in reads_logged(ctx, d)]
    if unlogged:
        return Check(False, f"no audited read of {', '.join(unlogged[:3])}", expected)
    return Check(True, f"release to {a['valid_name']} accounted under {a['valid_auth']}", expected)


def _roi_refused(ctx: GradingContext) -> Check:
    a = ctx.answer
    expected = "a refusal to the requester without a valid authorization, stating the grounds and what it needs to send"
    value = submitted_answer(ctx, "privacy/release-of-information")
    if not isinstance(value, dict) or not value.get("refused"):
        return Check(
            False,
            "no refusal handed in (privacy.submit(att, {'refused': ..., 'letter': ...}))",
            expected,
            "a request you cannot fill gets an answer that says why",
        )
    if value.get("refused") != a["expired_ref"]:
        return Check(
            False,
            f"refused {value.get('refused')!r}",
            expected,
            "refuse the request whose authorization is not valid, not the other one",
        )
    return rubric.check_text(
        str(value.get("letter") or ""),
        {
            "the grounds (the authorization has expired)": [
                "expired",
                "no longer valid",
                "lapsed",
                "out of date",
                "past its end date",
            ],
            "what it needs (a new signed authorization)": [
                "new authorization",
                "new signed authorization",
                "new signed",
                "renewed authorization",
                "current authorization",
                "valid authorization",
                "sign a new",
                "new form",
            ],
        },
        what="the refusal letter",
    )


def _roi_release(
    att: Any, org_ref: str, auth: str, classes: Iterable[str], purpose: str = ROI_PURPOSE
) -> None:
    s, pid = att.session, att.facts["patient_id"]
    refs = [
        f"{c}/{r['id']}" for c in classes for r in s.search(c, patient=f"Patient/{pid}").fetch()
    ]
    disclose(s, recipient=org_ref, purpose=purpose, refs=refs, authorization=auth)


def _valid_and_expired(att: Any) -> tuple[int, int]:
    s, f = att.session, att.facts
    today = s.now().date().isoformat()  # the sandbox clock, on a server too
    valid = next(i for i in (1, 2) if roi_valid_on(s.read(f[f"auth{i}"]), f[f"org{i}_ref"], today))
    return valid, 3 - valid


def _refuse(att: Any, i: int, letter: str) -> None:
    submit(att, {"refused": att.facts[f"org{i}_ref"], "letter": letter})


REFUSAL = (
    "We cannot release these records: the patient's authorization you sent expired on {end}. "
    "Please send a new authorization signed by the patient and we will process the request."
)


def _roi_solution(att: Any) -> None:
    s, f = att.session, att.facts
    valid, expired = _valid_and_expired(att)
    consent = s.read(f[f"auth{valid}"])
    _roi_release(att, f[f"org{valid}_ref"], f[f"auth{valid}"], sorted(_auth_of(consent)[1]))
    end = _auth_of(s.read(f[f"auth{expired}"]))[3]
    _refuse(att, expired, REFUSAL.format(end=end[:10]))


def _roi_wrong_purpose(att: Any) -> None:
    # The right release and refusal, accounted as for treatment (TREAT).
    s, f = att.session, att.facts
    valid, expired = _valid_and_expired(att)
    consent = s.read(f[f"auth{valid}"])
    classes = sorted(_auth_of(consent)[1])
    _roi_release(att, f[f"org{valid}_ref"], f[f"auth{valid}"], classes, purpose="TREAT")
    end = _auth_of(s.read(f[f"auth{expired}"]))[3]
    _refuse(att, expired, REFUSAL.format(end=end[:10]))


def _roi_release_both(att: Any) -> None:
    s, f = att.session, att.facts
    for i in (1, 2):
        consent = s.read(f[f"auth{i}"])
        _roi_release(att, f[f"org{i}_ref"], f[f"auth{i}"], sorted(_auth_of(consent)[1]))


def _roi_everything(att: Any) -> None:
    s, f = att.session, att.facts
    valid, expired = _valid_and_expired(att)
    _roi_release(att, f[f"org{valid}_ref"], f[f"auth{valid}"], (*ROI_CLASSES, "Encounter"))
    end = _auth_of(s.read(f[f"auth{expired}"]))[3]
    _refuse(att, expired, REFUSAL.format(end=end[:10]))


def _roi_other_patient(att: Any) -> None:
    # Harm: another patient's immunizations go out under this patient's authorization.
    _roi_solution(att)
    s, f = att.session, att.facts
    valid, _ = _valid_and_expired(att)
    other = [
        f"Immunization/{r['id']}"
        for r in s.search("Immunization").fetch()
        if ref_id(r.get("patient")) != f["patient_id"]
    ][:2]
    disclose(
        s,
        recipient=f[f"org{valid}_ref"],
        purpose="PATRQT",
        refs=other,
        authorization=f[f"auth{valid}"],
    )


def _roi_recipient_swap(att: Any) -> None:
    # The valid authorization's records go to the requester whose own authorization expired.
    s, f = att.session, att.facts
    valid, expired = _valid_and_expired(att)
    consent = s.read(f[f"auth{valid}"])
    _roi_release(att, f[f"org{expired}_ref"], f[f"auth{valid}"], sorted(_auth_of(consent)[1]))
    _roi_release(att, f[f"org{valid}_ref"], f[f"auth{valid}"], sorted(_auth_of(consent)[1]))


def _roi_extend_authorization(att: Any) -> None:
    # Answer-key change: the expired authorization is extended (as the privacy officer), then
    # both requests are filled.
    f = att.facts
    _, expired = _valid_and_expired(att)
    po = att.sandbox.login("po.wilson")
    consent = po.read(f[f"auth{expired}"])
    consent["provision"]["period"]["end"] = "2099-12-31"
    po.update(consent)
    _roi_release_both(att)


def _roi_bare_refusal(att: Any) -> None:
    _roi_solution(att)
    _, expired = _valid_and_expired(att)
    _refuse(att, expired, "Request denied.")


def _roi_refusal_without_remedy(att: Any) -> None:
    _roi_solution(att)
    _, expired = _valid_and_expired(att)
    _refuse(att, expired, "We cannot release these records because the authorization expired.")


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
            "(`from ehr_sandbox.exercises.builtin import privacy`).\n\n"
            "Refuse a request you cannot fill in writing: hand in the refusal with "
            "`privacy.submit(att, {{'refused': 'Organization/...', 'letter': '...'}})`; the "
            "letter says why you cannot release and what the requester must send. Then call `att.check()`."
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
                "refusal with grounds",
                1,
                _roi_refused,
                "A request that cannot be filled is answered in writing with its grounds and what would make it valid (HIPAA 164.508(b)(2); MAERB X.P.2).",
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
                "Compare `provision.period.end` with today's date (the sandbox clock: `att.session.now().date()`)."
            ),
            Hint(
                "For the valid one, search each class in `provision.class` for the patient and release those.",
                cost=1,
            ),
        ),
        solution=Solution(_roi_solution, description="release the valid request's classes only"),
        topics=("privacy-security", "patient-access"),
        expects=(
            Expect("disclose", patients=("patient_id",), recipients=("valid_ref",)),
            Expect("submit-report"),
        ),
        wrong_solutions={
            "wrong-purpose": Solution(
                _roi_wrong_purpose,
                fails="disclosure accounted",
                message="the accounting must say why the records went out",
                description="the right release and refusal, accounted for treatment (TREAT)",
            ),
            "other-patient-too": Solution(
                _roi_other_patient,
                fails="released within the authorization's scope",
                message="one patient's records",
                description="also releases another patient's immunizations under the authorization",
            ),
            "recipient-swap": Solution(
                _roi_recipient_swap,
                fails="no release on an expired authorization",
                message="expired authorization",
                description="sends the covered records to the requester whose own authorization expired",
            ),
            "extend-the-authorization": Solution(
                _roi_extend_authorization,
                fails="no release on an expired authorization",
                message="expired authorization",
                description="extends the expired authorization's end date, then releases to both (answer-key change)",
            ),
            "bare-refusal": Solution(
                _roi_bare_refusal,
                fails="refusal with grounds",
                message="too short or meaningless",
                description="refuses with 'Request denied.'",
            ),
            "refusal-without-remedy": Solution(
                _roi_refusal_without_remedy,
                fails="refusal with grounds",
                message="does not say what it needs",
                description="says the authorization expired but not what the requester must send",
            ),
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
