"""The registry message (HL7 v2.5.1 VXU^V04) read by field number against the CDC guide.

CDC "HL7 Version 2.5.1 Implementation Guide for Immunization Messaging", release 1.5 and its
2018 update. Each segment is split on ``|`` here, independently of the writer's field table:
field n of a segment is element n of the split, except in MSH, whose separator is MSH-1.
"""

from __future__ import annotations

import random

import pytest

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.exercises.builtin.clinical.common import MA, add_patient
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import immunizations
from ehr_sandbox.workflows.care import identify

SCREEN_NO = {k: False for k in immunizations.table("vaccines")["screening"]}
NIP002 = {
    "00": "parental decision",
    "01": "religious exemption",
    "02": "other",
    "03": "patient decision",
}


@pytest.fixture(scope="module")
def clinic():
    return Sandbox.generate(patients=2, seed=23, years=1)


def _patient(clinic, age_days, seed):
    p = add_patient(clinic, random.Random(seed), age_days=age_days, gender="female")
    s = clinic.login(MA)
    identify(s, p["ref"], name=p["name"], birth_date=p["dob"])
    return s, p


def _segments(text: str, name: str) -> list[list[str]]:
    return [line.split("|") for line in text.splitlines() if line.startswith(name + "|")]


def _one(text: str, name: str) -> list[str]:
    found = _segments(text, name)
    assert len(found) == 1, f"one {name} expected in {text!r}"
    return found[0]


def _f(fields: list[str], n: int) -> str:
    """Field n (1-based, as the guide numbers it) of a split segment; empty when absent."""
    i = n - 1 if fields[0] == "MSH" else n
    return fields[i] if i < len(fields) else ""


def _obx(text: str) -> dict[str, list[list[str]]]:
    """OBX segments by their observation's LOINC (OBX-3 first component)."""
    out: dict[str, list[list[str]]] = {}
    for obx in _segments(text, "OBX"):
        out.setdefault(_f(obx, 3).split("^")[0], []).append(obx)
    return out


def _give(s, p, **more):
    return immunizations.give(
        s, p["ref"], cvx="03", lot="M1", expiry="2030-01-01", route="SC", site="LA",
        vis_edition="2021-08-06", screening=SCREEN_NO, **more,
    )  # fmt: skip


def test_header_patient_and_order_segments_follow_the_guide(clinic):
    s, p = _patient(clinic, 14 * 30, 1)
    imm = _give(s, p)
    text, _ = immunizations.registry_message(s, f"Immunization/{imm['id']}")
    msh = _one(text, "MSH")
    assert text.startswith("MSH|^~\\&|") and _f(msh, 2) == "^~\\&"
    assert _f(msh, 9) == "VXU^V04^VXU_V04"
    assert _f(msh, 10) == imm["id"] and _f(msh, 11) == "P"
    assert _f(msh, 12) == "2.5.1"
    assert _f(msh, 21).split("^")[:2] == ["Z22", "CDCPHINVS"]
    pid = _one(text, "PID")
    ident = _f(pid, 3).split("^")
    assert ident[0] and ident[3], "PID-3 needs the identifier and its assigning authority"
    assert ident[4] == "MR"
    assert ident[0] == p["mrn"]
    assert _f(pid, 7) == p["dob"].replace("-", "") and _f(pid, 8) == "F"
    orc = _one(text, "ORC")
    assert _f(orc, 1) == "RE"
    filler = _f(orc, 3).split("^")
    assert filler[0] and len(filler) > 1 and filler[1], "ORC-3 is an EI with its namespace"


