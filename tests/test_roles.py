"""The role matrix (docs/privacy.md "Roles"): role x resource type x action -> allowed.

The expectations below are the specification's table written out case by case; the data file
(roles.toml) must agree with them.
"""

from __future__ import annotations

import pytest

from ehr_sandbox.access import ROLE_MATRIX, ROLES, AccessContext, Policy, refusal
from ehr_sandbox.access.roles import GROUPS, build_roles
from ehr_sandbox.errors import ValidationError
from synthetic.fhir import is_resource_type

POLICY = Policy(consents=lambda pid: [])
STAFF = (
    "front_desk",
    "medical_assistant",
    "nurse",
    "physician",
    "billing",
    "privacy_officer",
    "instructor",
    "admin",
)


def ctx(role: str) -> AccessContext:
    return AccessContext(
        username=f"user.{role}",
        role=role,
        practitioner_id=None if role == "patient" else f"pr-{role}",
        patient_id="A" if role == "patient" else None,
        scopes=None,
        treating=frozenset({"A"}),
        interactive=role != "system",
    )


def resource(rtype: str) -> dict:
    field = {
        "Patient": None,
        "AllergyIntolerance": "patient",
        "Immunization": "patient",
        "Claim": "patient",
        "Coverage": "beneficiary",
        "Consent": "patient",
    }.get(rtype, "subject")
    r: dict = {"resourceType": rtype, "id": f"{rtype.lower()}-1"}
    if rtype == "Patient":
        r["id"] = "A"
    elif rtype == "Appointment":
        r["participant"] = [{"actor": {"reference": "Patient/A"}}]
    elif rtype in ("Practitioner", "Organization", "AuditEvent", "Schedule", "Slot", "Location"):
        pass
    elif rtype == "Provenance":
        r["target"] = [{"reference": "Observation/o1"}]
    else:
        r[field] = {"reference": "Patient/A"}
    return r


# (role, resource type, action, allowed)
MATRIX: list[tuple[str, str, str, bool]] = [
    # front desk: demographics, scheduling, coverage; no clinical data
    ("front_desk", "Patient", "create", True),
    ("front_desk", "Patient", "read", True),
    ("front_desk", "Patient", "update", True),
    ("front_desk", "Patient", "search", True),
    ("front_desk", "Patient", "delete", False),
    ("front_desk", "Appointment", "create", True),
    ("front_desk", "Appointment", "update", True),
    ("front_desk", "Slot", "search", True),
    ("front_desk", "Schedule", "read", True),
    ("front_desk", "Coverage", "update", True),
    ("front_desk", "Observation", "read", False),
    ("front_desk", "Observation", "search", False),
    ("front_desk", "Condition", "read", False),
    ("front_desk", "DocumentReference", "read", False),
    ("front_desk", "MedicationRequest", "search", False),
    # medical assistant: vitals/observations, allergies, immunizations, med list, MAR, specimens
    ("medical_assistant", "Observation", "create", True),
    ("medical_assistant", "Observation", "read", True),
    ("medical_assistant", "Observation", "search", True),
    ("medical_assistant", "Observation", "delete", False),
    ("medical_assistant", "AllergyIntolerance", "create", True),
    ("medical_assistant", "Immunization", "create", True),
    ("medical_assistant", "MedicationStatement", "create", True),
    ("medical_assistant", "MedicationRequest", "read", True),
    ("medical_assistant", "MedicationRequest", "create", False),
    ("medical_assistant", "MedicationAdministration", "create", True),
    ("medical_assistant", "Specimen", "create", True),
    # issue 16: the MA records intake history as provisional Conditions for the provider to
    # confirm and writes the (unsigned) transfer summary of an admission; never signs, updates
    # or deletes them
    ("medical_assistant", "DocumentReference", "create", True),
    ("medical_assistant", "DocumentReference", "update", False),
    ("medical_assistant", "Condition", "create", True),
    ("medical_assistant", "Condition", "update", False),
    ("medical_assistant", "Composition", "create", False),
    ("medical_assistant", "AuditEvent", "read", False),
    # nurse: care-team clinical read; writes observations, meds given, notes; no prescribing
    ("nurse", "Condition", "read", True),
    ("nurse", "Procedure", "search", True),
    ("nurse", "Observation", "create", True),
    ("nurse", "MedicationAdministration", "create", True),
    ("nurse", "DocumentReference", "create", True),
    ("nurse", "MedicationRequest", "create", False),
    ("nurse", "ServiceRequest", "create", False),
    ("nurse", "Claim", "read", False),
    # physician: full clinical access, orders, prescriptions
    ("physician", "MedicationRequest", "create", True),
    ("physician", "ServiceRequest", "create", True),
    ("physician", "Condition", "update", True),
    ("physician", "DocumentReference", "create", True),
    ("physician", "AuditEvent", "read", False),
    ("physician", "Claim", "create", False),
    # billing: encounters, claims, coverage, accounts, condition/procedure codes; no notes
    ("billing", "Encounter", "read", True),
    ("billing", "Claim", "create", True),
    ("billing", "Claim", "update", True),
    ("billing", "Coverage", "read", True),
    ("billing", "Account", "create", True),
    ("billing", "Condition", "read", True),
    ("billing", "Procedure", "search", True),
    ("billing", "Condition", "update", False),
    ("billing", "DocumentReference", "read", False),
    ("billing", "MedicationRequest", "read", False),
    # patient: own record read/search, messages, appointment requests, consents; no edits
    ("patient", "Observation", "read", True),
    ("patient", "Condition", "search", True),
    ("patient", "Communication", "create", True),
    ("patient", "Appointment", "create", True),
    ("patient", "Consent", "create", True),
    ("patient", "Observation", "create", False),
    ("patient", "Condition", "update", False),
    ("patient", "AuditEvent", "read", False),
    # privacy officer: audit, consent, provenance; not clinical content
    ("privacy_officer", "AuditEvent", "read", True),
    ("privacy_officer", "AuditEvent", "search", True),
    ("privacy_officer", "AuditEvent", "update", False),
    ("privacy_officer", "AuditEvent", "delete", False),
    ("privacy_officer", "Consent", "update", True),
    ("privacy_officer", "Provenance", "search", True),
    ("privacy_officer", "Observation", "read", False),
    ("privacy_officer", "DocumentReference", "read", False),
    # instructor: reads through the same checks; no clinical writes
    ("instructor", "Observation", "read", True),
    ("instructor", "Observation", "create", False),
    ("instructor", "AuditEvent", "read", False),
    # admin: users, keys, backups; no patient data
    ("admin", "Practitioner", "update", True),
    ("admin", "Patient", "read", False),
    ("admin", "Observation", "search", False),
    # the sandbox's own account
    ("system", "Observation", "create", True),
    ("system", "AuditEvent", "read", True),
]


