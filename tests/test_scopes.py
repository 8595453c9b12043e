"""SMART v2 scopes: the 30 test vectors of docs/privacy.md, one named test each, plus a fuzz.

Vectors that need a store or a session (27 include, 28 batch, 29 bulk export) are tested at
the policy level: they check the exact decisions the session asks the policy for.
Patient in context = A, other patient = B; the user is a physician treating both, so only the
scopes can make the difference.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import ROLES, AccessContext, Policy, ScopeSet, parse_scopes
from ehr_sandbox.errors import ScopeError

OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{OBS_CAT}|laboratory"
VITALS = f"{OBS_CAT}|vital-signs"
POLICY = Policy(consents=lambda pid: [])
PERM = {
    "read": "r",
    "vread": "r",
    "history": "r",
    "search": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}


def obs(
    pid: str, category: str = "vital-signs", status: str = "final", oid: str | None = None
) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid or f"obs-{pid}-{category}-{status}",
        "status": status,
        "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid}


def condition(pid: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"cond-{pid}",
        "subject": {"reference": f"Patient/{pid}"},
    }


def ctx(
    scopes: str | None,
    *,
    patient_id: str | None = "A",
    role: str = "physician",
    interactive: bool = True,
):
    return AccessContext(
        username="dr.patel" if role == "physician" else role,
        role=role,
        practitioner_id="dr-1",
        patient_id=patient_id,
        scopes=parse_scopes(scopes) if scopes is not None else None,
        treating=frozenset({"A", "B"}),
        interactive=interactive,
    )


def allowed(
    c: AccessContext, action: str, resource: dict | None, rtype: str | None = None, **kw
) -> bool:
    rtype = rtype or resource["resourceType"]
    return POLICY.decide(c, action, resource, resource_type=rtype, **kw).allowed


GRID_ACTIONS = ("read", "vread", "history", "search", "create", "update", "delete")


def grid(c: AccessContext) -> dict[tuple[str, str, str], bool]:
    resources = [obs("A"), obs("B"), patient("A"), patient("B"), condition("A"), condition("B")]
    out = {}
    for r in resources:
        for action in GRID_ACTIONS:
            out[(r["resourceType"], r["id"], action)] = allowed(c, action, r)
    for rtype in ("Observation", "Patient", "Condition"):
        for action in GRID_ACTIONS:
            out[(rtype, "*", action)] = POLICY.can_type(c, action, rtype).allowed
    return out


def test_scope_vector_01_patient_observation_rs_reads_a_only_and_no_create() -> None:
    c = ctx("patient/Observation.rs")
    assert allowed(c, "read", obs("A")) and allowed(c, "search", obs("A"))
    assert not allowed(c, "read", obs("B")) and not allowed(c, "search", obs("B"))
    assert not POLICY.can_type(c, "create", "Observation").allowed
    assert not allowed(c, "create", obs("A"))


def test_scope_vector_02_patient_patient_r_reads_self_but_cannot_search() -> None:
    c = ctx("patient/Patient.r")
    assert allowed(c, "read", patient("A"))
    assert not POLICY.can_type(c, "search", "Patient").allowed
    assert not allowed(c, "search", patient("A"))
    assert not allowed(c, "read", patient("B"))


def test_scope_vector_03_patient_observation_c_creates_for_a_only_and_cannot_read_it() -> None:
    c = ctx("patient/Observation.c")
    new_a = obs("A")
    assert allowed(c, "create", new_a)
    assert not allowed(c, "create", obs("B"))
    assert not allowed(c, "read", new_a)


def test_scope_vector_04_patient_observation_s_searches_but_cannot_read_by_id() -> None:
    c = ctx("patient/Observation.s")
    assert POLICY.can_type(c, "search", "Observation").allowed
    assert allowed(c, "search", obs("A"))
    assert not allowed(c, "read", obs("A"))


def test_scope_vector_05_patient_observation_r_vread_and_instance_history_but_no_type_history() -> (
    None
):
    c = ctx("patient/Observation.r")
    assert allowed(c, "vread", obs("A")) and allowed(c, "history", obs("A"))
    # Type-level history is a search (the session asks can_type(..., "search", ...)).
    assert not POLICY.can_type(c, "search", "Observation").allowed


def test_scope_vector_06_patient_observation_u_cannot_move_to_b() -> None:
    c = ctx("patient/Observation.u")
    before = obs("A", oid="o1")
    same = dict(before, status="amended")
    moved = dict(before, subject={"reference": "Patient/B"})
    assert allowed(c, "update", same, before=before)
    decision = POLICY.decide(c, "update", moved, resource_type="Observation", before=before)
    assert not decision.allowed and decision.rule == "scope"


def test_scope_vector_07_patient_star_cruds_everything_of_a_nothing_of_b() -> None:
    c = ctx("patient/*.cruds")
    for r in (obs("A"), patient("A"), condition("A")):
        assert allowed(c, "read", r)
        for action in ("read", "search", "create", "update", "delete"):
            if not ROLES["physician"].may(PERM[action], r["resourceType"]):
                continue  # scopes are capped by the role (vector 25 checks the cap itself)
            assert allowed(c, action, r), (r["id"], action)
    for r in (obs("B"), patient("B"), condition("B")):
        for action in GRID_ACTIONS:
            assert not allowed(c, action, r), (r["id"], action)


def test_scope_vector_08_patient_star_read_equals_rs() -> None:
    assert grid(ctx("patient/*.read")) == grid(ctx("patient/*.rs"))
    assert parse_scopes("patient/*.read").scopes[0].perms == frozenset("rs")


def test_scope_vector_09_user_star_write_is_cud_without_reads() -> None:
    assert grid(ctx("user/*.write")) == grid(ctx("user/*.cud"))
    c = ctx("user/*.write")
    assert allowed(c, "create", obs("B")) and allowed(c, "update", obs("A"))
    for action in ("read", "vread", "history", "search"):
        assert not allowed(c, action, obs("A"))


def test_scope_vector_10_patient_observation_star_equals_cruds() -> None:
    assert grid(ctx("patient/Observation.*")) == grid(ctx("patient/Observation.cruds"))
    assert parse_scopes("patient/Observation.*").scopes[0].perms == frozenset("cruds")


def test_scope_vector_11_out_of_order_perms_are_invalid() -> None:
    with pytest.raises(ScopeError, match="in that order"):
        parse_scopes("patient/Observation.dus")


@pytest.mark.parametrize("perms", ["rss", "rrrrs", "crudss"])
def test_scope_vector_12_duplicate_perms_are_invalid(perms: str) -> None:
    with pytest.raises(ScopeError, match=perms):
        parse_scopes(f"patient/Observation.{perms}")


@pytest.mark.parametrize("perms", ["read-only", "rsXYZ"])
def test_scope_vector_13_no_prefix_match(perms: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(f"patient/Observation.{perms}")
    with pytest.raises(ScopeError):
        parse_scopes(
            f"openid patient/Observation.{perms}"
        )  # nothing granted from a partly valid string


@pytest.mark.parametrize(
    "token", ["patient/observation.rs", "Patient/Observation.rs", "PATIENT/*.rs"]
)
def test_scope_vector_14_case_matters(token: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(token)


def test_scope_vector_15_unknown_resource_type() -> None:
    with pytest.raises(ScopeError, match="Foobar"):
        parse_scopes("patient/Foobar.rs")


def test_scope_vector_16_category_filter_applies_to_search_and_read_by_id() -> None:
    c = ctx(f"patient/Observation.rs?category={LAB}")
    assert allowed(c, "search", obs("A", "laboratory")) and allowed(
        c, "read", obs("A", "laboratory")
    )
    assert not allowed(c, "search", obs("A", "vital-signs"))
    assert not allowed(c, "read", obs("A", "vital-signs"))
    # Bypass checklist 14: the filter also applies to writes.
    w = ctx(f"patient/Observation.cu?category={LAB}")
    assert allowed(w, "create", obs("A", "laboratory")) and not allowed(
        w, "create", obs("A", "vital-signs")
    )


def test_percent_encoded_filter_values_mean_the_same_and_cannot_smuggle() -> None:
    encoded = parse_scopes(f"patient/Observation.rs?category={LAB.replace('|', '%7C')}")
    plain = parse_scopes(f"patient/Observation.rs?category={LAB}")
    assert encoded.scopes[0].filters == plain.scopes[0].filters
    with pytest.raises(ScopeError):
        parse_scopes("patient/Observation.rs?status=final%26category%3Dx")


def test_scope_vector_17_two_filtered_scopes_are_a_union() -> None:
    c = ctx(f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}")
    assert allowed(c, "read", obs("A", "laboratory")) and allowed(
        c, "read", obs("A", "vital-signs")
    )
    assert not allowed(c, "read", obs("A", "social-history"))


def test_scope_vector_18_filters_in_one_scope_must_all_match() -> None:
    c = ctx(f"patient/Observation.rs?category={LAB}&status=final")
    assert allowed(c, "read", obs("A", "laboratory", "final"))
    assert not allowed(c, "read", obs("A", "laboratory", "preliminary"))
    assert not allowed(c, "read", obs("A", "vital-signs", "final"))


def test_scope_vector_19_chained_filter_is_rejected() -> None:
    with pytest.raises(ScopeError, match="chain"):
        parse_scopes("patient/Observation.rs?subject.name=Smith")


def test_scope_vector_20_modifier_is_rejected() -> None:
    with pytest.raises(ScopeError, match="modifier"):
        parse_scopes("patient/Observation.rs?code:in=http://example.org/ValueSet/x")


def test_scope_vector_21_revinclude_is_rejected() -> None:
    with pytest.raises(ScopeError, match="_revinclude"):
        parse_scopes("patient/Patient.rs?_revinclude=Observation:subject")


@pytest.mark.parametrize(
    "query",
    [
        "active",
        "code:exact=a=b",
        "identifier=x?mrn=1",
        "",
        "status=",
        "status=final&",
        "status=a,,b",
    ],
)
def test_scope_vector_22_malformed_filters(query: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(f"patient/Observation.rs?{query}")


def test_scope_vector_23_non_data_scopes_grant_no_data() -> None:
    s = parse_scopes("launch/patient openid fhirUser offline_access")
    assert s.scopes == () and s.other == {"launch/patient", "openid", "fhirUser", "offline_access"}
    assert not any(grid(ctx("launch/patient openid fhirUser offline_access")).values())


def test_scope_vector_24_patient_scope_without_patient_in_context_is_refused() -> None:
    with pytest.raises(ScopeError, match="patient in context"):
        ctx("patient/*.rs", patient_id=None)


def test_scope_vector_25_front_desk_with_user_star_cruds_keeps_role_matrix() -> None:
    with_token = grid(ctx("user/*.cruds", role="front_desk", patient_id=None))
    role_only = grid(ctx(None, role="front_desk", patient_id=None))
    assert with_token == role_only
    assert (
        role_only[("Patient", "A", "read")]
        and not role_only[("Observation", "obs-A-vital-signs-final", "read")]
    )


def test_scope_vector_26_system_scope_on_interactive_session_is_rejected() -> None:
    with pytest.raises(ScopeError, match="interactive"):
        ctx("system/*.rs", patient_id=None)
    backend = ctx("system/*.rs", role="system", patient_id=None, interactive=False)
    assert allowed(backend, "read", obs("B"))


def test_scope_vector_27_include_of_performer_is_left_out() -> None:
    # Included resources are decided one by one with "read"; the scope covers only Observation.
    c = ctx("patient/Observation.rs")
    practitioner = {"resourceType": "Practitioner", "id": "dr-1"}
    assert allowed(c, "read", obs("A"))
    assert not allowed(c, "read", practitioner)


def test_patient_scopes_reach_shared_reference_data_but_not_audit_or_orphans() -> None:
    c = ctx("patient/*.rs")
    assert allowed(c, "read", {"resourceType": "Practitioner", "id": "dr-1"})
    orphan = {"resourceType": "Observation", "id": "x"}  # names no patient: nobody's to see
    assert not allowed(c, "read", orphan)
    system = ctx("patient/*.rs", role="system", interactive=False)
    assert not allowed(system, "read", {"resourceType": "AuditEvent", "id": "ae"})
    assert not allowed(
        ctx("patient/Observation.rs"), "read", {"resourceType": "Practitioner", "id": "dr-1"}
    )


def test_scope_vector_28_batch_entries_are_decided_one_by_one() -> None:
    c = ctx("patient/Observation.rs")
    entries = [("read", obs("A")), ("create", obs("A", oid="new"))]
    assert [allowed(c, action, r) for action, r in entries] == [True, False]


def test_scope_vector_29_bulk_export_needs_a_system_scope() -> None:
    c = ctx("patient/*.rs")
    decision = POLICY.can_type(c, "export", "Observation")
    assert not decision.allowed and "system/" in decision.reason
    backend = ctx("system/*.rs", role="system", patient_id=None, interactive=False)
    assert POLICY.can_type(backend, "export", "Observation").allowed


def test_scope_vector_30_empty_string_allows_nothing() -> None:
    s = parse_scopes("")
    assert s == ScopeSet.empty() or s.scopes == ()
    assert not any(grid(ctx("", patient_id=None)).values())


def test_parse_is_cached_and_errors_name_the_token() -> None:
    assert parse_scopes("user/Patient.rs") is parse_scopes("user/Patient.rs")
    with pytest.raises(ScopeError, match="patient/Observation.dus"):
        parse_scopes("user/Patient.rs patient/Observation.dus")


SCOPE_ALPHABET = st.sampled_from(
    list("patientusersystem/.*?&=:|,_- \t\n")
    + ["Observation", "Patient", "cruds", "read", "write", "category"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(SCOPE_ALPHABET, max_size=20).map("".join)))
def test_fuzz_scope_strings_never_crash(text: str) -> None:
    try:
        result = parse_scopes(text)
    except ScopeError as exc:
        assert str(exc)
        return
    assert isinstance(result, ScopeSet)
    for sc in result.scopes:
        assert sc.kind in ("patient", "user", "system") and sc.perms and sc.perms <= set("cruds")
