"""Issue 13: each class of leak stated as a general rule over roles, records and queries.

Search over hidden data (chains, includes), masked values, history, labels, purpose of use,
Provenance, front-desk messaging and existence oracles. De-identification, audit, keys and
hostile input have their own modules (test_deid_allowlist, test_audit_gaps, test_keys_at_rest,
test_hostile_input).
"""

from __future__ import annotations

import inspect
from itertools import islice

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import patient_of, patients_of
from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY,
    NOTE_TYPE,
    SANDBOX_RULES,
    active_rules,
    assign_labels,
    confidentiality_of,
    content_rules,
    sensitivities_of,
)
from ehr_sandbox.access.masking import MASKS, masked_search_params
from ehr_sandbox.access.roles import ROLES, purpose_of_use
from ehr_sandbox.errors import AccessDenied, NotFound, ValidationError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.search.registry import params_for

SLOW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    """A small clinic where the nurse rooms some of dr.patel's patients this week, not all
    (two of them are booked today; which patients the generator books varies with content)."""
    clinic = Sandbox.generate(patients=10, seed=13, years=2)
    system = clinic.system_session()
    today = clinic.reference_date.isoformat()
    for pid in sorted(clinic.treating("dr.patel"))[:2]:
        system.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": f"{today}T10:00:00+00:00",
                "end": f"{today}T10:20:00+00:00",
                "participant": [
                    {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/prac-dr.patel"}, "status": "accepted"},
                ],
            }
        )
    assert clinic.treating("rn.kim") & clinic.treating("dr.patel")
    assert clinic.treating("dr.patel") - clinic.treating("rn.kim")
    return clinic


def _grader(sb: Sandbox):
    return sb.grader_session()


def _encounters_of_treated(sb: Sandbox, user: str) -> list[dict]:
    treated = sb.treating(user)
    return [e for e in _grader(sb).search("Encounter").fetch() if patient_of(e) in treated]


# ------------------------------------------------------------------ High 3: labels
def test_content_and_sandbox_rules_are_merged_not_replaced() -> None:
    rules = set(active_rules())
    assert set(content_rules()) <= rules and set(SANDBOX_RULES) <= rules
    for rule in SANDBOX_RULES:  # every built-in rule labels its data by default
        res = {
            "resourceType": "DocumentReference",
            "type": {"coding": [{"system": rule.system, "code": rule.code}]},
        }
        labels = assign_labels(res)
        assert confidentiality_of({"meta": {"security": labels}}) == rule.confidentiality
        assert set(rule.sensitivity) <= sensitivities_of({"meta": {"security": labels}})


def test_labels_module_has_no_silent_fallback() -> None:
    import ehr_sandbox.access.labels as labels

    source = inspect.getsource(labels)
    assert "except Exception" not in source


