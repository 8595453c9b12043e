"""Visit step: screening questionnaires and family history, as the MA records them at intake.

* PHQ-2 at preventive visits from age 12 (USPSTF), the PHQ-9 when the PHQ-2 is positive or the
  patient has depression; AUDIT-C at preventive visits from 18 (USPSTF). Each is a
  ``QuestionnaireResponse`` (one integer answer per LOINC item, as
  ``ehr_sandbox.workflows.history.screen`` writes it) and its total-score Observation is
  ``derivedFrom`` it, so the total always equals the sum of the items. At a depression
  follow-up the PHQ-9 score the visit measured gets its questionnaire.
* Family history (``FamilyMemberHistory``) at the first visit, by relative (content rates).

>>> Screening.name
'screening'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import social
from synthetic.builders.clinical_ma import family_member_history, questionnaire_response
from synthetic.context import RecordContext
from synthetic.profile import weighted_choice
from synthetic.visit.side_rng import SideRng
from synthetic.visit.state import PatientState, VisitState

PHQ2 = ("55757-9", "55758-7", ("44250-9", "44255-8"), 3)
"""PHQ-2: panel, total score, items, item maximum (Kroenke 2003)."""
PHQ9 = (
    "44249-1",
    "44261-6",
    (
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ),
    3,
)
"""PHQ-9: panel, total score, items, item maximum (Kroenke 2001)."""
AUDIT_C = ("72109-2", "75626-2", ("68518-0", "68519-8", "68520-6"), 4)
"""AUDIT-C: panel, total score, items, item maximum (Bush 1998)."""


def split_total(rng: Any, total: int, n: int, top: int, fixed: tuple[int, ...] = ()) -> list[int]:
    """``n`` item scores in 0..``top`` that add up to ``total`` (the first ones ``fixed``).

    >>> import random
    >>> s = split_total(random.Random(1), 7, 3, 4); sum(s), len(s), max(s) <= 4
    (7, 3, True)
    >>> split_total(random.Random(1), 5, 4, 3, fixed=(1, 2))[:2]
    [1, 2]
    """
    items = [*fixed] + [0] * (n - len(fixed))
    left = max(0, min(total - sum(fixed), (n - len(fixed)) * top))
    free = list(range(len(fixed), n))
    while left > 0 and free:
        i = free[rng.randrange(len(free))]
        items[i] += 1
        left -= 1
        if items[i] >= top:
            free.remove(i)
    return items


def score_value(obs: dict[str, Any]) -> int:
    """The integer total of a score Observation (valueInteger or valueQuantity).

    >>> score_value({"valueQuantity": {"value": 7}}), score_value({"valueInteger": 3})
    (7, 3)
    """
    if "valueInteger" in obs:
        return int(obs["valueInteger"])
    return int(obs["valueQuantity"]["value"])


def last_score(ctx: RecordContext, loinc: str) -> dict[str, Any] | None:
    """The Observation with LOINC ``loinc`` recorded at the current encounter, if any.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter = {"reference": "Encounter/e"}
    >>> o = {"resourceType": "Observation", "code": {"coding": [{"code": "1-1"}]}, "encounter": c.encounter}
    >>> c.out = [o]; last_score(c, "1-1") is o
    True
    """
    encounter = ctx.encounter
    for r in reversed(ctx.out):
        kind = r["resourceType"]
        if kind == "Encounter":
            return None
        if kind == "Observation" and r.get("encounter") == encounter:
            coding = r["code"].get("coding")
            if coding and coding[0].get("code") == loinc:
                return r
    return None


class Screening:
    """Questionnaires at preventive visits and depression follow-ups; family history once.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> sorted({q["questionnaire"] for q in of("QuestionnaireResponse")})
    ['http://loinc.org/q/44249-1', 'http://loinc.org/q/55757-9', 'http://loinc.org/q/72109-2']
    >>> {f["relationship"]["coding"][0]["code"] for f in of("FamilyMemberHistory")} <= {"FTH", "MTH", "BRO", "SIS", "SON", "DAU"}
    True
    """

    name = "screening"

    def __init__(self, eng: Any, side: SideRng) -> None:
        self.eng = eng
        self.side = side
        self.cm = eng.content.clinical_ma
        self.q = self.cm.questionnaires
        self.codes = eng.cat.observation_codes
        self._icd = eng.cat.extra.get("icd_display", {})
        # visits that may measure a PHQ-9 total: a condition or the preset observes it
        self.phq_conditions = frozenset(
            k for k, c in eng.cat.conditions.items() if PHQ9[1] in c.observations
        )
        self.preset_phq = PHQ9[1] in eng.preset.observations

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Give the due questionnaires; take the family history at the first visit.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> all(q["status"] == "completed" and q["item"] for q in of("QuestionnaireResponse"))
        True
        """
        rng = self.side.of(ctx)
        if st.first:
            self.family(ctx, rng)
        if vs.virtual:
            return
        v = vs.v
        dx = st.profile.diagnoses.get("depression")
        depressed = dx is not None and dx.recorded <= vs.day < dx.until
        may_measure = self.preset_phq
        if not may_measure:
            for c in vs.addressed:
                if c.key in self.phq_conditions:
                    may_measure = True
                    break
        measured = last_score(ctx, PHQ9[1]) if may_measure else None
        if measured is not None:  # a depression follow-up measured the PHQ-9: its items
            self.give(ctx, rng, vs, PHQ9, score_value(measured), measured)
        elif v.wellness and vs.age >= self.q.depression_min_age and rng.random() < self.q.uptake:
            if depressed:
                self.give(ctx, rng, vs, PHQ9, self.phq9_total(rng, st, vs, 0), None)
            else:
                phq2 = int(weighted_choice(rng, self.q.phq2_no_depression))
                items = split_total(rng, phq2, 2, 3)
                self.give(ctx, rng, vs, PHQ2, phq2, None, items=items)
                if phq2 >= self.q.phq2_positive:
                    total = self.phq9_total(rng, st, vs, phq2)
                    self.give(ctx, rng, vs, PHQ9, total, None, fixed=tuple(items))
        if v.wellness and vs.age >= self.q.alcohol_min_age:
            audit = last_score(ctx, AUDIT_C[1])
            if audit is not None:
                self.give(ctx, rng, vs, AUDIT_C, score_value(audit), audit)

    def phq9_total(self, rng: Any, st: PatientState, vs: VisitState, floor: int) -> int:
        """A PHQ-9 total from the content's PHQ-9 distribution (with the patient's conditions'
        effects), at least ``floor`` (the PHQ-2 items are part of it)."""
        vd = self.eng.cat.observations.get(PHQ9[1])
        val = (
            self.eng.measures.draw(rng, vd, vs.age, st.person.sex, vs.effects, None)
            if vd is not None
            else None
        )
        return max(floor, min(27, int(val or 0)))

    def give(
        self,
        ctx: RecordContext,
        rng: Any,
        vs: VisitState,
        instrument: tuple[str, str, tuple[str, ...], int],
        total: int,
        score: dict[str, Any] | None,
        *,
        items: list[int] | None = None,
        fixed: tuple[int, ...] = (),
    ) -> None:
        """One questionnaire with items adding up to ``total``, its score derived from it."""
        panel, total_code, codes, top = instrument
        answers = items or split_total(rng, total, len(codes), top, fixed)
        qr = questionnaire_response(ctx, panel, list(zip(codes, answers, strict=True)), vs.ma_ref)
        ctx.add(qr)
        if score is None:
            score = ctx.add(social.score(ctx, code=self.codes[total_code], value=sum(answers)))
        score["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{qr['id']}"}]

    def family(self, ctx: RecordContext, rng: Any) -> None:
        """First-degree relatives' conditions (content rates), once per patient.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> per_patient = [len(rec.by_type("FamilyMemberHistory")) for rec in recs]
        >>> max(per_patient) >= 1, all(f["status"] == "completed" for f in of("FamilyMemberHistory"))
        (True, True)
        """
        for row in self.cm.family_history:
            if rng.random() < row.share:
                lo, hi = row.onset_age
                ctx.add(
                    family_member_history(
                        ctx,
                        row.relationship,
                        row.icd10,
                        self._icd.get(row.icd10, row.icd10),
                        rng.randint(lo, hi),
                    )
                )
