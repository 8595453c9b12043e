"""The EMR/EHR network: silos in EMR mode, the exchange with its MPI and provenance in EHR mode."""

from __future__ import annotations

import pytest

from ehr_sandbox.errors import AccessDenied, ArgumentError, NotFound
from ehr_sandbox.network import OUTSIDE_TAG, REKEYED_TAG, Network, score_pair

SEED = 11


@pytest.fixture(scope="module")
def emr() -> Network:
    return Network.generate(seed=SEED, mode="emr", patients=12, people=3)


@pytest.fixture(scope="module")
def ehr() -> Network:
    return Network.generate(seed=SEED, mode="ehr", patients=12, people=3)


def _pairs_linked(net: Network) -> set[frozenset[str]]:
    out: set[frozenset[str]] = set()
    for refs in net.exchange.mpi.links().values():
        out |= {frozenset((a, b)) for i, a in enumerate(refs) for b in refs[i + 1 :]}
    return out


def test_four_organizations_each_with_own_staff_and_mrns(emr: Network):
    orgs = emr.organizations
    assert {o.kind for o in orgs.values()} == {
        "primary-care",
        "cardiology",
        "hospital-ed",
        "laboratory",
    }
    sandboxes = {id(o.sandbox) for o in orgs.values()}
    assert len(sandboxes) == 4
    p = emr.journey.people[0]
    mrns = set()
    for key, pid in p.records.items():
        patient = orgs[key].sandbox.system_session().read("Patient", pid)
        mrns |= {i["value"] for i in patient["identifier"] if i["system"].endswith("/mrn")}
    assert len(mrns) == 4, "each organization gives the same person its own MRN"


def test_registrations_disagree_realistically(emr: Network):
    kinds = {v for p in emr.journey.people for changes in p.variations.values() for v in changes}
    assert {"nickname", "old-address"} <= kinds
    assert kinds & {"transposed-birth-date"}
    hospital = emr.org("hospital").sandbox.system_session()
    clinic = emr.org("clinic").sandbox.system_session()
    for p in emr.journey.people:
        here = [
            a
            for a in hospital.search("AllergyIntolerance", patient=p.ref("hospital")).fetch()
            if a["code"]["coding"][0]["code"] == "764146007"
        ]
        there = [
            a
            for a in clinic.search("AllergyIntolerance", patient=p.ref("clinic")).fetch()
            if a["code"]["coding"][0]["code"] == "764146007"
        ]
        assert here and not there, "the penicillin allergy is known only at the ED"


def test_emr_mode_has_no_path_between_organizations(emr: Network):
    p = emr.journey.people[0]
    clinic_doc = emr.login("clinic", "dr.patel")
    with pytest.raises(AccessDenied, match="EMR mode has no exchange"):
        _ = emr.exchange
    for org, pid in p.records.items():
        if org == "clinic":
            continue
        with pytest.raises(NotFound):
            clinic_doc.read("Patient", pid)
        assert clinic_doc.search("AllergyIntolerance", patient=f"Patient/{pid}").fetch() == []
    assert not any(hasattr(clinic_doc, name) for name in ("network", "exchange", "organizations"))


def test_documents_must_be_rekeyed_by_the_receiver(emr: Network):
    p = emr.journey.people[0]
    doc = emr.send(
        "fhir-document",
        emr.login("hospital", "dr.okafor"),
        "hospital",
        p.records["hospital"],
        "clinic",
        created="2025-12-18",
    )
    assert (
        doc.bundle["type"] == "document"
        and doc.bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    )
    assert "Penicillin" in doc.text and p.records["hospital"] not in doc.text.split("MRN")[0]
    with pytest.raises(AccessDenied, match="re-key it there"):
        emr.rekey(doc, emr.login("cardiology", "ma.garcia"), p.records["cardiology"])
    with pytest.raises(AccessDenied):
        emr.send(
            "referral-letter",
            emr.login("clinic", "dr.patel"),
            "hospital",
            p.records["hospital"],
            "clinic",
            created="2025-12-18",
        )
    before = len(emr.rekey_errors)
    result = emr.rekey(doc, emr.login("clinic", "ma.garcia"), p.records["clinic"])
    assert result.steps >= 2
    assert len(emr.rekey_errors) == before + len(result.errors)
    s = emr.org("clinic").sandbox.system_session()
    for ref in result.created:
        res = s.read(ref)
        assert REKEYED_TAG["code"] in {t["code"] for t in res["meta"]["tag"]}
        provs = s.provenance(ref)
        assert any("re-keyed from fhir-document" in str(pr.get("reason")) for pr in provs)
    for err in result.errors:
        assert (
            err.kind in ("omitted", "digits-transposed", "wrong-sig") and err.expected != err.keyed
        )


