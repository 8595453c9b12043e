"""Catalogue item 31 (part): coding a visit from the note (ICD-10-CM, HCPCS, sandbox procedures).

The note documents a confirmed diagnosis and a *rule-out* (provisional) one, the office visit
level and what was done in the office. The claim codes only the confirmed diagnosis, every
service (sandbox procedure codes and HCPCS Level II for the drug), with pointers to the
diagnosis that supports each line, and goes through the scrubber.
"""

from __future__ import annotations

from typing import Any

from ehr_sandbox.exercises.builtin.front_office.common import (
    BILLING,
    check,
    claim_misstates_visit,
    insured_patients,
    local_day_start,
    op_of,
    sent_versions,
    visit,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import claims, coding, payer
from ehr_sandbox.workflows.base import RuleRefused, write
from ehr_sandbox.workflows.coding import ClaimLine, claim_codes
from ehr_sandbox.workflows.scrubber import scrub
from synthetic.systems import CONDITION_VER_STATUS

__all__ = ["CODE_VISIT"]

RULE_OUT = "do not code a rule-out, probable or suspected diagnosis as confirmed (outpatient guideline IV.H): code what was confirmed"

SCENARIOS = {
    "sore-throat": {
        "note": "Sore throat for 3 days, fever. Rapid strep test done in the office: negative. "
        "Assessment: acute pharyngitis; rule out streptococcal pharyngitis (culture sent). Plan: fluids, salt-water gargles.",
        "confirmed": ("J02.9", "Acute pharyngitis"),
        "rule_out": ("J02.0", "Rule out streptococcal pharyngitis"),
        "services": ["procedure|STREP-RAPID"],
    },
    "urinary": {
        "note": "Burning on urination for 2 days. Urine dipstick in the office: nitrite and leukocyte positive. "
        "Assessment: urinary tract infection; probable kidney stone, to be ruled out by imaging. "
        "Ceftriaxone 250 mg IM given in the office.",
        "confirmed": ("N39.0", "Urinary tract infection"),
        "rule_out": ("N20.0", "Probable kidney stone, rule out"),
        "services": ["procedure|UA-DIP", "hcpcs|J0696"],
    },
}
LEVELS = {"OV-EST-3": "low complexity", "OV-EST-4": "moderate complexity"}


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = variant.pick(
        insured_patients(sandbox, ("blueshield", "unityhealth", "medicare"), username=BILLING),
        salt="patient",
    )
    key = variant.pick(sorted(SCENARIOS), salt="scenario")
    sc = SCENARIOS[key]
    level = variant.pick(sorted(LEVELS), salt="level")
    doc = rng.choice(["dr.patel", "dr.nguyen", "dr.okafor"])
    v = visit(
        sandbox,
        p["id"],
        doc,
        start=local_day_start(sandbox.reference_date, rng.choice(["08:20", "09:00", "09:40"])),
        conditions=[
            (sc["confirmed"][0], sc["confirmed"][1], "confirmed"),
            (sc["rule_out"][0], sc["rule_out"][1], "provisional"),
        ],
        visit_code=level,
    )
    return Scenario(
        facts={
            "encounter": v["encounter"],
            "patient_id": p["id"],
            "doctor": doc,
            "note": sc["note"],
            "level": f"established patient, {LEVELS[level]}",
        },
        answer={
            "diagnoses": [f"icd10cm|{sc['confirmed'][0]}"],
            "services": sorted([f"procedure|{level}", *sc["services"]]),
            "rule_out": f"icd10cm|{sc['rule_out'][0]}",
        },
        protect=tuple(f"Condition/{c}" for c in v["conditions"]),
    )


def _claims(ctx: GradingContext) -> list[dict[str, Any]]:
    enc = f"Encounter/{ctx.facts['encounter']}"
    out: dict[str, dict[str, Any]] = {}
    for v in written(ctx, "Claim"):
        if any(
            e.get("reference") == enc for it in v.get("item", []) for e in it.get("encounter", [])
        ):
            out[v["id"]] = v
    return list(out.values())


def _sent(ctx: GradingContext) -> list[dict[str, Any]]:
    sent = []
    for c in _claims(ctx):
        cur = ctx.read(f"Claim/{c['id']}") or {}
        if cur.get("status") == "active":
            sent.append(cur)
    return sent


RESENT = (
    "a claim goes to the payer the moment it is sent: rewriting it afterwards does not call "
    "that claim back (correct a sent claim with claims.resubmit_corrected once it is answered)"
)


def _every_sent(ctx: GradingContext) -> list[dict[str, Any]]:
    """Every version of the visit's claims that went to the payer (history, not only now)."""
    return sent_versions(ctx, [c["id"] for c in _claims(ctx)])


def _dx(ctx: GradingContext) -> Any:
    a = ctx.answer
    expected = "the confirmed diagnosis only"
    sent = _sent(ctx)
    if len(sent) != 1:
        return check(
            False,
            f"{len(sent)} claims sent for the visit",
            expected,
            "send one claim for the visit",
        )
    dx, _ = claim_codes(sent[0])
    if a["rule_out"] in dx:
        return check(False, f"diagnoses {dx}", expected, RULE_OUT)
    if sorted(dx) != sorted(a["diagnoses"]):
        return check(
            False, f"diagnoses {dx}", expected, "code the diagnosis the provider confirmed"
        )
    for v in _every_sent(ctx):
        if sorted(claim_codes(v)[0]) != sorted(a["diagnoses"]):
            return check(
                False,
                f"Claim/{v['id']} version {v['meta']['versionId']} was sent with other diagnoses",
                expected,
                RESENT,
            )
    return check(True, f"diagnoses {dx}", expected)


def _services(ctx: GradingContext) -> Any:
    expected = (
        "every service of the note: the visit level, the office test and any drug given (HCPCS)"
    )
    sent = _sent(ctx)
    if len(sent) != 1:
        return check(False, f"{len(sent)} claims sent", expected, "code what the note documents")
    _, lines = claim_codes(sent[0])
    services = sorted(ln["service"] for ln in lines)
    if services != ctx.answer["services"]:
        return check(
            False,
            f"services {services}",
            expected,
            "code the visit level the note states and each service performed",
        )
    enc = f"Encounter/{ctx.facts['encounter']}"
    for v in _every_sent(ctx):
        wrong = claim_misstates_visit(ctx, v, enc)
        if wrong:
            return check(
                False,
                f"Claim/{v['id']} version {v['meta']['versionId']}: {wrong}",
                expected,
                "bill the visit as it happened: its patient and plan, the practice, the day of "
                "the visit, each service once",
            )
        if sorted(ln["service"] for ln in claim_codes(v)[1]) != ctx.answer["services"]:
            return check(
                False,
                f"Claim/{v['id']} version {v['meta']['versionId']} was sent with other services",
                expected,
                RESENT,
            )
    return check(True, f"services {services}", expected)


def _pointers(ctx: GradingContext) -> Any:
    expected = "each line pointing to the diagnosis that supports it (clean medical-necessity edit)"
    sent = _sent(ctx)
    if len(sent) != 1:
        return check(
            False, f"{len(sent)} claims sent", expected, "point each line to its diagnosis"
        )
    bad = [
        str(f)
        for f in scrub(ctx.session, sent[0])
        if f.rule in ("scrub.necessity", "scrub.cms1500")
    ]
    if bad:
        return check(
            False,
            "; ".join(bad),
            expected,
            "a line's pointer must name a diagnosis that supports it",
        )
    return check(True, "pointers support each line", expected)


def _scrubbed(ctx: GradingContext) -> Any:
    expected = "the claim sent through the scrubber (claims.submit)"
    sent = _sent(ctx)
    versions = ctx.versions_since_setup(f"Claim/{sent[0]['id']}") if sent else []
    if not sent or not any(
        op_of(ctx, v) == "claims.submit" and v.get("status") == "active" for v in versions
    ):
        return check(
            False,
            "claim status set by hand or not sent",
            expected,
            "send claims with claims.submit so the edits run first",
        )
    # the workflow's tag can be typed by hand: what claims.submit guarantees is a clean scrub,
    # so every version that went out is scrubbed again here
    dirty = [str(f) for v in versions if v.get("status") == "active" for f in scrub(ctx.session, v)]
    if dirty:
        return check(
            False,
            f"sent with {len(dirty)} scrubber finding(s)",
            expected,
            "send claims with claims.submit so the edits run first",
        )
    return check(True, "sent after a clean scrub", expected)


def _lines(
    att: Any, *, level: str | None = None, dx: list[str] | None = None
) -> tuple[list[str], list[ClaimLine]]:
    s = att.session
    sb = coding.superbill(s, f"Encounter/{att.facts['encounter']}")
    confirmed = [d["code"] for d in sb["diagnoses"] if d["status"] == "confirmed"]
    dx = dx or confirmed
    enc = s.read(f"Encounter/{att.facts['encounter']}")
    visit_code = level or enc["type"][0]["coding"][0]["code"]
    note = att.facts["note"].lower()
    extra = []
    if "strep test" in note:
        extra.append("procedure|STREP-RAPID")
    if "dipstick" in note:
        extra.append("procedure|UA-DIP")
    if "ceftriaxone" in note:
        extra.append("hcpcs|J0696")
    lines = [ClaimLine(f"procedure|{visit_code}", (1,))] + [ClaimLine(x, (1,)) for x in extra]
    return dx, lines


def _solution(att: Any, *, visit_units: int = 1) -> None:
    """The reference (``visit_units``: a wrong solution billing the visit level that many
    times)."""
    s = att.session
    dx, lines = _lines(att)
    lines[0] = ClaimLine(lines[0].service, lines[0].pointers, visit_units)
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=lines)
    claims.submit(s, c["id"])