@pytest.mark.parametrize("reason", sorted(immunizations.DEFER_REASONS))
@pytest.mark.parametrize("years", [1, 30])
def test_a_dose_not_given_is_reported_as_the_guide_says(clinic, reason, years):
    """A refusal (PATOBJ) is RXA-20 RE with its NIP002 reason in RXA-18 -- the parent's
    decision for a child, the patient's for an adult; any other reason is RXA-20 NA with no
    RXA-18, and a medical precaution carries the OBX 30945-0 that says why."""
    s, p = _patient(clinic, years * 365 + 30, 10 + years)
    why = "what happened today at the visit"
    d = immunizations.defer(s, p["ref"], "21", reason, why)
    text, _ = immunizations.registry_message(s, f"Immunization/{d['id']}")
    rxa = _one(text, "RXA")
    refusal = _f(rxa, 18).split("^")
    assert _f(rxa, 6) == "999" and _f(rxa, 15) == "" and _f(rxa, 21) == "A"
    assert _f(_one(text, "ORC"), 3) == "9999^CDC"  # no order was filled
    assert "ActReason" not in text and reason not in _f(rxa, 18)
    obx = _obx(text)
    if reason == "PATOBJ":
        assert _f(rxa, 20) == "RE"
        assert refusal[2] == "NIP002" and refusal[0] in NIP002
        assert NIP002[refusal[0]] == ("parental decision" if years < 18 else "patient decision")
        assert refusal[1].lower() == NIP002[refusal[0]]
        assert not obx
        return
    assert _f(rxa, 20) == "NA" and _f(rxa, 18) == ""
    if reason == "MEDPREC":
        (contra,) = obx["30945-0"]
        assert _f(contra, 2) == "CE" and why in _f(contra, 5) and _f(contra, 11) == "F"
    if reason == "IMMUNE":
        # the guide: RXA-5 998 "no vaccine administered" and the disease with presumed immunity
        assert _f(rxa, 5).split("^")[0] == "998" and _f(rxa, 5).split("^")[2] == "CVX"
        (immune,) = obx["59784-9"]
        assert _f(immune, 5).split("^")[2] == "SCT" and _f(immune, 5).split("^")[0].isdigit()
    else:
        assert _f(rxa, 5).split("^")[0] == "21"
    if reason == "OSTOCK":
        assert not obx


@pytest.mark.parametrize("eligibility", ["V01", "V02", "V03", "V04", "V05"])
def test_a_given_dose_reports_its_funding_eligibility_and_the_vis_as_one_group(clinic, eligibility):
    s, p = _patient(clinic, 14 * 30, 40 + int(eligibility[-1]))
    imm = _give(s, p, eligibility=eligibility)
    text, _ = immunizations.registry_message(s, f"Immunization/{imm['id']}")
    obxs = _segments(text, "OBX")
    assert [_f(o, 1) for o in obxs] == [str(i) for i in range(1, len(obxs) + 1)]
    assert all(_f(o, 11) == "F" and _f(o, 3).endswith("^LN") for o in obxs)
    obx = _obx(text)
    (fund,) = obx["64994-7"]
    assert _f(fund, 2) == "CE" and _f(fund, 5).split("^")[::2] == [eligibility, "HL70064"]
    assert _f(fund, 17).split("^")[0] == "VXC40" and _f(fund, 14) == imm["occurrenceDateTime"][
        :10
    ].replace("-", "")
    ((kind,), (published,), (presented,)) = obx["30956-7"], obx["29768-9"], obx["29769-7"]
    assert _f(kind, 5).split("^")[::2] == ["03", "CVX"]
    assert _f(published, 5) == "20210806"  # the edition handed out
    assert _f(presented, 5) == imm["occurrenceDateTime"][:10].replace("-", "")
    # the three observations of one VIS share their OBX-4 sub-ID, apart from the funding one
    assert _f(kind, 4) == _f(published, 4) == _f(presented, 4) != _f(fund, 4)
    assert "29768-9" not in {_f(o, 3).split("^")[0] for o in obxs if _f(o, 4) == _f(fund, 4)}


def test_an_unknown_funding_eligibility_is_a_typed_error_and_nothing_is_written(clinic):
    s, p = _patient(clinic, 14 * 30, 60)
    before = clinic.system_session().search("Immunization").count()
    with pytest.raises(ValidationError) as exc:
        _give(s, p, eligibility="V99")
    assert "programEligibility" in str(exc.value) and "V99" in str(exc.value)
    assert clinic.system_session().search("Immunization").count() == before