def test_rekeying_errors_are_deterministic_for_a_seed():
    def errors() -> list[tuple[str, str, str]]:
        net = Network.generate(seed=SEED, mode="emr", patients=12, people=3)
        p = net.journey.people[1]
        doc = net.send(
            "visit-summary",
            net.org("lab").sandbox.system_session(),
            "lab",
            p.records["lab"],
            "clinic",
            created="2025-12-12",
        )
        net.rekey(doc, net.login("clinic", "ma.garcia"), p.records["clinic"])
        return [(e.item, e.kind, e.keyed) for e in net.rekey_errors]

    assert errors() == errors()


def test_network_matching_precision_and_recall(ehr: Network):
    truth = ehr.journey.truth_pairs()
    linked = _pairs_linked(ehr)
    tp = len(linked & truth)
    precision = tp / len(linked) if linked else 1.0
    recall = tp / len(truth)
    twin_a, twin_b = ehr.journey.twins
    mpi = ehr.exchange.mpi
    assert mpi.enterprise_id(f"hospital/Patient/{twin_a}") != mpi.enterprise_id(
        f"hospital/Patient/{twin_b}"
    )
    assert precision == 1.0, "no false merges at the default thresholds"
    assert 0.5 <= recall <= 1.0
    # every true pair the matcher left apart scored below the link threshold, with its reasons
    reviewed = {frozenset((a, b)) for a, b, _ in mpi.reviews()}
    for pair in truth - linked:
        a, b = sorted(pair)
        pa, pb = (
            ehr.org(r.split("/")[0]).sandbox._store.read("Patient", r.split("/")[2]) for r in (a, b)
        )
        score = score_pair(pa, pb, mpi.config)
        assert score.decision != "match" and "Against" in score.explanation
    assert frozenset((f"hospital/Patient/{twin_a}", f"hospital/Patient/{twin_b}")) in reviewed


def test_patient_link_records_matches(ehr: Network):
    mpi = ehr.exchange.mpi
    for p in ehr.journey.people:
        clinic_ref = f"clinic/Patient/{p.records['clinic']}"
        patient = ehr.org("clinic").sandbox.system_session().read("Patient", p.records["clinic"])
        expected = mpi.patient_links(clinic_ref)
        assert patient.get("link", []) == expected
        linked_orgs = {r.split("/")[0] for r in mpi.links()[mpi.enterprise_id(clinic_ref)]} - {
            "clinic"
        }
        assert len(expected) == len(linked_orgs)


def test_record_locator_and_provenance_survive_retrieval(ehr: Network):
    x = ehr.exchange
    p = next(
        p
        for p in ehr.journey.people
        if x.mpi.enterprise_id(f"hospital/Patient/{p.records['hospital']}")
        == x.mpi.enterprise_id(f"cardiology/Patient/{p.records['cardiology']}")
    )
    s = ehr.login("cardiology", "dr.nguyen")
    pid = p.records["cardiology"]
    where = {loc.org: loc for loc in x.locate(s, "cardiology", pid) if loc.linked}
    assert "hospital" in where and where["hospital"].counts.get("AllergyIntolerance", 0) >= 1
    assert "MATCH" in where["hospital"].explanation
    outside = x.retrieve(s, "cardiology", pid)
    orgs = {o.url: o for o in ehr.organizations.values()}
    assert outside.resources
    for res in outside.resources:
        assert res["meta"]["source"] in orgs and res["meta"]["source"] != ehr.org("cardiology").url
        assert OUTSIDE_TAG in res["meta"]["tag"]
    for prov in outside.provenance:
        org = orgs[prov["entity"][0]["what"]["reference"].split("/Patient/")[0]]
        assert prov["agent"][0]["who"]["display"] == org.name
    # nothing was mixed into the local chart
    local = ehr.org("cardiology").sandbox.system_session()
    assert local.search("AllergyIntolerance", patient=f"Patient/{pid}").fetch() == []
    allergy = next(
        r
        for r in outside.of_type("AllergyIntolerance")
        if r["code"]["coding"][0]["code"] == "764146007"
    )
    saved = x.reconcile(
        s, allergy, pid, reason="allergy reported by the ED; confirmed with the patient"
    )
    stored = local.read("AllergyIntolerance", saved["id"])
    assert stored["meta"]["source"] == ehr.org("hospital").url
    assert any(
        "confirmed with the patient" in str(pr.get("reason"))
        for pr in local.provenance(f"AllergyIntolerance/{saved['id']}")
    )


