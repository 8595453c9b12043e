"""Record steps: what happens to a patient between visits, documented once the visits are done.

* :class:`Deliveries` - every pregnancy that ended before the record's end has its outcome:
  a delivery is a hospital admission (Encounter class IMP, from the delivery day to discharge)
  with its delivery diagnoses (O80 at term or O60.14X0 preterm, with the outcome Z37.0) and a
  discharge summary; a loss is the encounter diagnosis O03.9 at an office visit that day.
* :class:`Admissions` - a patient with heart failure or COPD is admitted for exacerbations at
  the content's yearly rate (Encounter class IMP citing the chronic Condition, a discharge
  summary); a patient with asthma goes to the emergency department at its rate (class EMER,
  treated and released within hours, a discharge note).
* :class:`RefillRequests` - every renewal authorised between visits starts as the pharmacy's
  refill request, a ``Task`` routed to the prescriber whose focus is the renewal (which links
  the prior prescription).

A record step has a ``name`` and ``finish(ctx, patient_state)``; the engine runs them after the
patient's last visit (:meth:`synthetic.engine.Engine.add_record_step`).

>>> Deliveries.name, Admissions.name, RefillRequests.name
('deliveries', 'admissions', 'refill-requests')
"""

from __future__ import annotations

from datetime import date
from typing import Any

from synthetic.builders import conditions, encounter, notes
from synthetic.builders.clinical_ma import admission, refill_task
from synthetic.builders.common import ENCOUNTER_DX
from synthetic.context import RecordContext
from synthetic.dates import instant, iso_date
from synthetic.frozen import FrozenDict
from synthetic.labels import labels_of
from synthetic.visit.side_rng import SideRng
from synthetic.visit.state import PatientState

HOSPITAL = "Regional Medical Center, Labor and Delivery"
"""The hospital where the practice's patients deliver (a display; not a resource)."""
HOSPITAL_MEDICAL = "Regional Medical Center, Medical Ward"
"""Where the practice's patients are admitted for medical conditions (a display)."""


