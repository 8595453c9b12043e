"""Patient portal messages: an adult portal user's secure messages by topic and the staff's
replies, as ``ehr_sandbox.workflows.portal`` writes them (``Communication`` with a topic,
routed to a pool; the reply linked with ``inResponseTo``, from a member of the pool employed
that day). Rates, topics, texts and reply times are content (``rules.toml [portal]``).

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=3, population="family-practice")
>>> msgs = [r for i in range(40) for r in e.patient(i).by_type("Communication")]
>>> any("inResponseTo" in m for m in msgs) and any("inResponseTo" not in m for m in msgs)
True
"""

from __future__ import annotations

from typing import Any

from synthetic.context import RecordContext
from synthetic.dates import DAYS_PER_YEAR, instant
from synthetic.labels import meta
from synthetic.timeline import poisson
from synthetic.visit.state import PatientState

TOPIC_SYSTEM = "http://ehr-sandbox.org/CodeSystem/portal-topic"
"""The portal topic code system (as ``ehr_sandbox.workflows.portal``)."""

_DAY_MINUTES = 24 * 60


class PortalInbox:
    """Writes a patient's portal messages and the replies (see the module text).

    >>> from synthetic.engine import engine_for
    >>> p = PortalInbox(engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice"))
    >>> round(sum(w for _, w in p.topics), 6)
    1.0
    """

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.rates = eng.rules.portal
        self.topics = [(t, t.share) for t in self.rates.topic]
        self.category = {
            t.code: [{"coding": [{"system": TOPIC_SYSTEM, "code": t.code, "display": t.display}]}]
            for t in self.rates.topic
        }

    def _topic(self, rng: Any) -> Any:
        x = rng.random() * sum(w for _, w in self.topics)
        for t, w in self.topics:
            x -= w
            if x < 0:
                return t
        return self.topics[-1][0]

    def write(
        self, ctx: RecordContext, st: PatientState, visit_days: list[int], start: int
    ) -> None:
        """Add the patient's messages in ``[start, end)`` (adults who use the portal).

        >>> callable(PortalInbox.write)
        True
        """
        rates = self.rates
        if not self.topics:
            return
        rng = ctx.rng
        adult = max(start, st.birth + int(rates.min_age * DAYS_PER_YEAR))
        end = st.end
        if adult >= end or rng.random() >= rates.active_share:
            return
        n = poisson(rng, rates.messages_per_year * (end - adult) / DAYS_PER_YEAR)
        after = [d for d in visit_days if d >= adult and d + 1 < end]
        for _ in range(n):
            t = self._topic(rng)
            if t.after_visit:
                if not after:
                    continue
                day = min(end - 1, after[rng.randrange(len(after))] + 1 + rng.randrange(5))
            else:
                day = adult + rng.randrange(end - adult)
            minute = 7 * 60 + rng.randrange(15 * 60)
            self._thread(ctx, st, t, day, minute)

    def _thread(self, ctx: RecordContext, st: PatientState, t: Any, day: int, minute: int) -> None:
        rng = ctx.rng
        rates = self.rates
        eng = self.eng
        msg = {
            "resourceType": "Communication",
            "id": ctx.new_id("msg"),
            "meta": meta("Communication"),
            "status": "completed",
            "category": self.category[t.code],
            "subject": ctx.subject,
            "topic": {"text": t.display or t.code},
            "sent": instant(day, minute, eng.offset),
            "sender": ctx.subject,
            "recipient": [{"reference": eng.org_ref}],
            "payload": [{"contentString": t.texts[rng.randrange(len(t.texts))]}],
        }
        ctx.add(msg)
        lo, hi = rates.late_hours if rng.random() < rates.late_share else rates.reply_hours
        at = day * _DAY_MINUTES + minute + 60 * (lo + rng.randrange(max(1, hi - lo + 1)))
        r_day, r_minute = divmod(at, _DAY_MINUTES)
        if r_day >= st.end:
            return  # still open in the inbox at the end of the record
        if t.reply_role == "physician" and st.pcp:
            who = [st.pcp]
        else:
            who = eng.practice.staff_on(t.reply_role, r_day)
        if not who:
            return
        ctx.add(
            {
                "resourceType": "Communication",
                "id": ctx.new_id("msg"),
                "meta": meta("Communication"),
                "status": "completed",
                "inResponseTo": [{"reference": f"Communication/{msg['id']}"}],
                "category": msg["category"],
                "subject": ctx.subject,
                "topic": msg["topic"],
                "sent": instant(r_day, r_minute, eng.offset),
                "sender": {"reference": f"Practitioner/{who[rng.randrange(len(who))]}"},
                "recipient": [ctx.subject],
                "payload": [{"contentString": t.replies[rng.randrange(len(t.replies))]}],
            }
        )