def test_exchange_access_goes_through_both_policies(ehr: Network):
    x = ehr.exchange
    p = ehr.journey.people[0]
    pid = p.records["cardiology"]
    front = ehr.login("cardiology", "fd.smith")
    got = x.retrieve(front, "cardiology", pid)
    clinical = [
        r
        for r in got.resources
        if r["resourceType"] in ("AllergyIntolerance", "Observation", "MedicationRequest")
    ]
    assert clinical == [], "the front desk's role does not reach clinical data at the source either"
    billing = ehr.login("cardiology", "billing.davis")
    got = x.retrieve(billing, "cardiology", pid)
    assert not got.of_type("AllergyIntolerance"), "billing never sees allergies"
    assert all("valueQuantity" not in o for o in got.of_type("Observation")), (
        "result values are masked for billing"
    )
    no_relationship = ehr.login("cardiology", "dr.patel")
    with pytest.raises(NotFound):
        x.retrieve(no_relationship, "cardiology", pid)
    other_org = ehr.login("clinic", "dr.patel")
    with pytest.raises(AccessDenied, match="another organization"):
        x.retrieve(other_org, "cardiology", pid)


def test_downtime_hides_an_organization(ehr: Network):
    x = ehr.exchange
    p = ehr.journey.people[1]
    s = ehr.login("cardiology", "dr.nguyen")
    x.down.add("lab")
    try:
        got = x.retrieve(s, "cardiology", p.records["cardiology"])
        assert "lab" not in got.sources
        assert all(r["meta"]["source"] != ehr.org("lab").url for r in got.resources)
    finally:
        x.down.discard("lab")


def test_bad_arguments_are_named():
    with pytest.raises(ArgumentError, match="mode"):
        Network.generate(seed=1, mode="cloud")
    with pytest.raises(ArgumentError, match="patients"):
        Network.generate(seed=1, mode="emr", patients=1)


def test_the_source_audits_each_disclosure(ehr: Network):
    x = ehr.exchange
    p = ehr.journey.people[2]
    s = ehr.login("cardiology", "dr.nguyen")
    x.retrieve(s, "cardiology", p.records["cardiology"])
    events = ehr.org("lab").sandbox.audit.events(user="hie:cardiology:dr.nguyen")
    assert events, "the lab's own audit trail shows who at which organization received its data"
    assert ehr.org("lab").sandbox.audit.verify().ok


def test_a_lax_threshold_makes_false_merges_visible():
    from ehr_sandbox.network import MatchConfig

    lax = Network.generate(
        seed=SEED,
        mode="ehr",
        patients=12,
        people=3,
        match_config=MatchConfig(link_threshold=30.0, review_threshold=15.0),
    )
    twin_a, twin_b = lax.journey.twins
    mpi = lax.exchange.mpi
    assert mpi.enterprise_id(f"hospital/Patient/{twin_a}") == mpi.enterprise_id(
        f"hospital/Patient/{twin_b}"
    )
    linked = _pairs_linked(lax)
    truth = lax.journey.truth_pairs()
    assert len(linked - truth) >= 1, "the twins' merge is a false merge the truth reveals"
    twin = lax.org("hospital").sandbox.system_session().read("Patient", twin_b)
    assert any(link["type"] in ("replaced-by", "replaces") for link in twin.get("link", [])), (
        "and Patient.link shows it"
    )
    lax.exchange.unlink(f"hospital/Patient/{twin_b}")
    assert mpi.enterprise_id(f"hospital/Patient/{twin_a}") != mpi.enterprise_id(
        f"hospital/Patient/{twin_b}"
    )
    assert (
        lax.org("hospital").sandbox.system_session().read("Patient", twin_b).get("link", []) == []
    )