def test_psychotherapy_note_charted_through_the_session_is_v_and_hidden(sb: Sandbox) -> None:
    fresh = sb.copy()
    doc = sb.login("dr.patel")
    pid = sorted(fresh.treating("rn.kim") & fresh.treating("dr.patel"))[0]
    author = fresh.user("dr.patel").practitioner_id
    note = fresh.login("dr.patel").create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "author": [{"reference": f"Practitioner/{author}"}],
            "type": {"coding": [{"system": NOTE_TYPE, "code": "psychotherapy"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": "c2Vzc2lvbg=="}}],
        }
    )
    assert doc is not None
    assert confidentiality_of(note) == "V" and "PSYTHPN" in sensitivities_of(note)
    assert fresh.login("dr.patel").read("DocumentReference", note["id"])["id"] == note["id"]
    with pytest.raises(NotFound):
        fresh.login("rn.kim").read("DocumentReference", note["id"])
    nurse = fresh.login("rn.kim")
    nurse.break_glass(pid, reason="code blue")
    with pytest.raises(NotFound):
        nurse.read("DocumentReference", note["id"])


# ------------------------------------------------------------------ High 4: chains and includes
def _relabel_r(fresh: Sandbox, ref: str) -> None:
    fresh.login("po.wilson").relabel(ref, "R", reason="mental-health visit")


@SLOW
@given(st.integers(min_value=0, max_value=50), st.sampled_from(["rn.kim", "ma.garcia"]))
def test_chained_search_only_goes_through_records_the_user_may_see(sb, pick, user) -> None:
    encounters = _encounters_of_treated(sb, user)
    if not encounters:
        return
    fresh = sb.copy()
    hidden = encounters[pick % len(encounters)]
    _relabel_r(fresh, f"Encounter/{hidden['id']}")
    s = fresh.login(user)
    # Whatever the chain asks about the hidden encounter, no result may depend on it.
    for params in (
        {"encounter:Encounter._id": hidden["id"]},
        {"encounter:Encounter.status": hidden["status"]},
    ):
        for obs in s.search("Observation", params).fetch():
            enc = (obs.get("encounter") or {}).get("reference")
            assert enc != f"Encounter/{hidden['id']}"
            assert enc is None or s.exists(enc)


def test_billing_cannot_list_patients_through_a_chain_over_excluded_data(sb: Sandbox) -> None:
    fresh = sb.copy()
    enc = _grader(fresh).search("Encounter").first()
    po = fresh.login("po.wilson")
    po.relabel(f"Encounter/{enc['id']}", "R", reason="42 CFR Part 2", sensitivity=["SUD"])
    billing = fresh.login("billing.davis")
    got = billing.search("Claim", {"encounter:Encounter._id": enc["id"]}).fetch()
    got += billing.search("Procedure", {"encounter:Encounter._id": enc["id"]}).fetch()
    assert got == []


def test_has_is_refused(sb: Sandbox) -> None:
    from ehr_sandbox.errors import SearchError

    with pytest.raises(SearchError):
        sb.login("rn.kim").search("Patient", {"_has:Encounter:patient:status": "finished"}).fetch()


def test_includes_never_hop_through_a_hidden_resource(sb: Sandbox) -> None:
    fresh = sb.copy()
    user = "rn.kim"
    enc = _encounters_of_treated(fresh, user)[0]
    _relabel_r(fresh, f"Encounter/{enc['id']}")
    s = fresh.login(user)
    got = s.search(
        "Observation",
        {
            "patient": f"Patient/{patient_of(enc)}",
            "_include": "Observation:encounter",
            "_include:iterate": "Encounter:practitioner",
        },
    ).fetch_all()
    assert all(s.exists(f"{r['resourceType']}/{r['id']}") for r in got)
    assert not any(r["resourceType"] == "Encounter" and r["id"] == enc["id"] for r in got)


# ------------------------------------------------------------------ High 5: masked values
@pytest.mark.parametrize("role", sorted(MASKS))
def test_every_masked_element_is_unsearchable_and_unsortable(sb: Sandbox, role: str) -> None:
    user = next((u.username for u in sb.users if u.role == role), None)
    if user is None:
        pytest.skip(f"no {role} user in the sandbox")
    s = sb.login(user)
    for rtype in sorted(t for t in MASKS[role] if t != "*"):
        if not s.can_read(rtype):
            continue
        for name in sorted(masked_search_params(role, rtype)):
            p = params_for(rtype)[name]
            value = {
                "quantity": "gt0",
                "token": "x",
                "string": "x",
                "date": "gt1900",
                "reference": "Patient/x",
                "number": "gt0",
                "uri": "x",
            }.get(p.type, "x")
            with pytest.raises(AccessDenied):
                s.search(rtype, {name: value}).fetch()
            with pytest.raises(AccessDenied):
                s.search(rtype, {"_sort": name}).fetch()


def test_search_results_never_depend_on_a_masked_value(sb: Sandbox) -> None:
    """Two sandboxes that differ only in one masked value answer every allowed query alike."""
    a = sb.copy()
    b = sb.copy()
    obs = next(
        o
        for o in _grader(sb).search("Observation").fetch()
        if isinstance((o.get("valueQuantity") or {}).get("value"), int | float)
    )
    v = obs["valueQuantity"]["value"]
    changed = {**obs, "valueQuantity": {**obs["valueQuantity"], "value": v - 1}}
    b.system_session().update(changed, reason="test")  # flips "gt(v - 0.5)" for this record
    queries = [
        {name: q}
        for name, q in (
            ("value-quantity", f"gt{v - 0.5}"),
            ("value-quantity", f"lt{v - 0.5}"),
            ("code", obs["code"]["coding"][0]["code"]),
            ("_sort", "value-quantity"),
            ("_sort", "-date"),
            ("value-concept", "x"),
            ("status", "final"),
        )
    ]
    for q in queries:
        answers = []
        for sandbox in (a, b):
            try:
                answers.append(
                    [
                        r["id"]
                        for r in sandbox.login("billing.davis").search("Observation", q).fetch()
                    ]
                )
            except AccessDenied:
                answers.append("refused")
        assert answers[0] == answers[1], q


# ------------------------------------------------------------------ Medium: history
def test_type_history_decides_each_record_on_its_current_version(sb: Sandbox) -> None:
    fresh = sb.copy()
    user = "rn.kim"
    pid = sorted(fresh.treating(user))[0]
    obs = _grader(fresh).search("Observation", patient=f"Patient/{pid}").first()
    _relabel_r(fresh, f"Observation/{obs['id']}")
    history = fresh.login(user).history("Observation")
    assert obs["id"] not in {v["id"] for v in history}
    for v in history:  # the general rule: every version shown has a readable current version
        assert fresh.login(user).exists(f"Observation/{v['id']}")


# ------------------------------------------------------------------ Medium: Provenance
def test_a_writes_provenance_is_in_its_patients_compartment(sb: Sandbox) -> None:
    fresh = sb.copy()
    doc = fresh.login("dr.patel")
    pid = sorted(fresh.treating("dr.patel") - fresh.treating("rn.kim"))[0]
    cond = _grader(fresh).search("Condition", patient=f"Patient/{pid}").first()
    doc.correct({**doc.read("Condition", cond["id"])}, reason="patient disclosed HIV status")
    for user in ("rn.kim", "rn.lopez"):
        s = fresh.login(user)
        treated = fresh.treating(user)
        for prov in s.search("Provenance").fetch():
            assert patients_of(prov) <= treated, "a Provenance of an untreated patient"
            assert "HIV" not in str(prov.get("reason")) or pid in treated
    prov = doc.provenance(f"Condition/{cond['id']}")[-1]
    assert pid in patients_of(prov)


# ------------------------------------------------------------------ Medium: front desk
def test_front_desk_has_no_clinical_messages(sb: Sandbox) -> None:
    assert "Communication" not in ROLES["front_desk"].table
    fd = sb.login("fd.smith")
    assert not fd.can_read("Communication")
    with pytest.raises(AccessDenied):
        fd.create({"resourceType": "Communication", "status": "completed"})


# ------------------------------------------------------------------ Medium: purpose of use
def test_purpose_of_use_comes_only_from_the_role(sb: Sandbox) -> None:
    assert "purpose" not in inspect.signature(Sandbox.login).parameters
    for user in sb.users:
        assert sb.login(user.username).context.purpose == purpose_of_use(user.role)
    with pytest.raises(TypeError):
        sb.login("rn.kim", purpose="ETREAT")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        sb.system_session("ETREAT")


# ------------------------------------------------------------------ Low: oracles, BTG, labels
def test_relabel_answers_the_same_for_hidden_and_absent(sb: Sandbox) -> None:
    obs = _grader(sb).search("Observation").first()
    for user in ("rn.kim", "billing.davis", "fd.smith"):
        s = sb.login(user)
        errors = []
        for ref in (f"Observation/{obs['id']}", "Observation/no-such-obs"):
            with pytest.raises((AccessDenied, NotFound)) as e:
                s.relabel(ref, "R", reason="x")
            errors.append((type(e.value), str(e.value)))
        assert errors[0] == errors[1]
    with pytest.raises(NotFound):
        sb.login("po.wilson").relabel("Observation/no-such-obs", "R", reason="x")


def test_transaction_post_ignores_the_client_id_and_put_never_probes(sb: Sandbox) -> None:
    fresh = sb.copy()
    pid = sorted(fresh.treating("rn.kim"))[0]
    hidden = _grader(fresh).search("Observation").fetch()
    hidden = next(o for o in hidden if patient_of(o) not in fresh.treating("rn.kim"))
    nurse = fresh.login("rn.kim")
    base = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-01",
    }
    for client_id in (hidden["id"], "never-used-id"):
        out = nurse.transaction(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {**base, "id": client_id},
                        "request": {"method": "POST", "url": "Observation"},
                    }
                ],
            }
        )
        loc = out["entry"][0]["response"]["location"]
        assert client_id not in loc
    messages = []
    for rid in (hidden["id"], "never-used-id"):
        with pytest.raises(NotFound) as e:
            nurse.transaction(
                {
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [
                        {
                            "resource": {**base, "id": rid},
                            "request": {"method": "PUT", "url": f"Observation/{rid}"},
                        }
                    ],
                }
            )
        messages.append(str(e.value).replace(rid, "?"))
        assert "version" not in str(e.value)
    assert messages[0] == messages[1]


