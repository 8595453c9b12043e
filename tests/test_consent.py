"""Consent (R4 privacy directives): which Consents count and how provisions match."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import (
    AccessContext,
    ConsentRequest,
    Policy,
    consent_verdict,
    evaluate_consents,
)
from ehr_sandbox.access.consent import READ_ACTIONS, provision_matches

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def consent(
    provision: dict | None, *, status: str = "active", cid: str = "c1", period: dict | None = None
) -> dict:
    c: dict = {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "patient": {"reference": "Patient/A"},
    }
    if provision is not None:
        c["provision"] = dict(provision)
        if period:
            c["provision"]["period"] = period
    return c


def obs(**extra) -> dict:
    r = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/A"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "effectiveDateTime": "2025-03-04T10:00:00Z",
        "encounter": {"reference": "Encounter/e1"},
        "performer": [{"reference": "Practitioner/p9"}],
    }
    r.update(extra)
    return r


def request(
    resource: dict | None = None,
    *,
    role: str = "nurse",
    ref: str = "Practitioner/n1",
    purposes: frozenset[str] = frozenset({"TREAT"}),
    actions=READ_ACTIONS,
    now: str | None = None,
) -> ConsentRequest:
    resource = resource if resource is not None else obs()
    return ConsentRequest(
        frozenset({ref}),
        frozenset({role}),
        actions,
        purposes,
        resource["resourceType"],
        resource,
        now,
    )


DENY_ALL = {"type": "deny"}


def test_only_active_consents_count() -> None:
    for status in ("draft", "proposed", "rejected", "inactive", "entered-in-error"):
        assert consent_verdict(consent(DENY_ALL, status=status), request()) is None
    assert consent_verdict(consent(DENY_ALL), request()) == "deny"


def test_period_bounds_inclusive_and_unchecked_without_now() -> None:
    c = consent(DENY_ALL, period={"start": "2025-01-01", "end": "2025-06-30"})
    assert consent_verdict(c, request(now="2025-01-01")) == "deny"
    assert consent_verdict(c, request(now="2025-06-30T23:00:00Z")) == "deny"
    assert consent_verdict(c, request(now="2024-12-31")) is None
    assert consent_verdict(c, request(now="2025-07-01")) is None
    assert consent_verdict(c, request(now=None)) == "deny"


def test_deny_overrides_permit_across_consents_and_siblings() -> None:
    permit = consent({"type": "permit"}, cid="p")
    deny = consent(DENY_ALL, cid="d")
    assert evaluate_consents([permit, deny], request()) == ("deny", "d")
    assert evaluate_consents([permit], request()) == ("permit", "p")
    siblings = consent({"type": "permit", "provision": [{"type": "permit"}, {"type": "deny"}]})
    assert consent_verdict(siblings, request()) == "deny"


def test_deepest_matching_provision_decides() -> None:
    # Deny everything, except permit Observations, except deny lab A1c (code) again.
    nested = consent(
        {
            "type": "deny",
            "provision": [
                {
                    "type": "permit",
                    "class": [{"code": "Observation"}],
                    "provision": [
                        {
                            "type": "deny",
                            "code": [
                                {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}
                            ],
                        }
                    ],
                }
            ],
        }
    )
    assert consent_verdict(nested, request(obs())) == "deny"
    other_code = obs(code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]})
    assert consent_verdict(nested, request(other_code)) == "permit"
    cond = {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/A"}}
    assert consent_verdict(nested, request(cond)) == "deny"


def test_unmatched_root_says_nothing() -> None:
    c = consent({"type": "deny", "class": [{"code": "Condition"}]})
    assert consent_verdict(c, request()) is None


@pytest.mark.parametrize(
    ("provision", "matching", "not_matching"),
    [
        (
            {"actor": [{"reference": {"reference": "Practitioner/n1"}}]},
            {},
            {"ref": "Practitioner/n2"},
        ),
        (
            {"actor": [{"role": {"coding": [{"code": "billing"}]}}]},
            {"role": "billing"},
            {"role": "nurse"},
        ),
        ({"purpose": [{"system": ACT, "code": "HPAYMT"}]}, {"purposes": frozenset({"HPAYMT"})}, {}),
        ({"action": [{"coding": [{"code": "correct"}]}]}, {"actions": frozenset({"correct"})}, {}),
    ],
)
def test_actor_purpose_action_matching(provision: dict, matching: dict, not_matching: dict) -> None:
    assert provision_matches(provision, request(**matching))
    assert not provision_matches(provision, request(**not_matching))


def test_security_label_matching() -> None:
    p = {"securityLabel": [{"system": ACT, "code": "HIV"}]}
    labelled = obs(
        meta={"security": [{"system": CONF, "code": "R"}, {"system": ACT, "code": "HIV"}]}
    )
    assert provision_matches(p, request(labelled))
    assert not provision_matches(p, request(obs()))


def test_class_code_and_data_period_matching() -> None:
    assert provision_matches({"class": [{"code": "Observation"}]}, request())
    assert not provision_matches({"class": [{"code": "Condition"}]}, request())
    assert provision_matches(
        {"code": [{"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}]}, request()
    )
    assert not provision_matches(
        {"code": [{"coding": [{"system": "http://snomed.info/sct", "code": "4548-4"}]}]}, request()
    )
    assert provision_matches(
        {"dataPeriod": {"start": "2025-01-01", "end": "2025-12-31"}}, request()
    )
    assert not provision_matches({"dataPeriod": {"start": "2025-04-01"}}, request())
    undated = {k: v for k, v in obs().items() if k != "effectiveDateTime"}
    assert not provision_matches({"dataPeriod": {"start": "2000-01-01"}}, request(undated))


@pytest.mark.parametrize(
    ("meaning", "target", "expected"),
    [
        ("instance", "Observation/o1", True),
        ("instance", "Encounter/e1", False),
        ("related", "Encounter/e1", True),
        ("related", "Observation/o1", True),
        ("dependents", "Encounter/e1", True),
        ("related", "Encounter/e2", False),
        ("authoredby", "Practitioner/p9", True),
        ("authoredby", "Encounter/e1", False),
    ],
)
def test_data_reference_matching(meaning: str, target: str, expected: bool) -> None:
    p = {"data": [{"meaning": meaning, "reference": {"reference": target}}]}
    assert provision_matches(p, request()) is expected


def test_optout_policy_rule_without_provision_denies() -> None:
    c = {
        "resourceType": "Consent",
        "id": "x",
        "status": "active",
        "policyRule": {"coding": [{"system": ACT, "code": "OPTOUT"}]},
    }
    assert consent_verdict(c, request()) == "deny"
    assert consent_verdict(dict(c, policyRule={"coding": [{"code": "OPTIN"}]}), request()) is None


# ---------------------------------------------------------------- through the policy


def ctx(role: str, **kw) -> AccessContext:
    base = dict(
        username=role,
        role=role,
        practitioner_id=f"pr-{role}",
        patient_id=None,
        scopes=None,
        treating=frozenset({"A"}),
    )
    base.update(kw)
    return AccessContext(**base)


def self_pay_restriction() -> dict:
    """Patient A paid for encounter e1 out of pocket: nothing about it goes to the health plan."""
    return consent(
        {
            "type": "permit",
            "provision": [
                {
                    "type": "deny",
                    "purpose": [{"system": ACT, "code": "HPAYMT"}],
                    "data": [{"meaning": "related", "reference": {"reference": "Encounter/e1"}}],
                }
            ],
        },
        cid="selfpay",
    )


def test_self_pay_encounter_is_not_disclosed_for_payment() -> None:
    policy = Policy(consents=lambda pid: [self_pay_restriction()] if pid == "A" else [])
    enc = {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/A"}}
    other_enc = dict(enc, id="e2")
    claim = {
        "resourceType": "Claim",
        "id": "cl1",
        "patient": {"reference": "Patient/A"},
        "item": [{"sequence": 1, "encounter": [{"reference": "Encounter/e1"}]}],
    }
    billing = ctx("billing")
    for r in (enc, claim):
        d = policy.decide(billing, "read", r, resource_type=r["resourceType"])
        assert not d.allowed and d.rule == "consent" and "selfpay" in d.reason
    assert policy.decide(billing, "read", other_enc, resource_type="Encounter").allowed
    # Nor may billing create a claim to the plan that references the self-pay visit.
    new_claim = {k: v for k, v in claim.items() if k != "id"}
    assert policy.decide(billing, "create", new_claim, resource_type="Claim").rule == "consent"
    # Treatment is not restricted: the physician still sees the encounter.
    assert policy.decide(ctx("physician"), "read", enc, resource_type="Encounter").allowed


def test_consent_never_widens_the_role() -> None:
    permit_everyone = consent(
        {"type": "permit", "actor": [{"role": {"coding": [{"code": "front_desk"}]}}]}
    )
    policy = Policy(consents=lambda pid: [permit_everyone])
    d = policy.decide(ctx("front_desk"), "read", obs(), resource_type="Observation")
    assert not d.allowed and d.rule == "role"


def test_patient_own_access_is_not_limited_by_their_consents() -> None:
    policy = Policy(consents=lambda pid: [consent(DENY_ALL)])
    me = ctx("patient", patient_id="A", practitioner_id=None)
    assert policy.decide(me, "read", obs(), resource_type="Observation").allowed
    nurse = policy.decide(ctx("nurse"), "read", obs(), resource_type="Observation")
    assert not nurse.allowed and nurse.rule == "consent"


def test_consent_period_uses_the_policy_clock() -> None:
    c = consent(DENY_ALL, period={"start": "2026-01-01"})
    early = Policy(consents=lambda pid: [c], clock=lambda: date(2025, 12, 1))
    late = Policy(consents=lambda pid: [c], clock=lambda: date(2026, 2, 1))
    assert early.decide(ctx("nurse"), "read", obs(), resource_type="Observation").allowed
    assert not late.decide(ctx("nurse"), "read", obs(), resource_type="Observation").allowed


def test_consents_are_cached_and_refreshed_after_a_consent_write() -> None:
    stored: list[dict] = []
    calls: list[str] = []

    def consents(pid: str) -> list[dict]:
        calls.append(pid)
        return list(stored)

    policy = Policy(consents=consents)
    nurse = ctx("nurse")
    assert policy.decide(nurse, "read", obs(), resource_type="Observation").allowed
    assert policy.decide(nurse, "read", obs(), resource_type="Observation").allowed
    assert calls == ["A"]
    new = consent(DENY_ALL, cid="new")
    assert policy.decide(
        ctx("patient", patient_id="A", practitioner_id=None), "create", new, resource_type="Consent"
    ).allowed
    stored.append(new)
    assert not policy.decide(nurse, "read", obs(), resource_type="Observation").allowed
    assert calls == ["A", "A"]


def test_break_the_glass_purpose_still_counts_as_treatment_for_other_patients() -> None:
    no_treat = consent({"type": "deny", "purpose": [{"system": ACT, "code": "TREAT"}]})
    policy = Policy(consents=lambda pid: [no_treat])
    nurse = ctx("nurse", purpose="BTG", btg=frozenset({"Z"}))
    d = policy.decide(nurse, "read", obs(), resource_type="Observation")
    assert not d.allowed and d.rule == "consent"


_PURPOSE_CODES = ["TREAT", "ETREAT", "BTG", "HPAYMT", "HOPERAT"]
_leaf = st.fixed_dictionaries(
    {"type": st.sampled_from(["deny", "permit"])},
    optional={
        "purpose": st.lists(
            st.sampled_from(_PURPOSE_CODES).map(
                lambda c: {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": c,
                }
            ),
            min_size=1,
            max_size=2,
        )
    },
)
_provision = st.recursive(
    _leaf,
    lambda kids: st.tuples(_leaf, st.lists(kids, min_size=1, max_size=2)).map(
        lambda t: {**t[0], "provision": t[1]}
    ),
    max_leaves=4,
)


@settings(max_examples=200, deadline=None)
@given(
    provision=_provision,
    role=st.sampled_from(["nurse", "physician"]),
    others=st.sets(st.sampled_from(["B", "C", "D"]), min_size=1),
)
def test_break_glass_on_other_patients_changes_no_decision_about_this_one(
    provision: dict, role: str, others: set[str]
) -> None:
    """Whatever a patient's Consent says about purposes of use (an HIE opt-out that permits
    emergency treatment only, a deny for treatment ...), a break-the-glass on *other* patients
    decides nothing about this one: the access to this patient is not an emergency access.
    (Before, a break-the-glass on B gave every access to A the purposes BTG and ETREAT, so A's
    "deny, except emergency treatment" Consent let the clinician into A's chart.)"""
    policy = Policy(consents=lambda pid: [consent(provision)] if pid == "A" else [])
    routine = ctx(role, purpose="TREAT")
    emergency = ctx(role, purpose="BTG", btg=frozenset(others))
    for action in ("read", "search"):
        assert (
            policy.decide(emergency, action, obs(), resource_type="Observation").allowed
            == policy.decide(routine, action, obs(), resource_type="Observation").allowed
        )


def test_emergency_treatment_exception_opens_only_the_patient_under_break_the_glass() -> None:
    opt_out = consent(
        {
            "type": "deny",
            "provision": [
                {
                    "type": "permit",
                    "purpose": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                            "code": "ETREAT",
                        }
                    ],
                }
            ],
        }
    )
    policy = Policy(consents=lambda pid: [opt_out])
    other = ctx("nurse", purpose="BTG", btg=frozenset({"Z"}))
    d = policy.decide(other, "read", obs(), resource_type="Observation")
    assert not d.allowed and d.rule == "consent"
    this = ctx("nurse", purpose="BTG", btg=frozenset({"A"}))
    assert policy.decide(this, "read", obs(), resource_type="Observation").allowed
