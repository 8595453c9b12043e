"""Visit step: book the visit (time inside open hours, clinician who sees the patient's age,
missed appointments that preceded it) and write the fulfilled Appointment.

>>> Booking.name
'booking'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import encounter
from synthetic.context import RecordContext
from synthetic.dates import instant
from synthetic.visit.state import PatientState, VisitState


def merge_security(
    a: tuple[dict[str, str], ...] | None, b: tuple[dict[str, str], ...] | None
) -> tuple[dict[str, str], ...] | None:
    """The combined security labels of two label tuples (highest confidentiality wins).

    >>> merge_security(None, None) is None
    True
    """
    from synthetic.labels import CONF_R

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
    """Appointment time, clinician and the missed appointments before it."""

    name = "booking"

    def __init__(self, eng: Any) -> None:
        self.eng = eng

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Fill the visit's time, clinician and reasons; add the Appointment."""
        eng = self.eng
        rng = ctx.rng
        cat = eng.cat
        v = vs.v
        day = vs.day
        vs.tcode = tcode = eng.appointment_type(v.kind)
        vs.atype = eng.types[tcode]
        vs.minutes = minutes = vs.atype.minutes
        starts = eng.practice.starts(day, minutes)
        vs.minute = minute = starts[rng.randrange(len(starts))]
        vs.start_s = instant(day, minute, eng.offset)
        vs.end_s = instant(day, minute + minutes, eng.offset)
        fit = eng.practice.clinicians_for(vs.age)
        own = st.pcp in fit and rng.random() < eng.rates.see_own_pcp
        vs.physician = st.pcp if own else fit[rng.randrange(len(fit))]
        assistants = eng.practice.assistants
        assistant = assistants[rng.randrange(len(assistants))]
        vs.phys_ref, vs.ma_ref = f"Practitioner/{vs.physician}", f"Practitioner/{assistant}"
        cov = st.coverage_on(day)
        if cov is not None:
            vs.cov_id, vs.payer = cov

        # no-shows and cancellations of planned visits come before the visit that replaced them
        if v.kind != "acute" and not st.first:
            if rng.random() < eng.practice_no_show():
                self._missed(ctx, st, "noshow", day, tcode)
            elif rng.random() < eng.practice_cancel():
                self._missed(ctx, st, "cancelled", day, tcode)

        vs.acute = cat.conditions[v.acute] if v.acute else None
        vs.preg = cat.conditions[v.pregnancy] if v.pregnancy else None
        vs.addressed = [cat.conditions[k] for k in v.conditions]
        security = None
        for c in vs.addressed + ([vs.acute] if vs.acute else []) + ([vs.preg] if vs.preg else []):
            security = merge_security(security, c.security)
        vs.security = ctx.security = security
        acute = vs.acute
        reason_text = acute.reason if acute else (vs.addressed[0].display if vs.addressed else None)
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
        )
        ctx.add(apt)
        ctx.encounter = {"reference": f"Encounter/{ctx.base}-enc-{ctx.counters.get('enc', 0)}"}
        ctx.when = vs.start_s
        ctx.day = day
        ctx.performer = [{"reference": vs.ma_ref}]
        vs.appointment_id = apt["id"]

    def _missed(
        self, ctx: RecordContext, st: PatientState, status: str, day: int, tcode: str
    ) -> None:
        eng = self.eng
        rng = ctx.rng
        missed = eng.practice.open_day(day - 7 - rng.randrange(21))
        if missed >= day or missed <= st.birth:
            return
        minutes = eng.types[tcode].minutes
        starts = eng.practice.starts(missed, minutes)
        minute = starts[rng.randrange(len(starts))]
        ctx.add(
            encounter.appointment(
                ctx,
                status=status,
                start=instant(missed, minute, eng.offset),
                end=instant(missed, minute + minutes, eng.offset),
                minutes=minutes,
                type_cc=eng.type_cc[tcode],
                practitioner=f"Practitioner/{st.pcp}",
                location=eng.loc_ref,
                reason=None,
            )
        )
