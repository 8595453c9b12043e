"""The decision order: relationship, confidentiality ceiling, break-the-glass, labels, updates,
and hostile inputs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import ACTIONS, AccessContext, Decision, Policy, parse_scopes
from ehr_sandbox.errors import SandboxError, ValidationError

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
POLICY = Policy(consents=lambda pid: [])


def ctx(role: str, **kw) -> AccessContext:
    base = dict(
        username=f"u.{role}",
        role=role,
        practitioner_id=f"pr-{role}",
        patient_id=None,
        scopes=None,
        treating=frozenset({"A"}),
        interactive=role != "system",
    )
    base.update(kw)
    return AccessContext(**base)


def obs(pid: str = "A", conf: str | None = "N", *sens: str, oid: str = "o1", **extra) -> dict:
    r: dict = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
    }
    security = ([{"system": CONF, "code": conf}] if conf else []) + [
        {"system": ACT, "code": s} for s in sens
    ]
    if security:
        r["meta"] = {"security": security}
    r.update(extra)
    return r


def decide(c: AccessContext, action: str, r: dict, **kw) -> Decision:
    return POLICY.decide(c, action, r, resource_type=r["resourceType"], **kw)


# ---------------------------------------------------------------- relationship (rule 3)


@pytest.mark.parametrize("role", ["medical_assistant", "nurse", "physician"])
def test_clinicians_see_only_patients_they_treat(role: str) -> None:
    c = ctx(role)
    assert decide(c, "read", obs("A")).allowed
    d = decide(c, "read", obs("B"))
    assert not d.allowed and d.rule == "relationship" and "Patient/B" in d.reason
    assert decide(c, "create", obs("B")).rule == "relationship"


def test_patient_sees_only_self_and_practice_directory() -> None:
    me = ctx("patient", patient_id="A", practitioner_id=None, treating=frozenset())
    assert decide(me, "read", obs("A", "R", "HIV")).allowed  # own restricted data: right of access
    assert decide(me, "read", obs("B")).rule == "relationship"
    assert decide(me, "read", {"resourceType": "Practitioner", "id": "d"}).allowed
    orphan = {"resourceType": "Observation", "id": "x"}
    assert decide(me, "read", orphan).rule == "relationship"


def test_front_desk_and_billing_are_not_limited_to_a_care_relationship() -> None:
    assert decide(ctx("front_desk"), "read", {"resourceType": "Patient", "id": "B"}).allowed
    assert decide(
        ctx("billing"),
        "read",
        {"resourceType": "Claim", "id": "c", "patient": {"reference": "Patient/B"}},
    ).allowed


def test_resource_naming_two_patients_needs_both() -> None:
    appt = {
        "resourceType": "Appointment",
        "id": "ap",
        "participant": [
            {"actor": {"reference": "Patient/A"}},
            {"actor": {"reference": "Patient/B"}},
        ],
    }
    assert not decide(ctx("medical_assistant"), "read", appt).allowed
    assert decide(ctx("medical_assistant", treating=frozenset({"A", "B"})), "read", appt).allowed


def test_absolute_and_versioned_references_resolve_to_the_patient() -> None:
    r = obs(subject={"reference": "https://other.example/fhir/Patient/B/_history/3"})
    assert decide(ctx("nurse"), "read", r).rule == "relationship"


# ---------------------------------------------------------------- ceiling (rule 4)


@pytest.mark.parametrize(
    ("role", "conf", "expected"),
    [
        ("medical_assistant", "N", True),
        ("medical_assistant", "R", False),
        ("nurse", "N", True),
        ("nurse", "R", False),
        ("physician", "R", True),
        ("physician", "V", False),
        ("medical_assistant", "V", False),
    ],
)
def test_confidentiality_ceiling(role: str, conf: str, expected: bool) -> None:
    d = decide(ctx(role), "read", obs("A", conf))
    assert d.allowed is expected
    if not expected:
        assert d.rule == "ceiling" and conf in d.reason


def test_unlabelled_counts_as_normal() -> None:
    assert decide(ctx("medical_assistant"), "read", obs("A", None)).allowed


def test_very_restricted_needs_named_access() -> None:
    v = obs("A", "V")
    assert decide(ctx("physician", named_access=frozenset({"A"})), "read", v).allowed
    assert not decide(ctx("physician", named_access=frozenset({"B"})), "read", v).allowed


def test_billing_never_sees_substance_use_data() -> None:
    sud = obs("A", "R", "SUD")
    cond = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/A"},
        "meta": sud["meta"],
    }
    d = decide(ctx("billing"), "read", cond)
    assert not d.allowed and "SUD" in d.reason
    plain = dict(
        cond, meta={"security": [{"system": CONF, "code": "R"}, {"system": ACT, "code": "HIV"}]}
    )
    assert decide(ctx("billing"), "read", plain).allowed


# ---------------------------------------------------------------- break-the-glass (rule 6)


@pytest.mark.parametrize("role", ["physician", "nurse"])
def test_btg_lifts_relationship_and_ceiling_for_one_patient(role: str) -> None:
    c = ctx(role, btg=frozenset({"B"}))
    d = decide(c, "read", obs("B", "R"))
    assert d.allowed and d.via_btg and d.rule == "btg"
    assert not decide(c, "read", obs("C")).allowed
    normal = decide(c, "read", obs("A"))
    assert normal.allowed and not normal.via_btg


def test_btg_lifts_consent() -> None:
    deny = {"resourceType": "Consent", "id": "c", "status": "active", "provision": {"type": "deny"}}
    policy = Policy(consents=lambda pid: [deny])
    assert (
        policy.decide(ctx("nurse"), "read", obs("A"), resource_type="Observation").rule == "consent"
    )
    d = policy.decide(
        ctx("nurse", btg=frozenset({"A"})), "read", obs("A"), resource_type="Observation"
    )
    assert d.allowed and d.via_btg


@pytest.mark.parametrize(
    ("role", "conf"),
    [("medical_assistant", "N"), ("front_desk", "N"), ("billing", "V"), ("instructor", "R")],
)
def test_btg_does_nothing_for_other_roles(role: str, conf: str) -> None:
    without = decide(ctx(role, treating=frozenset()), "read", obs("B", conf))
    with_btg = decide(ctx(role, btg=frozenset({"B"}), treating=frozenset()), "read", obs("B", conf))
    assert not without.allowed
    assert with_btg == without


def test_btg_never_lifts_v_or_psychotherapy_notes_or_the_role_or_excluded_labels() -> None:
    c = ctx("physician", btg=frozenset({"B"}))
    assert not decide(c, "read", obs("B", "V")).allowed
    note = {
        "resourceType": "DocumentReference",
        "id": "n",
        "subject": {"reference": "Patient/B"},
        "meta": {"security": [{"system": CONF, "code": "R"}, {"system": ACT, "code": "PSYTHPN"}]},
    }
    d = decide(c, "read", note)
    assert not d.allowed and "psychotherapy" in d.reason
    claim = {"resourceType": "Claim", "id": "x", "patient": {"reference": "Patient/B"}}
    assert decide(c, "read", claim).rule == "role"


def test_psychotherapy_notes_need_named_access_even_for_the_treating_physician() -> None:
    note = {
        "resourceType": "DocumentReference",
        "id": "n",
        "subject": {"reference": "Patient/A"},
        "meta": {"security": [{"system": CONF, "code": "R"}, {"system": ACT, "code": "PSYTHPN"}]},
    }
    assert not decide(ctx("physician"), "read", note).allowed
    assert decide(ctx("physician", named_access=frozenset({"A"})), "read", note).allowed
    assert not decide(ctx("patient", patient_id="A", practitioner_id=None), "read", note).allowed


# ---------------------------------------------------------------- writes


def test_update_is_checked_before_and_after() -> None:
    nurse = ctx("nurse")
    before = obs("A")
    assert decide(nurse, "update", dict(before, status="amended"), before=before).allowed
    moved = dict(before, subject={"reference": "Patient/B"})
    assert decide(nurse, "update", moved, before=before).rule == "relationship"
    # ...and a resource of a patient you may not reach cannot be pulled over to one you may.
    assert decide(nurse, "update", before, before=obs("B")).rule == "relationship"


def test_updates_may_not_lower_labels_except_by_the_privacy_officer() -> None:
    phys = ctx("physician")
    before = obs("A", "R", "HIV")
    d = decide(phys, "update", obs("A", "N"), before=before)
    assert not d.allowed and d.rule == "label" and "privacy officer" in d.reason
    assert decide(phys, "update", obs("A", "R"), before=before).rule == "label"
    assert decide(phys, "update", obs("A", "R", "HIV", status="amended"), before=before).allowed


def test_label_action_is_the_privacy_officers_alone() -> None:
    po = ctx("privacy_officer")
    before = obs("A", "N")
    after = obs("A", "R", "HIV")
    assert decide(po, "label", after, before=before).allowed
    # Clinical content is still not the privacy officer's to read.
    assert not decide(po, "read", before).allowed
    d = decide(po, "label", dict(after, status="amended"), before=before)
    assert not d.allowed and d.rule == "label"
    # An update by the privacy officer of a type they cannot edit is a label change or nothing.
    assert POLICY.can_type(po, "update", "Observation").allowed
    assert decide(po, "update", after, before=before).allowed
    assert decide(po, "update", dict(after, status="amended"), before=before).rule == "label"
    assert not decide(po, "update", after).allowed
    audit = {"resourceType": "AuditEvent", "id": "ae"}
    assert not POLICY.can_type(po, "update", "AuditEvent").allowed
    assert not decide(po, "label", audit, before=audit).allowed
    for role in ("physician", "nurse", "admin", "instructor", "billing"):
        r = decide(ctx(role), "label", after, before=before)
        assert not r.allowed and "privacy officer" in r.reason


def test_masked_copies_cannot_be_written_back() -> None:
    billing = ctx("billing")
    claim = {
        "resourceType": "Claim",
        "id": "c",
        "patient": {"reference": "Patient/A"},
        "meta": {
            "security": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "REDACTED",
                }
            ]
        },
    }
    stored = {k: v for k, v in claim.items() if k != "meta"}
    assert decide(billing, "update", claim, before=stored).rule == "input"
    assert decide(billing, "update", stored, before=stored).allowed


def test_denied_write_reason_is_actionable() -> None:
    d = decide(
        ctx("medical_assistant"),
        "create",
        {"resourceType": "MedicationRequest", "subject": {"reference": "Patient/A"}},
    )
    assert d.reason == "medical_assistant may not prescribe: MedicationRequest needs a physician"


def test_bulk_actions_follow_the_role() -> None:
    assert POLICY.can_type(ctx("privacy_officer"), "deidentify", "Patient").allowed
    assert not POLICY.can_type(ctx("medical_assistant"), "deidentify", "Patient").allowed
    assert not POLICY.can_type(ctx("nurse"), "export", "Observation").allowed
    assert POLICY.can_type(ctx("physician"), "export", "Observation").allowed
    assert POLICY.can_type(ctx("system"), "export", "AuditEvent").allowed


def test_system_account_bypasses_relationship_but_not_the_policy() -> None:
    system = ctx("system", treating=frozenset())
    assert decide(system, "read", obs("Z", "V", "PSYTHPN")).allowed
    with pytest.raises(ValidationError):
        POLICY.decide(system, "teleport", None, resource_type="Observation")


# ---------------------------------------------------------------- hostile inputs


def test_mismatched_or_broken_resources_are_denied_not_crashing() -> None:
    c = ctx("physician")
    assert POLICY.decide(c, "read", obs("A"), resource_type="Patient").rule == "input"
    assert POLICY.decide(c, "read", "Observation/o1", resource_type="Observation").rule == "input"  # type: ignore[arg-type]
    assert POLICY.decide(c, "read", None, resource_type="").rule == "input"
    weird = {
        "resourceType": "Observation",
        "subject": {"reference": 5},
        "meta": {"security": [None, 3, {"code": []}]},
    }
    assert not POLICY.decide(c, "read", weird, resource_type="Observation").allowed


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ValidationError, match="role"):
        ctx("superuser")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["subject", "patient", "meta", "participant", "beneficiary", "id", "resourceType", "contained"]
)
RESOURCE = st.builds(
    lambda rtype, extra, subject: {"resourceType": rtype, **extra, **subject},
    st.sampled_from(["Observation", "Patient", "Appointment", "Coverage", "Consent", "Claim"]),
    st.dictionaries(FIELDS, JSONISH, max_size=5),
    st.sampled_from(
        [{}, {"subject": {"reference": "Patient/A"}}, {"patient": {"reference": "Patient/B"}}]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    role=st.sampled_from(
        ["medical_assistant", "nurse", "physician", "billing", "patient", "front_desk", "system"]
    ),
    action=st.sampled_from(sorted(ACTIONS) + ["bogus"]),
    resource=st.one_of(st.none(), RESOURCE, JSONISH),
    before=st.one_of(st.none(), RESOURCE),
    rtype=st.sampled_from(
        ["Observation", "Patient", "Appointment", "Consent", "Claim", "", "Nope"]
    ),
)
def test_fuzz_decide_never_crashes(role, action, resource, before, rtype) -> None:
    deny_all = {
        "resourceType": "Consent",
        "id": "c",
        "status": "active",
        "provision": {
            "type": "permit",
            "provision": [{"type": "deny", "data": [{"reference": {"reference": "Encounter/e"}}]}],
        },
    }
    policy = Policy(consents=lambda pid: [deny_all])
    c = ctx(role, patient_id="A" if role == "patient" else None, btg=frozenset({"B"}))
    try:
        d = policy.decide(c, action, resource, resource_type=rtype, before=before)
    except SandboxError:
        assert action == "bogus"
        return
    assert isinstance(d, Decision) and isinstance(d.reason, str)
    assert action != "bogus"


def test_scoped_context_is_immutable_and_comparable() -> None:
    a = ctx("physician", patient_id="A", scopes=parse_scopes("patient/*.rs"))
    b = ctx("physician", patient_id="A", scopes=parse_scopes("patient/*.rs"))
    assert a == b
    with pytest.raises(AttributeError):
        a.role = "admin"  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class _GeneralPathContext(AccessContext):
    """Same standing as AccessContext; the policy's read hot path takes exact AccessContexts
    only, so a decision on this one goes through every general check."""


LABELS = st.lists(
    st.sampled_from(
        [{"system": CONF, "code": c} for c in ("N", "R", "V", "bogus")]
        + [{"system": ACT, "code": s} for s in ("HIV", "SUD", "PSYTHPN", "ETH")]
    ),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    role=st.sampled_from(
        [
            "medical_assistant",
            "nurse",
            "physician",
            "billing",
            "patient",
            "front_desk",
            "system",
            "privacy_officer",
            "instructor",
        ]
    ),
    action=st.sampled_from(["read", "vread", "history", "search"]),
    resource=st.one_of(RESOURCE, JSONISH),
    labels=LABELS,
    rtype=st.sampled_from(["Observation", "Patient", "Appointment", "Consent", "Claim", ""]),
    btg=st.sampled_from([frozenset(), frozenset({"B"})]),
    consents=st.booleans(),
)
def test_read_hot_path_decides_as_the_general_path(
    role, action, resource, labels, rtype, btg, consents
) -> None:
    deny = {
        "resourceType": "Consent",
        "id": "c",
        "status": "active",
        "provision": {"type": "deny", "actor": [{"reference": {"reference": "Practitioner/x"}}]},
    }
    policy = Policy(consents=lambda pid: [deny] if consents else [])
    if isinstance(resource, dict) and labels:
        resource = {**resource, "meta": {"security": labels}}
    kw = dict(
        username=f"u.{role}",
        role=role,
        practitioner_id=f"pr-{role}",
        patient_id="A" if role == "patient" else None,
        scopes=None,
        treating=frozenset({"A"}),
        btg=btg,
        interactive=role != "system",
    )
    fast = policy.decide(AccessContext(**kw), action, resource, resource_type=rtype)
    general = policy.decide(_GeneralPathContext(**kw), action, resource, resource_type=rtype)
    assert fast == general