@pytest.mark.parametrize("form", ["id", "ref", "resource"])
def test_end_break_glass_accepts_what_break_glass_accepts(sb: Sandbox, form: str) -> None:
    pid = sorted(
        set(p["id"] for p in _grader(sb).search("Patient").fetch()) - sb.treating("rn.kim")
    )[0]
    nurse = sb.login("rn.kim")
    nurse.break_glass(pid, reason="unconscious in the waiting room")
    arg = {"id": pid, "ref": f"Patient/{pid}", "resource": {"resourceType": "Patient", "id": pid}}[
        form
    ]
    nurse.end_break_glass(arg)
    assert nurse.context.btg == frozenset()
    with pytest.raises(ValidationError):
        nurse.end_break_glass(arg)  # nothing active any more: said, not silently ignored


def test_search_bundles_and_reports_carry_the_highest_label(sb: Sandbox) -> None:
    fresh = sb.copy()
    pid = sorted(fresh.treating("dr.patel"))[0]
    cond = _grader(fresh).search("Condition", patient=f"Patient/{pid}").first()
    _relabel_r(fresh, f"Condition/{cond['id']}")
    doc = fresh.login("dr.patel")
    bundle = doc.search("Condition", patient=f"Patient/{pid}").bundle()
    levels = [confidentiality_of(e["resource"]) or "N" for e in bundle["entry"]]
    want = max(levels, key="ULMNRV".index)
    assert bundle["meta"]["security"][0] == {
        "system": CONFIDENTIALITY,
        "code": want,
        "display": "restricted",
    } or (bundle["meta"]["security"][0]["code"] == want)
    assert want == "R"
    report = doc.reports.sql("SELECT count(*) AS n FROM condition")
    assert report.confidentiality == "R"
    assert (
        fresh.login("rn.kim").reports.sql("SELECT count(*) AS n FROM condition").confidentiality
        == "N"
    )
    assert ACT_CODE  # (sensitivity codes travel on the resources themselves)