class Deliveries:
    """Each ended pregnancy's outcome: a delivery admission or a pregnancy loss.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> stays = [x for x in of("Encounter") if x["class"]["code"] == "IMP"]
    >>> len(stays) > 0, all(x["type"][0]["text"].startswith("Admission for delivery") for x in stays)
    (True, True)
    """

    name = "deliveries"

    def __init__(self, eng: Any, side: SideRng) -> None:
        self.eng = eng
        self.side = side
        self.d = eng.content.clinical_ma.delivery

    def finish(self, ctx: RecordContext, st: PatientState) -> None:
        """Document the outcome of every pregnancy that ended before the record's end.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="ob-gyn")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> born = [c for c in of("Condition") if c["code"]["coding"][0]["display"] == "Single live birth"]
        >>> stays = [x for x in of("Encounter") if x["class"]["code"] == "IMP"]
        >>> len(born) == len(stays) > 0
        True
        """
        rng = self.side.of(ctx)
        for lmp, end_day, outcome in sorted(st.pregnancies):
            if end_day >= st.end or lmp not in st.pregnancy_ids:
                continue  # still pregnant at the end of the record, or never seen in the clinic
            week = (end_day - lmp) // 7
            saved = ctx.encounter, ctx.when, ctx.day, ctx.security
            ctx.day = end_day
            if outcome == "loss":
                self._loss(ctx, st, end_day, rng)
            else:
                self._delivery(ctx, st, end_day, week, rng)
            ctx.encounter, ctx.when, ctx.day, ctx.security = saved

    def _delivery(
        self, ctx: RecordContext, st: PatientState, day: int, week: int, rng: Any
    ) -> None:
        eng, d = self.eng, self.d
        cesarean = rng.random() < d.cesarean_share
        stay = d.stay_days_cesarean if cesarean else d.stay_days_vaginal
        start = instant(day, 6 * 60 + rng.randrange(14 * 60), eng.offset)
        end = instant(day + stay, 11 * 60, eng.offset)
        enc_id = f"{ctx.base}-enc-{ctx.counters.get('enc', 0)}"
        ctx.encounter, ctx.when = FrozenDict(reference=f"Encounter/{enc_id}"), start
        main = d.term_icd10 if week >= d.term_week else d.preterm_icd10
        refs = []
        body = []
        for code in (main, d.outcome_icd10):
            cond = conditions.condition(
                ctx,
                code=eng.icd_cc(code),
                category=ENCOUNTER_DX,
                onset=iso_date(day),
                recorder=f"Practitioner/{st.pcp}",
                security=None,
                abatement=iso_date(day + stay) if day + stay < st.end else None,
            )
            body.append(cond)
            refs.append(f"Condition/{cond['id']}")
        how = "cesarean" if cesarean else "vaginal"
        enc = admission(
            ctx,
            start=start,
            end=end,
            type_text=f"Admission for delivery ({how})",
            attender=f"Practitioner/{st.pcp}",
            diagnoses=refs,
            hospital=HOSPITAL,
        )
        assert enc["id"] == enc_id
        ctx.add(enc)
        ctx.out.extend(body)
        text = (
            f"Discharge summary. Admitted {iso_date(day)} at {week} weeks' gestation in labor; "
            f"{how} delivery of a single liveborn infant ({main}, {d.outcome_icd10}). "
            f"Postpartum course uncomplicated. Discharged home {iso_date(day + stay)}; "
            "postpartum visit in the clinic in 4-6 weeks."
        )
        discharge_summary(ctx, eng, f"Practitioner/{st.pcp}", text, end)

    def _loss(self, ctx: RecordContext, st: PatientState, day: int, rng: Any) -> None:
        eng, d = self.eng, self.d
        day = eng.practice.open_day(day)
        if day >= st.end:
            return
        slots = eng.practice.starts(day, 30)  # a 30-minute visit in open hours, off lunch
        if not slots:
            return
        minute = slots[rng.randrange(len(slots))]
        start, end = instant(day, minute, eng.offset), instant(day, minute + 30, eng.offset)
        enc_id = f"{ctx.base}-enc-{ctx.counters.get('enc', 0)}"
        ctx.encounter, ctx.when = FrozenDict(reference=f"Encounter/{enc_id}"), start
        cond = conditions.condition(
            ctx,
            code=eng.icd_cc(d.loss_icd10),
            category=ENCOUNTER_DX,
            onset=iso_date(day),
            recorder=f"Practitioner/{st.pcp}",
            security=None,
            abatement=iso_date(day + 14) if day + 14 < st.end else None,
        )
        enc = encounter.encounter(
            ctx,
            start=start,
            end=end,
            type_cc={"text": "Office visit: early pregnancy loss"},
            physician=f"Practitioner/{st.pcp}",
            assistant=f"Practitioner/{eng.practice.assistants[0]}"
            if eng.practice.assistants
            else f"Practitioner/{st.pcp}",
            organization=eng.org_ref,
            location=eng.loc_ref,
            diagnoses=[f"Condition/{cond['id']}"],
            reason=None,
        )
        assert enc["id"] == enc_id
        ctx.add(enc)
        ctx.add(cond)


def discharge_summary(ctx: RecordContext, eng: Any, author: str, text: str, end: str) -> None:
    """Add the admission's discharge summary (LOINC 18842-5) to the record.

    >>> import random
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> discharge_summary(c, e, "Practitioner/d", "Home.", "t2"); c.out[-1]["type"]["coding"][0]["code"]
    '18842-5'
    """
    ctx.add(
        notes.note(
            ctx,
            text=text,
            title="Discharge summary",
            author=author,
            custodian=eng.org_ref,
            period_end=end,
        )
    )
    ctx.out[-1]["type"] = eng.cat.observation_codes["18842-5"]


