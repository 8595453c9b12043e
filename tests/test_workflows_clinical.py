"""Clinical MA workflows (issue 16): every rule refuses with its typed error, nothing partial.

Each test builds what it needs in one shared generated clinic (patients created with a known
age, booked today so the MA has a care relationship), acts through the MA's Session and checks
both the refusal (``RuleRefused`` naming the rule) and the happy path's FHIR.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest

from ehr_sandbox.clock import instant
from ehr_sandbox.errors import AccessDenied, SandboxError
from ehr_sandbox.exercises.builtin.clinical.common import (
    MA,
    add_patient,
    order_drug,
    order_lab,
    record_weight,
)
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import (
    admission,
    diagnostics,
    history,
    immunizations,
    intake,
    poc_testing,
    refills,
    rooms,
    specimens,
    sterilization,
    vitals,
)
from ehr_sandbox.workflows import (
    medication_administration as medadmin,
)
from ehr_sandbox.workflows.base import RuleRefused
from ehr_sandbox.workflows.care import identify
from ehr_sandbox.workflows.specialties import chiropractic, obgyn, ophthalmic, podiatric


@pytest.fixture(scope="module")
def clinic():
    return Sandbox.generate(patients=3, seed=16, years=1)


_RNG = random.Random(16)


def _patient(clinic, age_days, gender="female"):
    p = add_patient(clinic, _RNG, age_days=age_days, gender=gender)
    s = clinic.login(MA)
    identify(s, p["ref"], name=p["name"], birth_date=p["dob"])
    return s, p


def _count(clinic, rtype):
    return clinic.system_session().search(rtype).count()


def _refused(rule_id, fn, *args, **kwargs):
    with pytest.raises(RuleRefused) as exc:
        fn(*args, **kwargs)
    assert exc.value.rule_id == rule_id, str(exc.value)
    assert rule_id in str(exc.value)
    return exc.value


# ----------------------------------------------------------------------------- identification
def test_two_identifiers_required_and_mismatch_refused(clinic):
    p = add_patient(clinic, _RNG, age_days=40 * 365, gender="male")
    s = clinic.login(MA)
    _refused("care.two-identifiers", identify, s, p["ref"], name=p["name"])
    _refused("care.two-identifiers", identify, s, p["ref"], name=p["name"], birth_date="1900-01-01")
    _refused("care.two-identifiers", identify, s, p["ref"], mrn="MRN0", birth_date=p["dob"])
    _refused("care.two-identifiers", vitals.record_vitals, s, p["ref"], heart_rate=70)
    # name order and case do not matter; MRN + DOB works too
    assert identify(s, p["ref"], name=p["name"].upper(), birth_date=p["dob"]) == p["ref"]
    other = clinic.login(MA)
    assert identify(other, p["ref"], mrn=p["mrn"], birth_date=p["dob"]) == p["ref"]


# ----------------------------------------------------------------------------- vitals
def test_vitals_refuse_unit_mixups_and_write_nothing(clinic):
    s, p = _patient(clinic, 50 * 365)
    before = _count(clinic, "Observation")
    e = _refused(
        "vitals.plausible",
        vitals.record_vitals,
        s,
        p["ref"],
        systolic=128,
        diastolic=82,
        temperature=98.6,
        temperature_unit="Cel",
    )
    assert "[degF]" in str(e)
    _refused("vitals.bp-pair", vitals.record_vitals, s, p["ref"], systolic=128)
    _refused("vitals.plausible", vitals.record_vitals, s, p["ref"], systolic=80, diastolic=120)
    _refused("vitals.plausible", vitals.record_vitals, s, p["ref"], systolic=128.5, diastolic=80)
    _refused("vitals.nothing", vitals.record_vitals, s, p["ref"])
    assert _count(clinic, "Observation") == before


def test_abnormal_vitals_flagged_and_routed_to_the_provider(clinic):
    s, p = _patient(clinic, 60 * 365, "male")
    out = vitals.record_vitals(
        s,
        p["ref"],
        systolic=162,
        diastolic=94,
        heart_rate=76,
        temperature=98.4,
        weight=90,
        height=180,
    )
    assert out.flags == {"8480-6": "H", "8462-4": "H"}
    assert out.message["recipient"][0]["reference"].startswith("Practitioner/")
    assert out.message["priority"] == "routine"
    bp = next(o for o in out.observations if o["code"]["coding"][0]["code"] == "85354-9")
    assert {"reference": f"Observation/{bp['id']}"} in out.message["about"]
    bmi = next(o for o in out.observations if o["code"]["coding"][0]["code"] == "39156-5")
    assert bmi["valueQuantity"]["value"] == round(90 / 1.8**2, 1)
    normal = vitals.record_vitals(s, p["ref"], systolic=118, diastolic=76)
    assert normal.message is None and normal.flags == {}


def test_child_gets_a_bmi_percentile_and_no_adult_flags(clinic):
    s, p = _patient(clinic, 6 * 365 + 100, "male")
    out = vitals.record_vitals(s, p["ref"], heart_rate=110, weight=22.0, height=118.0)
    codes = {o["code"]["coding"][0]["code"]: o for o in out.observations}
    assert "59576-9" in codes, (list(codes), p)
    pct = codes["59576-9"]["valueQuantity"]["value"]
    bmi = codes["39156-5"]["valueQuantity"]["value"]
    assert pct == vitals.bmi_percentile(bmi, "male", vitals.age_months_for(p["dob"], clinic) + 0.5)
    assert 0 < pct < 100 and out.message is None


def test_bmi_percentile_monotone_and_median():
    assert round(vitals.bmi_percentile(15.419, "male", 60.5)) == 50
    values = [vitals.bmi_percentile(b, "female", 120) for b in (14, 16, 18, 22, 28)]
    assert values == sorted(values) and values[0] < 25 < 90 < values[-1]


# ----------------------------------------------------------------------------- intake / history
def test_intake_rules(clinic):
    s, p = _patient(clinic, 35 * 365)
    _refused("intake.chief-complaint", intake.record_chief_complaint, s, p["ref"], "cough")
    cc = intake.record_chief_complaint(s, p["ref"], "cough for two weeks")
    assert cc["code"]["coding"][0]["code"] == "8661-1"
    _refused(
        "intake.allergy-reaction",
        intake.record_allergy,
        s,
        p["ref"],
        substance="764146007",
        substance_display="Penicillin",
        reaction="",
        reaction_display="",
        severity="mild",
    )
    _refused(
        "intake.allergy-reaction",
        intake.record_allergy,
        s,
        p["ref"],
        substance="764146007",
        substance_display="Penicillin",
        reaction="126485001",
        reaction_display="Urticaria",
        severity="bad",
    )
    _refused(
        "intake.med-source",
        intake.reconcile_medications,
        s,
        p["ref"],
        [{"rxnorm": "314076", "display": "lisinopril 10 MG Oral Tablet", "status": "active"}],
    )
    out = intake.reconcile_medications(
        s,
        p["ref"],
        [
            {
                "rxnorm": "314076",
                "display": "lisinopril 10 MG Oral Tablet",
                "status": "active",
                "source": "patient",
            },
            {
                "rxnorm": "979492",
                "display": "losartan potassium 50 MG Oral Tablet",
                "status": "active",
                "source": "pharmacy",
            },
            {
                "rxnorm": "312961",
                "display": "simvastatin 20 MG Oral Tablet",
                "status": "stopped",
                "source": "patient",
            },
        ],
    )
    assert list(out.duplicates) == ["ras-blocker"]
    assert "renin-angiotensin" in out.task["description"]
    assert [st["status"] for st in out.statements] == ["active", "active", "stopped"]


def test_history_rules(clinic):
    s, p = _patient(clinic, 45 * 365, "male")
    _refused("history.family", history.record_family_history, s, p["ref"], "uncle", "I10", "x")
    f = history.record_family_history(s, p["ref"], "MTH", "C50.919", "Breast cancer", onset_age=48)
    assert (
        f["resourceType"] == "FamilyMemberHistory"
        and f["relationship"]["coding"][0]["code"] == "MTH"
    )
    _refused("history.social", history.record_tobacco_use, s, p["ref"], "heavy")
    _refused("history.screen-answers", history.screen, s, p["ref"], "audit-c", [1, 2, 5])
    _refused("history.screen-answers", history.screen, s, p["ref"], "phq-9", [0] * 8)
    r = history.screen(s, p["ref"], "audit-c", [2, 1, 1])
    assert r.total == 4 and r.positive and r.task is not None
    assert r.score["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{r.response['id']}"
    neg = history.screen(s, p["ref"], "phq-2", [0, 1])
    assert not neg.positive and neg.task is None
    with pytest.raises(AccessDenied):
        history.record_sexual_history(s, p["ref"], "two partners this year")


# ----------------------------------------------------------------------------- medication administration
def _child_with_order(clinic, kg, dose, drug="ceftriaxone"):
    s, p = _patient(clinic, 3 * 365)
    record_weight(clinic, p["ref"], kg)
    mr = order_drug(clinic, p["ref"], drug_key=drug, dose_mg=dose, reason="acute otitis media")
    return s, p, f"MedicationRequest/{mr['id']}"


def test_medication_rights_each_refused(clinic):
    s, p, order = _child_with_order(clinic, 14.0, 700)
    ok = dict(
        drug_key="ceftriaxone", dose_mg=700, route="IM", site="LT", lot="C1", expiry="2030-01-01"
    )
    before = _count(clinic, "MedicationAdministration")
    _refused("medadmin.order", medadmin.administer, s, p["ref"], "MedicationRequest/none", **ok)
    s2, other = _patient(clinic, 3 * 365)
    _refused("medadmin.right-patient", medadmin.administer, s2, other["ref"], order, **ok)
    _refused(
        "medadmin.right-drug",
        medadmin.administer,
        s,
        p["ref"],
        order,
        **{**ok, "drug_key": "dexamethasone"},
    )
    _refused(
        "medadmin.right-dose", medadmin.administer, s, p["ref"], order, **{**ok, "dose_mg": 600}
    )
    _refused(
        "medadmin.right-route", medadmin.administer, s, p["ref"], order, **{**ok, "route": "SC"}
    )
    _refused("medadmin.site", medadmin.administer, s, p["ref"], order, **{**ok, "site": "LG"})
    _refused("medadmin.lot-expiry", medadmin.administer, s, p["ref"], order, **{**ok, "lot": ""})
    _refused(
        "medadmin.lot-expiry",
        medadmin.administer,
        s,
        p["ref"],
        order,
        **{**ok, "expiry": "2020-01-01"},
    )
    assert _count(clinic, "MedicationAdministration") == before
    given = medadmin.administer(s, p["ref"], order, **ok)
    assert given["request"]["reference"] == order and given["status"] == "completed"
    assert given["contained"][0]["batch"] == {"lotNumber": "C1", "expirationDate": "2030-01-01"}
    assert given["dosage"]["site"]["coding"][0]["code"] == "LT"
    assert given["reasonCode"][0]["text"] == "acute otitis media"
    # same class again today: duplicate
    again = order_drug(clinic, p["ref"], drug_key="ceftriaxone", dose_mg=700)
    _refused(
        "medadmin.duplicate",
        medadmin.administer,
        s,
        p["ref"],
        f"MedicationRequest/{again['id']}",
        **ok,
    )


def test_weight_based_dose_and_time_window(clinic):
    s, p, order = _child_with_order(clinic, 12.0, 1000)
    e = _refused(
        "medadmin.weight-dose",
        medadmin.administer,
        s,
        p["ref"],
        order,
        drug_key="ceftriaxone",
        dose_mg=1000,
        route="IM",
        site="RT",
        lot="C2",
        expiry="2030-01-01",
    )
    assert "12.0 kg" in str(e)
    s2, p2 = _patient(clinic, 4 * 365)
    mr = order_drug(clinic, p2["ref"], drug_key="dexamethasone", dose_mg=9.6)
    _refused(  # no weight today
        "medadmin.weight-dose",
        medadmin.administer,
        s2,
        p2["ref"],
        f"MedicationRequest/{mr['id']}",
        drug_key="dexamethasone",
        dose_mg=9.6,
        route="IM",
        site="LD",
        lot="D",
        expiry="2030-01-01",
    )
    old = order_drug(
        clinic, p2["ref"], drug_key="dexamethasone", dose_mg=9.6, minutes_ago=3 * 24 * 60
    )
    record_weight(clinic, p2["ref"], 16.0)
    _refused(
        "medadmin.right-time",
        medadmin.administer,
        s2,
        p2["ref"],
        f"MedicationRequest/{old['id']}",
        drug_key="dexamethasone",
        dose_mg=9.6,
        route="IM",
        site="LD",
        lot="D",
        expiry="2030-01-01",
    )
    ok = medadmin.administer(
        s2,
        p2["ref"],
        f"MedicationRequest/{mr['id']}",
        drug_key="dexamethasone",
        dose_mg=9.6,
        route="IM",
        site="LD",
        lot="D",
        expiry="2030-01-01",
    )
    assert ok["dosage"]["dose"]["value"] == 9.6


def test_allergy_refusal_precaution_and_refusal_record(clinic):
    s, p = _patient(clinic, 30 * 365)
    intake.record_allergy(
        s,
        p["ref"],
        substance="764146007",
        substance_display="Penicillin",
        reaction="39579001",
        reaction_display="Anaphylaxis",
        severity="severe",
    )
    pen = order_drug(clinic, p["ref"], drug_key="penicillin-g-benzathine", dose_mg=0)
    args = dict(route="IM", site="LD", lot="P1", expiry="2030-01-01")
    _refused(
        "medadmin.allergy",
        medadmin.administer,
        s,
        p["ref"],
        f"MedicationRequest/{pen['id']}",
        drug_key="penicillin-g-benzathine",
        dose_mg=0,
        **args,
    )
    cef = order_drug(clinic, p["ref"], drug_key="ceftriaxone", dose_mg=250)
    _refused(
        "medadmin.allergy",
        medadmin.administer,
        s,
        p["ref"],
        f"MedicationRequest/{cef['id']}",
        drug_key="ceftriaxone",
        dose_mg=250,
        **args,
    )
    given = medadmin.administer(
        s,
        p["ref"],
        f"MedicationRequest/{cef['id']}",
        drug_key="ceftriaxone",
        dose_mg=250,
        allergy_override="Dr. Patel: urticaria only decades ago, benefits outweigh risk",
        **args,
    )
    assert "Cross-reactive" in given["note"][-1]["text"]
    _refused(
        "medadmin.refusal-reason",
        medadmin.record_refusal,
        s,
        p["ref"],
        f"MedicationRequest/{pen['id']}",
        "no",
    )
    r = medadmin.record_refusal(
        s,
        p["ref"],
        f"MedicationRequest/{pen['id']}",
        "patient declined the injection; provider informed",
    )
    assert r["status"] == "not-done" and r["statusReason"][0]["coding"][0]["code"] == "PATOBJ"
    resp = medadmin.record_response(
        s, f"MedicationAdministration/{given['id']}", "observed 20 minutes, no reaction"
    )
    assert resp["note"][-1]["text"].startswith("Response:")


def test_controlled_substance_needs_a_witness(clinic, monkeypatch):
    s, p = _patient(clinic, 40 * 365, "male")
    table = medadmin.table("medications")
    ketorolac = next(d for d in table["drug"] if d["id"] == "ketorolac")
    monkeypatch.setitem(ketorolac, "schedule", "IV")  # stand-in controlled office drug
    mr = order_drug(clinic, p["ref"], drug_key="ketorolac", dose_mg=30)
    args = dict(
        drug_key="ketorolac", dose_mg=30, route="IM", site="RD", lot="K", expiry="2030-01-01"
    )
    _refused(
        "medadmin.witness",
        medadmin.administer,
        s,
        p["ref"],
        f"MedicationRequest/{mr['id']}",
        **args,
    )
    _refused(
        "medadmin.witness",
        medadmin.administer,
        s,
        p["ref"],
        f"MedicationRequest/{mr['id']}",
        witness=s,
        **args,
    )
    nurse = clinic.login("rn.kim")
    given = medadmin.administer(s, p["ref"], f"MedicationRequest/{mr['id']}", witness=nurse, **args)
    assert [pf["function"]["coding"][0]["code"] for pf in given["performer"]] == [
        "performer",
        "witness",
    ]


# ----------------------------------------------------------------------------- immunizations
SCREEN_NO = {k: False for k in immunizations.table("vaccines")["screening"]}


def test_immunization_rules(clinic):
    s, p = _patient(clinic, 14 * 30)  # 14 months
    ok = dict(
        cvx="03",
        lot="M1",
        expiry="2030-01-01",
        route="SC",
        site="LA",
        vis_edition="2021-08-06",
        screening=SCREEN_NO,
    )
    _refused("immunizations.product", immunizations.give, s, p["ref"], **{**ok, "cvx": "999"})
    _refused(
        "immunizations.vis", immunizations.give, s, p["ref"], **{**ok, "vis_edition": "2019-08-15"}
    )
    _refused("immunizations.screening", immunizations.give, s, p["ref"], **{**ok, "screening": {}})
    _refused(
        "immunizations.contraindication",
        immunizations.give,
        s,
        p["ref"],
        **{**ok, "screening": {**SCREEN_NO, "immunodeficiency": True}},
    )
    _refused(
        "immunizations.precaution",
        immunizations.give,
        s,
        p["ref"],
        **{**ok, "screening": {**SCREEN_NO, "acute_illness": True}},
    )
    _refused("immunizations.route-site", immunizations.give, s, p["ref"], **{**ok, "route": "PO"})
    _refused("immunizations.route-site", immunizations.give, s, p["ref"], **{**ok, "site": "LG"})
    _refused("immunizations.lot", immunizations.give, s, p["ref"], **{**ok, "expiry": "2025-12-01"})
    _refused(
        "immunizations.licensure",
        immunizations.give,
        s,
        p["ref"],
        **{**ok, "cvx": "115", "route": "IM", "site": "LT"},
    )
    imm = immunizations.give(s, p["ref"], **ok)
    assert imm["manufacturer"]["identifier"]["value"] == "MSD"
    assert imm["education"][0]["publicationDate"] == "2021-08-06"
    assert imm["protocolApplied"][0]["doseNumberPositiveInt"] == 1
    _refused("immunizations.minimum-interval", immunizations.give, s, p["ref"], **ok)
    text, comm = immunizations.registry_message(s, f"Immunization/{imm['id']}")
    assert "RXA|0|1|" in text and "|03^" in text and "MSD^" in text and "29768-9" in text
    assert comm["about"][0]["reference"] == f"Immunization/{imm['id']}"
    _refused("immunizations.deferral", immunizations.defer, s, p["ref"], "21", "LATER", "x y z")
    d = immunizations.defer(
        s, p["ref"], "21", "MEDPREC", "febrile illness today; return in two weeks"
    )
    assert d["status"] == "not-done"


def _vxu(text: str, segment: str) -> list[str]:
    """The one ``segment`` of a VXU message, split into its fields by number (field n at [n])."""
    found = [line.split("|") for line in text.splitlines() if line.startswith(segment + "|")]
    assert len(found) == 1, f"one {segment} segment expected in {text!r}"
    return found[0]


@pytest.mark.parametrize(
    ("cvx", "route", "site", "lot", "expiry"),
    [("03", "SC", "LA", "M1", "2030-01-01"), ("03", "IM", "RT", "X7Q-22", "2029-11-30")],
)
def test_registry_message_puts_each_field_where_the_hl7_guide_says(
    clinic, cvx, route, site, lot, expiry
):
    """CDC HL7 v2.5.1 IG for Immunization Messaging, release 1.5: RXA-5 the CVX (HL70292),
    RXA-9 the record source (NIP001), RXA-10 the administering provider, RXA-15 the lot, RXA-16
    its expiry (a date), RXA-17 the MVX manufacturer (HL70227), RXA-20 the completion status,
    RXA-21 the action code; RXR-1 the route (HL70162), RXR-2 the site (HL70163)."""
    s, p = _patient(clinic, 14 * 30)
    imm = immunizations.give(
        s,
        p["ref"],
        cvx=cvx,
        lot=lot,
        expiry=expiry,
        route=route,
        site=site,
        vis_edition="2021-08-06",
        screening=SCREEN_NO,
    )
    text, _ = immunizations.registry_message(s, f"Immunization/{imm['id']}")
    rxa = _vxu(text, "RXA")
    assert rxa[5].split("^")[0] == cvx and rxa[5].split("^")[2] == "CVX"
    assert rxa[9].split("^")[0] == "00" and rxa[9].split("^")[2] == "NIP001"
    assert rxa[10] and rxa[10] in imm["performer"][0]["actor"]["reference"]
    assert rxa[15] == lot
    assert re.fullmatch(r"\d{8}", rxa[16]) and rxa[16] == expiry.replace("-", "")
    mvx = rxa[17].split("^")
    assert mvx[0] == imm["manufacturer"]["identifier"]["value"] and mvx[2] in ("MVX", "HL70227")
    assert rxa[20] == "CP" and rxa[21] == "A"
    assert lot not in rxa[:15] + rxa[16:]  # the lot nowhere else in the RXA
    rxr = _vxu(text, "RXR")
    assert rxr[1].split("^")[0] == route and rxr[1].split("^")[2] == "HL70162"
    assert rxr[2].split("^")[0] == site and rxr[2].split("^")[2] == "HL70163"


def test_registry_message_of_a_dose_not_given_says_so_in_the_completion_status(clinic):
    s, p = _patient(clinic, 14 * 30)
    refused = immunizations.defer(s, p["ref"], "03", "PATOBJ", "parent declined the vaccine today")
    later = immunizations.defer(s, p["ref"], "21", "MEDPREC", "febrile illness; return in 2 weeks")
    for imm, status in ((refused, "RE"), (later, "NA")):
        rxa = _vxu(immunizations.registry_message(s, f"Immunization/{imm['id']}")[0], "RXA")
        assert rxa[6] == "999" and rxa[15] == "" and rxa[20] == status and rxa[21] == "A"
        # RXA-18 is the guide's NIP002 refusal reason (a child's: the parent's decision)
        assert (rxa[18] == "00^Parental decision^NIP002") == (status == "RE")


def test_minimum_age_and_series_complete(clinic):
    s, p = _patient(clinic, 30)  # one month
    base = dict(
        lot="H",
        expiry="2030-01-01",
        route="IM",
        site="LT",
        vis_edition="2021-08-06",
        screening=SCREEN_NO,
    )
    _refused("immunizations.licensure", immunizations.give, s, p["ref"], cvx="20", **base)
    s2, p2 = _patient(clinic, 13 * 365)
    sys = clinic.system_session()
    sys.create(
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": "115"}]},
            "patient": {"reference": p2["ref"]},
            "occurrenceDateTime": "2025-06-01",
            "primarySource": True,
        }
    )
    _refused(
        "immunizations.series-complete",
        immunizations.give,
        s2,
        p2["ref"],
        cvx="115",
        **{**base, "site": "LD"},
    )
    rows = immunizations.next_doses(s, p["ref"])
    hepb = next(r for r in rows if r["cvx"] == "08")
    assert hepb["dose"] == 1 and hepb["due"]


# ----------------------------------------------------------------------------- specimens
def test_specimen_rules_and_rejection(clinic):
    s, p = _patient(clinic, 55 * 365, "male")
    lipid = f"ServiceRequest/{order_lab(clinic, p['ref'], '57698-3')['id']}"
    cbc = f"ServiceRequest/{order_lab(clinic, p['ref'], '58410-2')['id']}"
    pt = f"ServiceRequest/{order_lab(clinic, p['ref'], '6301-6')['id']}"
    label = dict(label_name=p["name"], label_birth_date=p["dob"])
    before = _count(clinic, "Specimen")
    _refused(
        "specimens.order",
        specimens.collect_blood,
        s,
        p["ref"],
        [],
        tubes=["gold"],
        fasting="F",
        **label,
    )
    _refused(
        "specimens.tube",
        specimens.collect_blood,
        s,
        p["ref"],
        [lipid, cbc],
        tubes=["gold"],
        fasting="F",
        **label,
    )
    _refused(
        "specimens.order-of-draw",
        specimens.collect_blood,
        s,
        p["ref"],
        [lipid, cbc, pt],
        tubes=["lavender", "gold", "light-blue"],
        fasting="F",
        **label,
    )
    _refused(
        "specimens.fasting",
        specimens.collect_blood,
        s,
        p["ref"],
        [lipid],
        tubes=["gold"],
        fasting=None,
        **label,
    )
    _refused(
        "specimens.label",
        specimens.collect_blood,
        s,
        p["ref"],
        [lipid],
        tubes=["gold"],
        fasting="F",
        label_name=p["name"],
        label_birth_date="1999-01-01",
    )
    assert _count(clinic, "Specimen") == before
    out = specimens.collect_blood(
        s,
        p["ref"],
        [lipid, cbc, pt],
        tubes=["light-blue", "gold", "lavender"],
        fasting="NF",
        **label,
    )
    assert [sp["type"]["coding"][0]["code"] for sp in out] == ["PLAS", "SER", "BLD"]
    assert out[1]["collection"]["fastingStatusCodeableConcept"]["coding"][0]["code"] == "NF"
    assert out[1]["request"] == [{"reference": lipid}]
    refs = [f"Specimen/{sp['id']}" for sp in out]
    _refused("specimens.custody", specimens.send_to_lab, s, refs, lab="Quest", courier="")
    req = specimens.send_to_lab(s, refs, lab="Regional Reference Lab", courier="T. Okafor")
    assert {i["valueReference"]["reference"] for i in req["input"]} >= set(refs)
    assert "courier T. Okafor" in s.read(refs[0])["processing"][0]["description"]
    rej = specimens.check_label(s, refs[2], label_name="Someone Else", label_birth_date=p["dob"])
    assert rej["status"] == "unsatisfactory"
    _refused("specimens.custody", specimens.send_to_lab, s, [refs[2]], lab="Lab", courier="X")
    fine = specimens.check_label(s, refs[0], **label)
    assert fine["status"] == "available"


# ----------------------------------------------------------------------------- POC testing
def test_poc_qc_gate_critical_and_positive(clinic):
    s, p = _patient(clinic, 62 * 365, "male")
    kit = poc_testing.register_kit(s, "glucose", lot="G9", expiry="2027-06-30", name="strips")
    kref = f"Device/{kit['id']}"
    e = _refused("poc.qc-required", poc_testing.run_test, s, p["ref"], kref, 110)
    assert "missing" in str(e)
    _refused(
        "poc.qc-result",
        poc_testing.run_qc,
        s,
        kref,
        {"level 1": 50},
    )
    poc_testing.run_qc(s, kref, {"level 1": 50, "level 2": 400})
    assert poc_testing.qc_status(s, kref) == "fail"
    _refused("poc.qc-required", poc_testing.run_test, s, p["ref"], kref, 110)
    clinic.clock.advance(minutes=5)
    poc_testing.run_qc(s, kref, {"level 1": 50, "level 2": 300})
    assert poc_testing.qc_status(s, kref) == "pass"
    _refused("poc.plausible", poc_testing.run_test, s, p["ref"], kref, 900)
    normal = poc_testing.run_test(s, p["ref"], kref, 110)
    assert normal.escalation is None and normal.observation["device"]["reference"] == kref
    crit = poc_testing.run_test(s, p["ref"], kref, 452)
    assert crit.critical and crit.escalation["priority"] == "stat"
    assert crit.observation["interpretation"][0]["coding"][0]["code"] == "HH"
    old = poc_testing.register_kit(s, "rapid-strep", lot="S0", expiry="2025-01-31", name="old")
    _refused(
        "poc.kit",
        poc_testing.run_qc,
        s,
        f"Device/{old['id']}",
        {"positive": "positive", "negative": "negative"},
    )
    strep = poc_testing.register_kit(s, "rapid-strep", lot="S1", expiry="2027-01-31", name="strep")
    sref = f"Device/{strep['id']}"
    poc_testing.run_qc(s, sref, {"positive": "positive", "negative": "negative"})
    _refused("poc.plausible", poc_testing.run_test, s, p["ref"], sref, "maybe")
    pos = poc_testing.run_test(s, p["ref"], sref, "positive")
    assert (
        pos.escalation["resourceType"] == "Task"
        and pos.observation["valueCodeableConcept"]["coding"][0]["code"] == "10828004"
    )
    _refused("poc.test", poc_testing.poc_test, "strep-culture")


def _typed_qc(s, kref, outputs, status="pass"):
    """A QC log entry written by hand (a plain create), claiming ``status``."""
    from ehr_sandbox.workflows.care import SANDBOX_OBS

    return s.create(
        {
            "resourceType": "Task",
            "status": "completed",
            "intent": "order",
            "businessStatus": {"text": status},
            "code": {"coding": [{"system": SANDBOX_OBS, "code": "poc-qc"}]},
            "focus": {"reference": kref},
            "authoredOn": instant(s.sandbox.clock.peek()),
            **({"output": outputs} if outputs else {}),
        }
    )


def _control(level, want, value, verdict="in range"):
    return {
        "type": {"text": f"control {level} (expected {want}): {verdict}"},
        "valueQuantity": {"value": value},
    }


@pytest.mark.parametrize(
    "outputs",
    [
        [],  # a bare "pass": no control run
        [{"type": {"text": "QC passed"}, "valueBoolean": True}],
        # the insert's range widened by hand so that an out-of-range control "passes"
        [_control("level 1", "38-62", 50), _control("level 2", "260-999", 400),
         {"type": {"text": "QC passed"}, "valueBoolean": True}],
        # the right ranges, a control out of range, marked "in range" anyway
        [_control("level 1", "38-62", 50), _control("level 2", "260-350", 400),
         {"type": {"text": "QC passed"}, "valueBoolean": True}],
        # one level missing
        [_control("level 1", "38-62", 50), {"type": {"text": "QC passed"}, "valueBoolean": True}],
    ],
)  # fmt: skip
def test_a_typed_qc_pass_does_not_unlock_testing(clinic, outputs):
    s, p = _patient(clinic, 55 * 365, "male")
    kit = poc_testing.register_kit(s, "glucose", lot="GT", expiry="2027-06-30", name="strips")
    kref = f"Device/{kit['id']}"
    poc_testing.run_qc(s, kref, {"level 1": 50, "level 2": 400})  # a real, failed QC
    clinic.clock.advance(minutes=2)
    typed = _typed_qc(s, kref, outputs)
    assert poc_testing.qc_problem(kit, typed) is not None
    assert poc_testing.qc_status(s, kref) == "fail"
    _refused("poc.qc-required", poc_testing.run_test, s, p["ref"], kref, 110)


def test_qc_ranges_come_from_content_and_a_faithful_hand_copy_counts(clinic):
    s, p = _patient(clinic, 45 * 365)
    kit = poc_testing.register_kit(s, "inr", lot="IT", expiry="2027-06-30", name="INR")
    kref = f"Device/{kit['id']}"
    ranges = poc_testing.controls("inr")
    lo, hi = ranges["level 2"]
    # a level-2 result just outside the insert's range fails, whatever the caller believes
    entry = poc_testing.run_qc(
        s, kref, {"level 1": sum(ranges["level 1"]) / 2, "level 2": hi + 0.1}
    )
    assert entry["businessStatus"]["text"] == "fail" and poc_testing.qc_problem(kit, entry) is None
    clinic.clock.advance(minutes=1)
    # the same shape typed by hand, with results inside the ranges, is QC like any other
    outputs = [
        _control(level, f"{a}-{b}", (a + b) / 2) for level, (a, b) in sorted(ranges.items())
    ] + [{"type": {"text": "QC passed"}, "valueBoolean": True}]
    typed = _typed_qc(s, kref, outputs)
    assert poc_testing.qc_problem(kit, typed) is None
    assert poc_testing.qc_status(s, kref) == "pass"
    assert (
        poc_testing.run_test(s, p["ref"], kref, (lo + hi) / 2).observation["device"]["reference"]
        == kref
    )


# ----------------------------------------------------------------------------- diagnostics
def test_diagnostics_rules(clinic):
    s, p = _patient(clinic, 50 * 365, "male")
    _refused(
        "diagnostics.ecg-range",
        diagnostics.record_ecg,
        s,
        p["ref"],
        heart_rate=70,
        pr_ms=160,
        qrs_ms=900,
        qt_ms=400,
    )
    dr = diagnostics.record_ecg(s, p["ref"], heart_rate=60, pr_ms=160, qrs_ms=90, qt_ms=400)
    ecg = s.read(dr["result"][0]["reference"])
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in ecg["component"]}[
        "8636-3"
    ] == 400
    _refused(
        "diagnostics.interpretation-by-provider",
        diagnostics.interpret_ecg,
        s,
        f"DiagnosticReport/{dr['id']}",
        rhythm="NSR",
        interpretation="normal",
    )
    doc = clinic.login("dr.patel")
    final = diagnostics.interpret_ecg(
        doc,
        f"DiagnosticReport/{dr['id']}",
        rhythm="normal sinus rhythm",
        interpretation="normal ECG",
    )
    assert final["status"] == "final" and len(final["result"]) == 2
    _refused(
        "diagnostics.spirometry",
        diagnostics.record_spirometry,
        s,
        p["ref"],
        fev1_l=3.0,
        fvc_l=4.0,
        height_cm=178,
        maneuvers=2,
    )
    _refused(
        "diagnostics.spirometry",
        diagnostics.record_spirometry,
        s,
        p["ref"],
        fev1_l=4.1,
        fvc_l=4.0,
        height_cm=178,
        maneuvers=3,
    )
    sp = diagnostics.record_spirometry(
        s, p["ref"], fev1_l=2.4, fvc_l=4.0, height_cm=178, maneuvers=3
    )
    vals = {
        s.read(r["reference"])["code"]["coding"][0]["code"]: s.read(r["reference"])
        for r in sp["result"]
    }
    assert vals["19926-5"]["valueQuantity"]["value"] == 60 and vals["19926-5"]["interpretation"]
    from ehr_sandbox.workflows.care import age_years

    pred = diagnostics.predicted_fev1(
        "male", age_years({"birthDate": p["dob"]}, clinic.clock.peek().date()), 178
    )
    assert vals["20152-5"]["valueQuantity"]["value"] == round(100 * 2.4 / pred)
    _refused(
        "diagnostics.vision", diagnostics.record_vision, s, p["ref"], right="20/45", left="20/20"
    )
    _refused(
        "diagnostics.audiometry",
        diagnostics.record_audiometry,
        s,
        p["ref"],
        right={500: 20},
        left={500: 20},
    )


# ----------------------------------------------------------------------------- refills
def _rx(clinic, patient, rxnorm, display, repeats=0, days_ago=80):
    return clinic.system_session().create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": refills.RXNORM, "code": rxnorm, "display": display}],
                "text": display,
            },
            "subject": {"reference": patient},
            "requester": {"reference": "Practitioner/prac-dr.patel"},
            "authoredOn": instant(clinic.clock.peek() - timedelta(days=days_ago)),
            "dispenseRequest": {"numberOfRepeatsAllowed": repeats},
        }
    )


def _visit(clinic, patient, days_ago):
    when = clinic.clock.peek() - timedelta(days=days_ago)
    clinic.system_session().create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": patient},
            "period": {"start": instant(when), "end": instant(when + timedelta(minutes=20))},
        }
    )


def _lab(clinic, patient, loinc, value, unit, days_ago):
    from ehr_sandbox.workflows.care import loinc_concept

    clinic.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": loinc_concept(loinc),
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "subject": {"reference": patient},
            "effectiveDateTime": instant(clinic.clock.peek() - timedelta(days=days_ago)),
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }
    )


def test_refill_protocol(clinic):
    s, p = _patient(clinic, 58 * 365, "male")
    _visit(clinic, p["ref"], 100)
    met = _rx(clinic, p["ref"], "312961", "simvastatin 20 MG Oral Tablet")
    _lab(clinic, p["ref"], "2093-3", 180, "mg/dL", 120)
    r = refills.review_request(
        s, p["ref"], f"MedicationRequest/{met['id']}", pharmacy="Main St Pharmacy"
    )
    assert r.outcome == refills.MET and r.task["businessStatus"]["text"] == refills.MET
    assert r.request["sender"]["display"] == "Main St Pharmacy"
    metformin = _rx(
        clinic,
        p["ref"],
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    )
    r2 = refills.review_request(
        s, p["ref"], f"MedicationRequest/{metformin['id']}", pharmacy="Main St Pharmacy"
    )
    assert r2.outcome == refills.NOT_MET and any("A1c" in x for x in r2.reasons)
    oxy = _rx(clinic, p["ref"], "1049683", "oxycodone hydrochloride 10 MG Oral Tablet")
    r3 = refills.review_request(
        s, p["ref"], f"MedicationRequest/{oxy['id']}", pharmacy="Main St Pharmacy"
    )
    assert r3.outcome == refills.CONTROLLED and "1306.12" in r3.reasons[0]
    _refused("refills.provider-only", refills.authorize, s, f"Task/{r.task['id']}")
    doc = clinic.login("dr.patel")
    _refused("refills.schedule-ii", refills.authorize, doc, f"Task/{r3.task['id']}")
    _refused("refills.protocol", refills.authorize, doc, f"Task/{r2.task['id']}")
    new = refills.authorize(doc, f"Task/{r.task['id']}")
    assert new["priorPrescription"]["reference"] == f"MedicationRequest/{met['id']}"
    assert doc.read(f"Task/{r.task['id']}")["status"] == "completed"
    _refused(
        "refills.request",
        refills.review_request,
        s,
        p["ref"],
        f"MedicationRequest/{met['id']}",
        pharmacy="",
    )


# ----------------------------------------------------------------------------- admission
def test_admission_rules_and_fax(clinic):
    s, p = _patient(clinic, 70 * 365, "male")
    order = clinic.system_session().create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "admit to inpatient"},
            "subject": {"reference": p["ref"]},
            "requester": {"reference": "Practitioner/prac-dr.patel"},
        }
    )
    oref = f"ServiceRequest/{order['id']}"
    args = dict(
        kind="direct",
        hospital="Riverton General Hospital",
        unit="4 West",
        reason="community-acquired pneumonia with hypoxia",
    )
    _refused("admission.kind", admission.arrange, s, p["ref"], oref, **{**args, "kind": "walk-in"})
    _refused("admission.order", admission.arrange, s, p["ref"], "ServiceRequest/none", **args)
    _refused("admission.receiving", admission.arrange, s, p["ref"], oref, **{**args, "unit": ""})
    _refused("admission.reason", admission.arrange, s, p["ref"], oref, **{**args, "reason": "sick"})
    out = admission.arrange(s, p["ref"], oref, **args)
    assert (
        out.encounter["class"]["code"] == "IMP" and out.encounter["basedOn"][0]["reference"] == oref
    )
    assert out.channel == "fax" and out.notification["medium"][0]["coding"][0]["code"] == "FAXWRIT"
    assert out.summary["type"]["coding"][0]["code"] == "18761-7"


def test_admission_through_the_network_modes():
    from ehr_sandbox.network import Network

    for mode, channel in (("emr", "fax"), ("ehr", "exchange")):
        net = Network.generate(seed=5, mode=mode, patients=4, people=1)
        clinic = net.org("clinic").sandbox
        p = add_patient(clinic, random.Random(2), age_days=66 * 365, gender="female")
        s = net.login("clinic", MA)
        identify(s, p["ref"], name=p["name"], birth_date=p["dob"])
        sr = clinic.system_session().create(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "code": {"text": "ED transfer"},
                "subject": {"reference": p["ref"]},
            }
        )
        out = admission.arrange(
            s,
            p["ref"],
            f"ServiceRequest/{sr['id']}",
            kind="ed-transfer",
            hospital="Riverton General Hospital",
            unit="Emergency department",
            reason="chest pain with ST changes on ECG",
            network=net,
        )
        assert out.channel == channel and out.encounter["class"]["code"] == "EMER"
        if mode == "emr":
            assert out.document is not None and net.inbox("hospital")[-1] is out.document
        else:
            assert out.document is None


# ----------------------------------------------------------------------------- rooms and sterilization
def test_room_turnover(clinic):
    s, p = _patient(clinic, 20 * 365)
    room = rooms.create_room(clinic.system_session(), "Exam 3")
    rref = f"Location/{room['id']}"
    rooms.room_patient(s, rref, p["ref"])
    _refused("rooms.not-ready", rooms.room_patient, s, rref, p["ref"])
    _refused("rooms.transition", rooms.set_status, s, rref, "ready")
    rooms.discharge_room(s, rref)
    _refused("rooms.transition", rooms.set_status, s, rref, "ready")
    _refused("rooms.checklist", rooms.turnover, s, rref, {"linens": True})
    done = rooms.turnover(s, rref, {i["id"]: True for i in rooms.table("rooms")["checklist"]})
    assert done["status"] == "completed" and rooms.status_of(s.read(rref)) == "ready"
    _refused("rooms.transition", rooms.set_status, s, rref, "blocked")
    assert (
        rooms.status_of(
            rooms.set_status(s, rref, "blocked", reason="sink leaking, maintenance called")
        )
        == "blocked"
    )


def test_bi_failure_recalls_packs_and_flags_procedures(clinic):
    s, p = _patient(clinic, 66 * 365, "male")
    auto = sterilization.register_autoclave(s, "Autoclave 1", "SN-9")
    aref = f"Device/{auto['id']}"
    packs = [f"Device/{sterilization.register_pack(s, f'Pack {i}')['id']}" for i in range(3)]
    args = dict(cycle="gravity", temp_c=121, minutes=30, pressure_psi=16, chemical_indicator="pass")
    _refused(
        "sterilization.weekly-bi",
        sterilization.log_cycle,
        s,
        aref,
        load="L1",
        packs=packs[:2],
        **args,
    )
    _refused(
        "sterilization.cycle",
        sterilization.log_cycle,
        s,
        aref,
        load="",
        packs=packs[:2],
        biological_indicator=True,
        **args,
    )
    c1 = sterilization.log_cycle(
        s, aref, load="L1", packs=packs[:2], biological_indicator=True, **args
    )
    clinic.clock.advance(minutes=30)
    bad = sterilization.log_cycle(s, aref, load="L2", packs=[packs[2]], **{**args, "temp_c": 115})
    assert bad["businessStatus"]["text"] == "failed"
    _refused("sterilization.recalled-pack", sterilization.check_pack, s, packs[2])
    proc = sterilization.use_pack(
        s, p["ref"], packs[0], procedure="NAIL-DEBRIDE", display="Debridement of nails, 1 to 5"
    )
    _refused("sterilization.bi-result", sterilization.record_bi, s, f"Task/{c1['id']}", "unknown")
    recall = sterilization.record_bi(s, f"Task/{c1['id']}", "fail")
    assert set(recall.packs) == set(packs)  # the load and every later load of that sterilizer
    assert recall.procedures == [f"Procedure/{proc['id']}"]
    assert recall.flags[0]["subject"]["reference"] == p["ref"]
    _refused("sterilization.recalled-pack", sterilization.check_pack, s, packs[0])
    _refused("sterilization.bi-result", sterilization.record_bi, s, f"Task/{c1['id']}", "pass")
    _refused(
        "sterilization.maintenance",
        sterilization.log_maintenance,
        s,
        aref,
        "oil-change",
        "pass",
        "x",
    )
    t = sterilization.log_maintenance(s, aref, "autoclave-service", "pass", "annual service done")
    assert t["output"][1]["valueDate"] > t["authoredOn"][:10]


# ----------------------------------------------------------------------------- specialties
def test_specialty_rules(clinic):
    s, p = _patient(clinic, 64 * 365)
    _refused(
        "ophthalmic.iop",
        ophthalmic.eye_workup,
        s,
        p["ref"],
        va_right="20/20",
        va_left="20/20",
        iop_right=120,
        iop_left=14,
    )
    _refused(
        "ophthalmic.adherence",
        ophthalmic.glaucoma_follow_up,
        s,
        p["ref"],
        medication="timolol",
        adherence="?",
        va_right="20/20",
        va_left="20/20",
        iop_right=14,
        iop_left=14,
        target_iop=16,
    )
    out = ophthalmic.glaucoma_follow_up(
        s,
        p["ref"],
        medication="latanoprost 0.005% ophthalmic solution",
        adherence="missed doses",
        va_right="20/30",
        va_left="20/25",
        iop_right=19,
        iop_left=15,
        target_iop=17,
    )
    assert out[-2]["resourceType"] == "Task" and out[-1]["status"] == "active"
    pulses = {
        f"{side} {pp}": "normal"
        for side in ("right", "left")
        for pp in ("dorsalis-pedis", "posterior-tibial")
    }
    _refused(
        "podiatric.monofilament",
        podiatric.diabetic_foot_exam,
        s,
        p["ref"],
        monofilament_right=[True] * 4,
        monofilament_left=[True] * 5,
        pulses=pulses,
        skin="ok",
    )
    _refused(
        "podiatric.pulses",
        podiatric.diabetic_foot_exam,
        s,
        p["ref"],
        monofilament_right=[True] * 5,
        monofilament_left=[True] * 5,
        pulses={},
        skin="ok",
    )
    exam = podiatric.diabetic_foot_exam(
        s,
        p["ref"],
        monofilament_right=[True] * 5,
        monofilament_left=[True] * 5,
        pulses=pulses,
        skin="intact",
    )
    assert [r["resourceType"] for r in exam] == [
        "Observation",
        "Observation",
        "Observation",
        "Procedure",
    ]
    _refused(
        "podiatric.routine-care",
        podiatric.routine_foot_care,
        s,
        p["ref"],
        service="NAIL-DEBRIDE",
        systemic_condition="M54.5",
        findings=["nontraumatic-amputation"],
    )
    care = podiatric.routine_foot_care(
        s,
        p["ref"],
        service="NAIL-DEBRIDE",
        systemic_condition="E11.42",
        findings=["absent-dorsalis-pedis-pulse", "edema", "paresthesias"],
    )
    assert care["extension"][0]["valueCoding"]["code"] == "Q9"
    base = dict(
        fundal_height_cm=28,
        fetal_heart_rate=142,
        urine_protein="negative",
        urine_glucose="negative",
        first_pregnancy=False,
    )
    lmp = (clinic.clock.peek().date() - timedelta(days=28 * 7 + 2)).isoformat()
    _refused(
        "obgyn.trimester-code",
        obgyn.prenatal_visit,
        s,
        p["ref"],
        lmp=lmp,
        supervision_code="Z34.82",
        weeks_code="Z3A.28",
        **base,
    )
    _refused(
        "obgyn.trimester-code",
        obgyn.prenatal_visit,
        s,
        p["ref"],
        lmp=lmp,
        supervision_code="Z34.83",
        weeks_code="Z3A.27",
        **base,
    )
    _refused(
        "obgyn.dates",
        obgyn.prenatal_visit,
        s,
        p["ref"],
        lmp="2030-01-01",
        supervision_code="Z34.83",
        weeks_code="Z3A.28",
        **base,
    )
    _refused(
        "obgyn.measurements",
        obgyn.prenatal_visit,
        s,
        p["ref"],
        lmp=lmp,
        supervision_code="Z34.83",
        weeks_code="Z3A.28",
        **{**base, "urine_protein": "some"},
    )
    visit = obgyn.prenatal_visit(
        s,
        p["ref"],
        lmp=lmp,
        supervision_code="Z34.83",
        weeks_code="Z3A.28",
        **{**base, "fetal_heart_rate": 172},
    )
    task = visit[-1]
    assert (
        task["resourceType"] == "Task"
        and "Tdap" in task["description"]
        and "FHR 172" in task["description"]
    )
    part = {"pain": "tender", "range-of-motion": "limited"}
    _refused(
        "chiropractic.regions",
        chiropractic.visit,
        s,
        p["ref"],
        regions=["neck"],
        primary_dx="M99.01",
        part=part,
        treatment="maintenance",
    )
    _refused(
        "chiropractic.diagnosis",
        chiropractic.visit,
        s,
        p["ref"],
        regions=["cervical"],
        primary_dx="M99.03",
        part=part,
        treatment="maintenance",
    )
    _refused(
        "chiropractic.part",
        chiropractic.visit,
        s,
        p["ref"],
        regions=["cervical"],
        primary_dx="M99.01",
        part={"pain": "x", "tissue-tone": "y"},
        treatment="maintenance",
    )
    _refused(
        "chiropractic.active",
        chiropractic.visit,
        s,
        p["ref"],
        regions=["cervical"],
        primary_dx="M99.01",
        part=part,
        treatment="active",
    )
    maint = chiropractic.visit(
        s,
        p["ref"],
        regions=["cervical"],
        primary_dx="M99.01",
        part=part,
        treatment="maintenance",
        abn_on_file=True,
    )
    assert maint[-1]["extension"][0]["valueCoding"]["code"] == "GA"
    plain = chiropractic.visit(
        s, p["ref"], regions=["cervical"], primary_dx="M99.01", part=part, treatment="maintenance"
    )
    assert "extension" not in plain[-1]


def test_refusals_are_sandbox_errors_and_validation_errors():
    from ehr_sandbox.errors import ValidationError

    assert issubclass(RuleRefused, ValidationError) and issubclass(RuleRefused, SandboxError)


def test_poc_dipstick_hcg_and_inr(clinic):
    s, p = _patient(clinic, 28 * 365)
    controls = {"positive": "positive", "negative": "negative"}
    hcg = f"Device/{poc_testing.register_kit(s, 'urine-hcg', lot='U1', expiry='2027-01-31', name='hCG')['id']}"
    poc_testing.run_qc(s, hcg, controls)
    neg = poc_testing.run_test(s, p["ref"], hcg, "negative")
    assert (
        neg.escalation is None
        and neg.observation["interpretation"][0]["coding"][0]["code"] == "NEG"
    )
    dip = f"Device/{poc_testing.register_kit(s, 'urine-dipstick', lot='D1', expiry='2027-01-31', name='strips')['id']}"
    poc_testing.run_qc(s, dip, {"normal": "normal", "abnormal": "abnormal"})
    pads = {
        "5811-5": 1.015,
        "2756-5": 6.0,
        "20454-5": "negative",
        "25428-4": "negative",
        "5802-4": "negative",
        "5799-2": "trace",
    }
    _refused("poc.plausible", poc_testing.run_test, s, p["ref"], dip, {"5811-5": 1.015})
    ua = poc_testing.run_test(s, p["ref"], dip, pads)
    assert len(ua.observation["component"]) == 6
    inr = f"Device/{poc_testing.register_kit(s, 'inr', lot='I9', expiry='2027-01-31', name='INR')['id']}"
    poc_testing.run_qc(s, inr, {"level 1": 1.0, "level 2": 2.9})
    high = poc_testing.run_test(s, p["ref"], inr, 5.6)
    assert high.critical and high.escalation["priority"] == "stat"


def test_the_generated_qc_log_follows_the_qc_rule():
    """The generator's daily QC log is what run_qc writes: every run's pass/fail follows from
    its controls against the content's control results."""
    s = Sandbox.generate(patients=2, seed=5, years=1).system_session()
    kits = {
        f"Device/{d['id']}": d
        for d in s.search("Device").fetch()
        if (d.get("type") or {}).get("coding")
    }
    runs = [
        t
        for t in s.search("Task", code=f"{poc_testing.SANDBOX_OBS}|poc-qc").fetch()
        if t["focus"]["reference"] in kits
    ]
    assert runs
    assert [
        (t["id"], poc_testing.qc_problem(kits[t["focus"]["reference"]], t))
        for t in runs
        if poc_testing.qc_problem(kits[t["focus"]["reference"]], t) is not None
    ] == []
    assert {t["businessStatus"]["text"] for t in runs} >= {"pass"}