@pytest.mark.parametrize(("role", "rtype", "action", "expected"), MATRIX, ids=lambda v: str(v))
def test_role_matrix(role: str, rtype: str, action: str, expected: bool) -> None:
    c = ctx(role)
    type_level = POLICY.can_type(c, action, rtype)
    instance = POLICY.decide(c, action, resource(rtype), resource_type=rtype)
    assert instance.allowed is expected, instance.reason
    assert type_level.allowed is expected or (expected is False and instance.rule != "role")
    if not expected and not type_level.allowed:
        assert type_level.rule == "role" and role in type_level.reason


def test_every_staff_role_and_patient_and_system_exist() -> None:
    assert set(STAFF) | {"patient", "system"} == set(ROLES)
    assert set(ROLE_MATRIX) == set(ROLES)


def test_every_type_named_in_the_table_is_a_fhir_resource_type() -> None:
    named = {t for members in GROUPS.values() for t in members}
    for role in ROLES.values():
        named |= set(role.grants)
    bad = sorted(t for t in named if not is_resource_type(t))
    assert bad == []


def test_ceilings_follow_privacy_md() -> None:
    assert ROLES["medical_assistant"].ceiling == "N" and ROLES["nurse"].ceiling == "N"
    assert ROLES["physician"].ceiling == "R"
    assert {r for r, info in ROLES.items() if info.break_glass} == {"physician", "nurse"}
    assert {r for r, info in ROLES.items() if "label" in info.actions} == {
        "privacy_officer",
        "system",
    }


def test_refusals_say_who_could() -> None:
    assert refusal("medical_assistant", "c", "MedicationRequest") == (
        "medical_assistant may not prescribe: MedicationRequest needs a physician"
    )
    msg = POLICY.can_type(ctx("front_desk"), "create", "Observation").reason
    assert "front_desk" in msg and "Observation" in msg and "physician" in msg


def test_no_role_but_system_may_delete_audit_events() -> None:
    assert [
        r for r in ROLES if ROLES[r].may("d", "AuditEvent") or ROLES[r].may("u", "AuditEvent")
    ] == ["system"]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"roles": {"x": {"ceiling": "N", "relationship": "maybe", "grants": {}}}},
            "roles.x.relationship",
        ),
        (
            {"roles": {"x": {"ceiling": "N", "relationship": "any", "grants": {"Patient": "rsx"}}}},
            "roles.x.grants.Patient",
        ),
        (
            {"roles": {"x": {"ceiling": "N", "relationship": "any", "grants": {"Patient": "rr"}}}},
            "roles.x.grants.Patient",
        ),
        (
            {"roles": {"x": {"ceiling": "N", "relationship": "any", "grants": {"vitals": "r"}}}},
            "roles.x.grants.vitals",
        ),
        (
            {"roles": {"x": {"ceiling": "N", "relationship": "any", "actions": ["fly"]}}},
            "roles.x.actions",
        ),
        ({"roles": {}}, "roles"),
    ],
)
def test_bad_role_tables_name_the_key(data: dict, path: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_roles(data)
    assert info.value.path == path


def test_the_role_table_is_the_one_source_of_role_names_and_displays() -> None:
    """Accounts, access control and the generated practice read one table: the staff roles
    are the table's staff rows in its order, and every generated PractitionerRole's role code
    is a staff role with the table's display."""
    from ehr_sandbox.access.roles import STAFF_ORDER
    from ehr_sandbox.users import STAFF_ROLES
    from synthetic.practice import ROLE_SYSTEM

    assert STAFF_ROLES == STAFF_ORDER
    assert set(STAFF_ORDER) == set(ROLES) - {"patient", "system"}
    from synthetic.engine import engine_for

    seen = set()
    eng = engine_for(seed=3, reference_date="2026-01-01", years=1, population="family-practice")
    for r in eng.practice_resources():
        if r["resourceType"] != "PractitionerRole":
            continue
        for cc in r.get("code", []):
            for c in cc.get("coding", []):
                if c.get("system") == ROLE_SYSTEM:
                    assert c["code"] in STAFF_ORDER, c
                    assert c["display"] == ROLES[c["code"]].display, c
                    seen.add(c["code"])
    assert {"physician", "medical_assistant", "front_desk"} <= seen