class Admissions:
    """Hospital stays for exacerbations of chronic conditions (content rates)."""

    name = "admissions"

    def __init__(self, eng: Any, side: SideRng) -> None:
        self.eng = eng
        self.side = side
        self.rows = [
            a for a in eng.content.clinical_ma.admission if a.condition in eng.cat.conditions
        ]

    def finish(self, ctx: RecordContext, st: PatientState) -> None:
        """Draw and document the admissions of each diagnosed condition that has a rate."""
        rng = self.side.of(ctx)
        eng = self.eng
        busy: set[int] | None = None
        for row in self.rows:
            dx = st.profile.diagnoses.get(row.condition)
            cid = st.cond_ids.get(row.condition)
            if dx is None or cid is None:
                continue
            if busy is None:  # days with an office visit: not spent in hospital
                busy = {
                    _ordinal(r["period"]["start"])
                    for r in ctx.out
                    if r["resourceType"] == "Encounter"
                }
            day = dx.recorded + 30
            last = min(st.end, dx.until, eng.ref)
            while True:
                day += int(rng.expovariate(row.rate_per_year) * 365.25) + 1
                stay = rng.randint(*row.stay_days) if row.setting == "inpatient" else 0
                if day + stay >= last:
                    break
                if any(d in busy for d in range(day, day + stay + 1)):
                    continue  # the patient was seen in the office then: no stay
                busy.update(range(day, day + stay + 1))
                saved = ctx.encounter, ctx.when, ctx.day, ctx.security
                self._stay(ctx, st, row, cid, day, stay, rng)
                ctx.encounter, ctx.when, ctx.day, ctx.security = saved
                day += stay

    def _stay(
        self,
        ctx: RecordContext,
        st: PatientState,
        row: Any,
        cid: str,
        day: int,
        stay: int,
        rng: Any,
    ) -> None:
        eng = self.eng
        emergency = row.setting == "emergency"
        arrive = 8 * 60 + rng.randrange(14 * 60)
        start = instant(day, arrive, eng.offset)
        if emergency:  # treated and released the same day
            end = instant(day, min(arrive + 60 * rng.randint(*row.stay_hours), 1439), eng.offset)
        else:
            end = instant(day + stay, 11 * 60, eng.offset)
        enc_id = f"{ctx.base}-enc-{ctx.counters.get('enc', 0)}"
        ctx.encounter, ctx.when, ctx.day = FrozenDict(reference=f"Encounter/{enc_id}"), start, day
        display = eng.cat.conditions[row.condition].display
        enc = admission(
            ctx,
            start=start,
            end=end,
            type_text=f"{'Emergency department visit' if emergency else 'Admission'}: {row.reason}",
            attender=f"Practitioner/{st.pcp}",
            diagnoses=[f"Condition/{cid}"],
            hospital=HOSPITAL_MEDICAL,
            emergency=emergency,
        )
        enc["reasonCode"] = [{"text": row.reason}]
        ctx.add(enc)
        if emergency:
            discharge_summary(
                ctx,
                eng,
                f"Practitioner/{st.pcp}",
                f"Emergency department visit {iso_date(day)} for {row.reason} ({display}). "
                "Treated and released home the same day; follow-up in the clinic within a week.",
                end,
            )
            return
        discharge_summary(
            ctx,
            eng,
            f"Practitioner/{st.pcp}",
            f"Discharge summary. Admitted {iso_date(day)} with {row.reason} ({display}). "
            f"Treated and stabilised; discharged home {iso_date(day + stay)} on the home "
            "medication list. Follow-up in the clinic within 7-14 days.",
            end,
        )


class RefillRequests:
    """A pharmacy refill request (Task) before every renewal authorised between visits.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> [s.name for s in e.record_steps]
    ['deliveries', 'admissions', 'refill-requests']
    >>> {t["code"]["coding"][0]["code"] for t in of("Task")}
    {'fulfill'}
    """

    name = "refill-requests"

    def __init__(self, eng: Any, side: SideRng) -> None:
        self.eng = eng
        self.side = side
        self.minutes = eng.content.clinical_ma.refills.request_minutes

    def finish(self, ctx: RecordContext, st: PatientState) -> None:
        """Add the request for each renewal without an encounter.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> tasks = of("Task")
        >>> len(tasks) > 0 and all(t["focus"]["reference"].startswith("MedicationRequest/") for t in tasks)
        True
        """
        rng = self.side.of(ctx)
        lo, hi = self.minutes
        saved = ctx.when
        for mr in st.renewals:  # renewals without an encounter (prescribing.renew_between_visits)
            authored = mr["authoredOn"]
            day = _ordinal(authored)
            requested = instant(day, rng.randint(lo, hi), self.eng.offset)
            ctx.when = authored
            ctx.add(
                refill_task(
                    ctx,
                    renewal=f"MedicationRequest/{mr['id']}",
                    prior=mr["priorPrescription"]["reference"],
                    owner=mr["requester"]["reference"],
                    requested=requested,
                    drug=mr["medicationCodeableConcept"].get("text", ""),
                    security=labels_of(mr),
                )
            )
        ctx.when = saved


def _ordinal(text: str) -> int:
    """Ordinal day of an ISO date or instant.

    >>> _ordinal("2025-01-02T15:00:00-05:00") - _ordinal("2025-01-01")
    1
    """
    return date.fromisoformat(text[:10]).toordinal()
