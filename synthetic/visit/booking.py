"""Visit step: book the visit (time inside open hours, clinician who sees the patient's age,
missed appointments that preceded it) and write the fulfilled Appointment.

>>> Booking.name
'booking'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import encounter
from synthetic.builders.common import shared_ref
from synthetic.context import RecordContext
from synthetic.dates import CLOCK, iso_date
from synthetic.frozen import FrozenDict, FrozenList
from synthetic.labels import CONF_R
from synthetic.visit.scheduling import busy_slots, slot_refs
from synthetic.visit.state import PatientState, VisitState


def merge_security(
    a: tuple[dict[str, str], ...] | None, b: tuple[dict[str, str], ...] | None
) -> tuple[dict[str, str], ...] | None:
    """The combined security labels of two label tuples (highest confidentiality wins).

    >>> merge_security(None, None) is None
    True
    """
    if a is None:
        return b
    if b is None:
        return a
    codes: dict[str, dict[str, str]] = {}
    conf = a[0] if a[0]["code"] >= b[0]["code"] and a[0]["code"] != "N" else b[0]
    for s in a[1:] + b[1:]:
        codes[s["code"]] = s
    if conf["code"] not in ("R", "V"):
        conf = CONF_R
    return (conf, *(codes[k] for k in sorted(codes)))


class Booking:
    """Appointment time, clinician and the missed appointments before it.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> [s.name for s in e.steps].index("booking")  # the first step of every visit
    0
    >>> {a["status"] for a in of("Appointment")} >= {"fulfilled", "booked"}
    True
    """

    name = "booking"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self._performers: dict[str, list[dict[str, str]]] = {}

    def _performer(self, who: str) -> list[dict[str, str]]:
        """The visit's ``performer`` list (the assistant), one frozen list per staff member."""
        hit = self._performers.get(who)
        if hit is None:
            hit = FrozenList((shared_ref(who),))
            if len(self._performers) < 10_000:
                self._performers[who] = hit
        return hit

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Fill the visit's time, clinician and reasons; add the Appointment.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> amb = [x for x in of("Encounter") if x["class"]["code"] == "AMB"]
        >>> all(x["appointment"][0]["reference"].startswith("Appointment/") for x in amb)
        True
        """
        eng = self.eng
        rng = ctx.rng
        cat = eng.cat
        v = vs.v
        day = vs.day
        vs.virtual = v.virtual and not st.first  # a new patient is first seen in person
        plan = v.plan
        if plan is None:  # a visit the schedule never saw (a step added by hand): plan it now
            from synthetic.schedule import Book
            from synthetic.visit.scheduling import place, plan_visits

            place(Book(eng.practice), plan_visits(eng, rng, [v], st.pcp, st.birth, 365.25))
            plan = v.plan
        placed = v.placed
        vs.tcode = tcode = plan.tcode
        vs.atype = eng.types[tcode]
        vs.minutes = minutes = plan.minutes
        vs.minute = minute = placed.minute
        date = iso_date(day)  # start and end are instants of this day (see dates.instant)
        vs.start_s = date + CLOCK[minute] + eng.offset
        vs.end_s = date + CLOCK[minute + minutes] + eng.offset
        vs.physician = placed.provider
        assistants = eng.practice.assistants
        assistant = assistants[rng.randrange(len(assistants))]
        vs.phys_ref, vs.ma_ref = f"Practitioner/{vs.physician}", f"Practitioner/{assistant}"
        cov = st.coverage_on(day)
        if cov is not None:
            vs.cov_id, vs.payer = cov

        # no-shows and cancellations of planned visits come before the visit that replaced them
        if plan.missed is not None and plan.missed_placed is not None:
            self._missed(ctx, plan.missed, plan.missed_day, plan.missed_placed, tcode, minutes)

        conds = cat.conditions
        vs.acute = acute = conds[v.acute] if v.acute else None
        vs.preg = preg = conds[v.pregnancy] if v.pregnancy else None
        vs.addressed = list(map(conds.__getitem__, v.conditions)) if v.conditions else []
        security = None
        for c in vs.addressed:
            if c.security is not None:  # merging None keeps the labels as they are
                security = merge_security(security, c.security)
        for c in (acute, preg):
            if c is not None and c.security is not None:
                security = merge_security(security, c.security)
        vs.security = ctx.security = security
        reason_text = acute.reason if acute else (vs.addressed[0].display if vs.addressed else None)
        slots = busy_slots(eng, day, placed)
        ctx.out.extend(slots)
        apt = encounter.appointment(
            ctx,
            status="fulfilled",
            start=vs.start_s,
            end=vs.end_s,
            minutes=minutes,
            type_cc=eng.type_cc[tcode],
            practitioner=vs.phys_ref,
            location=eng.loc_ref,
            reason=None if security else reason_text,
            # an open-access slot is only booked the day itself
            created=date if placed.category == "open-access" else None,
        )
        apt["slot"] = slot_refs(slots)
        ctx.out.append(apt)
        # shared by the visit's resources: frozen (see synthetic.frozen)
        ctx.encounter = FrozenDict(
            reference=f"Encounter/{ctx.base}-enc-{ctx.counters.get('enc', 0)}"
        )
        ctx.when = vs.start_s
        ctx.day = day
        ctx.performer = self._performers.get(vs.ma_ref) or self._performer(vs.ma_ref)
        vs.appointment_id = apt["id"]

    def _missed(
        self, ctx: RecordContext, status: str, day: int, placed: Any, tcode: str, minutes: int
    ) -> None:
        eng = self.eng
        date = iso_date(day)  # start and end are instants of this day (see dates.instant)
        apt = encounter.appointment(
            ctx,
            status=status,
            start=date + CLOCK[placed.minute] + eng.offset,
            end=date + CLOCK[placed.minute + minutes] + eng.offset,
            minutes=minutes,
            type_cc=eng.type_cc[tcode],
            practitioner=f"Practitioner/{placed.provider}",
            location=eng.loc_ref,
            reason=None,
        )
        if status == "noshow":  # the slot stayed held; a cancelled one was freed for others
            slots = busy_slots(eng, day, placed)
            ctx.out.extend(slots)
            apt["slot"] = slot_refs(slots)
        ctx.out.append(apt)