def _tagged_by_hand(att: Any) -> None:
    """Build the right claim, put it at the hospital's place of service, and send it by hand
    with the claims.submit tag typed in (the scrubber never ran)."""
    s = att.session
    dx, lines = _lines(att)
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=lines)
    for it in c["item"]:
        it["locationCodeableConcept"]["coding"][0]["code"] = "22"
    write(s, {**c, "status": "active"}, operation="claims.submit")


def _sent_then_rewritten(att: Any) -> None:
    """A claim at the wrong visit level sent through the scrubber, then taken back to draft,
    rewritten right and sent again (one claim record, the payer got both)."""
    s = att.session
    enc = f"Encounter/{att.facts['encounter']}"
    right = s.read(enc)["type"][0]["coding"][0]["code"]
    other = "OV-EST-4" if right == "OV-EST-3" else "OV-EST-3"
    dx, lines = _lines(att, level=other)
    c = coding.build_claim(s, enc, diagnoses=dx, lines=lines)
    claims.submit(s, c["id"])
    dx, lines = _lines(att)
    fixed = coding.claim_resource(s, enc, diagnoses=dx, lines=lines)
    cur = s.read(f"Claim/{c['id']}")
    keep = {k: v for k, v in fixed.items() if k not in ("id", "meta", "status")}
    s.update({**cur, **keep, "status": "draft"})
    claims.submit(s, c["id"])