def test_missed_match_is_visible_and_a_person_can_link_it():
    net = Network.generate(seed=SEED, mode="ehr", patients=12, people=3)
    x = net.exchange
    missed = [
        p
        for p in net.journey.people
        if x.mpi.enterprise_id(f"hospital/Patient/{p.records['hospital']}")
        != x.mpi.enterprise_id(f"clinic/Patient/{p.records['clinic']}")
    ]
    assert missed, (
        "a nickname plus an old address is enough to miss a match at the default thresholds"
    )
    p = missed[0]
    s = net.login("clinic", "dr.patel")
    hospital_ref = f"Patient/{p.records['hospital']}"
    shown = [
        loc for loc in x.locate(s, "clinic", p.records["clinic"]) if loc.patient_ref == hospital_ref
    ]
    assert shown and not shown[0].linked and shown[0].explanation.startswith("REVIEW")
    assert "hospital" not in x.retrieve(s, "clinic", p.records["clinic"]).sources
    x.link(f"clinic/Patient/{p.records['clinic']}", f"hospital/{hospital_ref}")
    assert "hospital" in x.retrieve(s, "clinic", p.records["clinic"]).sources
    clinic_patient = net.org("clinic").sandbox.system_session().read("Patient", p.records["clinic"])
    assert any(
        link["other"]["reference"].endswith(f"hospital/{hospital_ref}")
        for link in clinic_patient["link"]
    )


@pytest.mark.parametrize("sensitivity", [[], ["HIV", "SDV"]])
def test_a_reconciled_copy_keeps_the_labels_of_its_source(sensitivity: list[str]):
    """Filing an outside record in the local chart copies it: the copy carries at least the
    confidentiality and sensitivity labels the source organization gave it, so a local user
    who could not see it at the source does not see it here either. (Before, the copy was
    labelled from its codes alone: an allergy the source's privacy officer had restricted came
    back as normal data for every local role.)"""
    from ehr_sandbox.access.labels import confidentiality_of, sensitivities_of

    net = Network.generate(seed=SEED, mode="ehr", patients=12, people=3)
    x = net.exchange
    p = next(
        p
        for p in net.journey.people
        if x.mpi.enterprise_id(f"hospital/Patient/{p.records['hospital']}")
        == x.mpi.enterprise_id(f"cardiology/Patient/{p.records['cardiology']}")
    )
    source = net.org("hospital").sandbox
    allergy = next(
        a
        for a in source.system_session().search(
            "AllergyIntolerance", patient=f"Patient/{p.records['hospital']}"
        )
    )
    source.login("po.wilson").relabel(
        f"AllergyIntolerance/{allergy['id']}",
        "R",
        reason="disclosed in confidence",
        sensitivity=sensitivity,
    )
    s = net.login("cardiology", "dr.nguyen")
    pid = p.records["cardiology"]
    outside = next(
        r
        for r in x.retrieve(s, "cardiology", pid).of_type("AllergyIntolerance")
        if r["id"] == allergy["id"]
    )
    saved = x.reconcile(s, outside, pid, reason="reported by the ED; confirmed with the patient")
    stored = net.org("cardiology").sandbox.system_session().read("AllergyIntolerance", saved["id"])
    assert confidentiality_of(stored) == "R"
    assert set(sensitivity) <= sensitivities_of(stored)


@pytest.mark.parametrize("level", ["N", "R"])
def test_a_document_carries_the_highest_confidentiality_it_states(level: str):
    """A document sent to another organization (a FHIR document Bundle, a referral letter, a
    faxed summary) carries the highest confidentiality of the records it states, in its
    ``confidentiality`` and, for a FHIR document, the Bundle's ``meta.security`` (PRIVACY.md: a
    Bundle or report output carries the highest confidentiality of its contents). Before, a
    document stating a restricted allergy carried no mark at all."""
    from ehr_sandbox.access.labels import CONFIDENTIALITY_RANK, confidentiality_of

    net = Network.generate(seed=SEED, mode="emr", patients=12, people=3)
    p = net.journey.people[0]
    source = net.org("hospital").sandbox
    allergy = next(
        iter(
            source.system_session().search(
                "AllergyIntolerance", patient=f"Patient/{p.records['hospital']}"
            )
        )
    )
    if level != "N":
        source.login("po.wilson").relabel(
            f"AllergyIntolerance/{allergy['id']}", level, reason="disclosed in confidence"
        )
    for kind in ("fhir-document", "referral-letter", "visit-summary"):
        doc = net.send(
            kind,
            net.login("hospital", "dr.okafor"),
            "hospital",
            p.records["hospital"],
            "clinic",
            created="2025-12-18",
        )
        stated = [i.confidentiality for i in doc.items]
        assert "Penicillin" in doc.text
        want = max(stated, key=CONFIDENTIALITY_RANK.__getitem__)
        assert want == level and doc.confidentiality == want
        if doc.bundle is not None:
            held = [e["resource"] for e in doc.bundle["entry"]]
            top = max(
                (confidentiality_of(r) or "N" for r in held), key=CONFIDENTIALITY_RANK.__getitem__
            )
            assert confidentiality_of(doc.bundle) == top == level