def test_resources_iteration_is_audited_before_data_leaves(sb: Sandbox) -> None:
    fresh = sb.copy()
    s = fresh.login("dr.patel")
    before = fresh.audit.count()
    first = list(islice(s.resources("Observation"), 1))
    assert first
    events = fresh.audit.events()[before:]
    pid = patient_of(first[0])
    assert any(e.get("outcome") == "0" and pid in str(e.get("entity")) for e in events), (
        "the patient whose data left has an audit event"
    )


def test_an_import_over_a_hidden_id_answers_as_over_an_absent_one(sb: Sandbox, tmp_path) -> None:
    """A user's import gives new records server-assigned ids (as a POST does), so an id a
    hidden record holds and a free one import alike (before: the hidden one was refused, the
    free one kept, an oracle for which ids hidden records hold); the hidden record is
    untouched, and a reference to the chosen id in the same file follows the new id."""
    import json

    fresh = sb.copy()
    nurse_patients = fresh.treating("rn.kim")
    pid = sorted(nurse_patients)[0]
    hidden = next(
        o
        for o in _grader(fresh).search("Observation").fetch()
        if patient_of(o) not in nurse_patients
    )

    def run(rid: str) -> tuple[dict[str, int], str]:
        lines = [
            {
                "resourceType": "Observation",
                "id": rid,
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": "2026-01-01",
            },
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": "2026-01-01",
                "hasMember": [{"reference": f"Observation/{rid}"}],
            },
        ]
        path = tmp_path / f"obs-{rid[:8]}.ndjson"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        s = fresh.login("rn.kim")
        counts = s.import_([str(path)])
        panel = s.search("Observation", code="85354-9", patient=f"Patient/{pid}").fetch_all()
        return counts, panel[-1]["hasMember"][0]["reference"]

    before = _grader(fresh).read("Observation", hidden["id"])
    counts_hidden, member_hidden = run(hidden["id"])
    counts_absent, member_absent = run("f" * 32)
    assert counts_hidden == counts_absent == {"Observation": 2}
    assert _grader(fresh).read("Observation", hidden["id"]) == before
    for member, chosen in ((member_hidden, hidden["id"]), (member_absent, "f" * 32)):
        assert member != f"Observation/{chosen}"  # a server-assigned id ...
        assert fresh.login("rn.kim").read(member)["code"]["coding"][0]["code"] == "8867-4"