def _rule_out(att: Any) -> None:
    s = att.session
    sb = coding.superbill(s, f"Encounter/{att.facts['encounter']}")
    dx, lines = _lines(att, dx=[d["code"] for d in sb["diagnoses"]])
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=lines)
    s.update({**c, "status": "active"})


def _wrong_level(att: Any) -> None:
    s = att.session
    enc = s.read(f"Encounter/{att.facts['encounter']}")
    other = "OV-EST-4" if enc["type"][0]["coding"][0]["code"] == "OV-EST-3" else "OV-EST-3"
    dx, lines = _lines(att, level=other)
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=lines)
    claims.submit(s, c["id"])


def _other_patient(att: Any) -> None:
    _solution(att)
    s = att.session
    for e in s.search("Encounter").fetch():
        pid = e["subject"]["reference"]
        if pid == f"Patient/{att.facts['patient_id']}" or e.get("status") != "finished":
            continue
        if any(
            c.get("status") == "active"
            and payer.is_insurance(c)
            and not (c.get("period") or {}).get("end")
            for c in s.search("Coverage", patient=pid).fetch()
        ):
            coding.build_claim(
                s,
                f"Encounter/{e['id']}",
                diagnoses=["icd10cm|Z00.00"],
                lines=[ClaimLine("procedure|OV-EST-3", (1,))],
            )
            return


def _confirmed_rule_out(att: Any) -> None:
    sys = att.sandbox.system_session()
    for c in sys.search("Condition", patient=f"Patient/{att.facts['patient_id']}").fetch():
        if (c.get("encounter") or {}).get("reference") == f"Encounter/{att.facts['encounter']}":
            vs = c["verificationStatus"]["coding"][0]["code"]
            if vs == "provisional":
                sys.update(
                    {
                        **c,
                        "verificationStatus": {
                            "coding": [
                                {
                                    "system": CONDITION_VER_STATUS,
                                    "code": "confirmed",
                                }
                            ]
                        },
                    }
                )
    s = att.session
    sb = coding.superbill(s, f"Encounter/{att.facts['encounter']}")
    dx, lines = _lines(att, dx=[d["code"] for d in sb["diagnoses"]])
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=lines)
    try:
        claims.submit(s, c["id"])
    except RuleRefused:
        s.update({**c, "status": "active"})


CODE_VISIT = Exercise(
    id="front-office/code-visit",
    title="Coding a visit from the note",
    topic="front-office",
    topics=("coding", "billing"),
    competencies=("IX.P.1", "IX.P.2", "IX.P.3", "VIII.P.4"),
    minutes=15,
    role=BILLING,
    summary="Confirmed diagnosis only (not the rule-out), every service incl. HCPCS, pointers that support each line.",
    setup=_setup,
    instructions=(
        "Code today's visit `Encounter/{encounter}` (Dr. {doctor}; {level}) and send the claim.\n\n"
        "> {note}\n\n"
        "Use ICD-10-CM for diagnoses, the sandbox procedure codes for the visit and office "
        "procedures, and HCPCS Level II for drugs (`coding.superbill` shows what was documented)."
    ),
    criteria=(
        Criterion(
            "confirmed diagnoses only",
            2,
            _dx,
            "Outpatient coding reports what was confirmed; an uncertain diagnosis coded as fact follows the patient (ICD-10-CM guideline IV.H; MAERB IX.P.2).",
        ),
        Criterion(
            "every service coded",
            2,
            _services,
            "Each service documented is billed once, at the documented level (MAERB IX.P.1).",
        ),
        Criterion(
            "pointers support each line",
            1,
            _pointers,
            "Each line names the diagnosis that makes it medically necessary (CMS-1500 item 24E; MAERB IX.P.3).",
        ),
        Criterion(
            "sent through the scrubber",
            1,
            _scrubbed,
            "Claims are edited before they are sent (MAERB VIII.P.4).",
        ),
    ),
    expects=(Expect("Claim", ops=("create", "update"), patients=("patient_id",)),),
    hints=(
        Hint(
            "`coding.superbill(session, encounter)` lists the documented diagnoses with their verification status."
        ),
    ),
    solution=Solution(
        _solution,
        description="build_claim with the confirmed diagnosis and every service; claims.submit",
    ),
    wrong_solutions={
        "visit-billed-four-times": Solution(
            lambda att: _solution(att, visit_units=4),
            fails="every service coded",
            message="each service once",
            description="the right codes, the visit level billed for 4 units (full marks before)",
        ),
        "sent-then-rewritten": Solution(
            _sent_then_rewritten,
            fails="every service coded",
            message="rewriting it afterwards does not call that claim back",
            description="a claim at the wrong level sent, then taken back to draft, rewritten "
            "and sent again",
        ),
        "submit-tag-by-hand": Solution(
            _tagged_by_hand,
            fails="sent through the scrubber",
            message="so the edits run first",
            description="sent a claim with a scrubber finding by hand, the claims.submit tag typed in",
        ),
        "rule-out-coded": Solution(
            _rule_out,
            fails="confirmed diagnoses only",
            message="rule-out",
            description="coded the rule-out diagnosis as well and forced the claim out",
        ),
        "wrong-level": Solution(
            _wrong_level,
            fails="every service coded",
            message="visit level the note states",
            description="coded another visit level",
        ),
        "claim-for-another-patient": Solution(
            _other_patient,
            fails="no collateral damage",
            message="unexpected change",
            description="also built a claim for another patient's visit",
        ),
        "confirmed-the-rule-out": Solution(
            _confirmed_rule_out,
            fails="no collateral damage",
            message="work done under",
            description="changed the provisional diagnosis to confirmed",
        ),
    },
)
