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

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from synthetic.context import RecordContext
from synthetic.dates import DAYS_PER_YEAR, instant, iso_date
from synthetic.frozen import FrozenDict, freeze
from synthetic.labels import meta
from synthetic.systems import SANDBOX_PORTAL_TOPIC, TASK_CODE
from synthetic.timeline import poisson
from synthetic.visit.state import PatientState

TOPIC_SYSTEM = SANDBOX_PORTAL_TOPIC
"""The portal topic code system (as ``ehr_sandbox.workflows.portal``)."""

_DAY_MINUTES = 24 * 60
_TASK_CODE = freeze({"coding": [{"system": TASK_CODE, "code": "fulfill"}]})
_HELD = frozenset({"R", "V"})
_COMMUNICATION_META = meta("Communication")  # shared by every message (frozen, see labels.meta)


@cache
def release_policy() -> dict[str, Any]:
    """Result release and forwarding policy (``synthetic/content/data/portal_release.toml``).

    >>> release_policy()["release_delay_minutes"]
    0
    """
    text = (resources.files("synthetic.content") / "data" / "portal_release.toml").read_text(
        "utf-8"
    )
    return tomllib.loads(text)


@cache
def routing() -> dict[str, Any]:
    """The portal inbox routing shared with the workflows (``synthetic/content/data/portal.toml``).

    >>> routing()["reply_within_hours"]
    24
    """
    text = (resources.files("synthetic.content") / "data" / "portal.toml").read_text("utf-8")
    return tomllib.loads(text)


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
        self.forwarded = frozenset(
            x["code"] for x in routing()["topic"] if x["pool"] == "ma" and not x["ma_may_answer"]
        )
        self.released = freeze(
            [
                {
                    "coding": [
                        {"system": TOPIC_SYSTEM, "code": "results", "display": "Result released"}
                    ]
                }
            ]
        )
        self.category = {
            t.code: freeze(  # shared by many resources (see synthetic.frozen)
                [{"coding": [{"system": TOPIC_SYSTEM, "code": t.code, "display": t.display}]}]
            )
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
        self._releases(ctx, adult, end)
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

    def _releases(self, ctx: RecordContext, adult: int, end: int) -> None:
        """Release notices for the portal user's final results issued in ``[adult, end)``,
        at the moment each is issued (Cures Act), restricted ones held for the clinician."""
        policy = release_policy()
        first, last = iso_date(adult), iso_date(end)
        eng = self.eng
        reports = [
            r
            for r in ctx.out
            if r["resourceType"] == "DiagnosticReport"
            and r.get("status") == "final"
            and first <= r.get("issued", "")[:10] < last
        ]
        for r in reports:
            labels = r["meta"].get("security") or ()
            if policy["hold_restricted"] and any(x.get("code") in _HELD for x in labels):
                continue
            ctx.out.append(
                {
                    "resourceType": "Communication",
                    "id": ctx.new_id("msg"),
                    "meta": _COMMUNICATION_META,
                    "status": "completed",
                    "category": self.released,
                    "subject": ctx.subject,
                    "about": [{"reference": f"DiagnosticReport/{r['id']}"}],
                    "sent": r["issued"],
                    "sender": {"reference": eng.org_ref},
                    "recipient": [ctx.subject],
                    "payload": [{"contentString": policy["text"]}],
                }
            )

    def _forward(
        self,
        ctx: RecordContext,
        st: PatientState,
        msg: dict[str, Any],
        day: int,
        minute: int,
        replied: bool,
    ) -> None:
        """The MA's forward of a message that needs the provider (a ``Task`` for the PCP)."""
        policy = release_policy()
        eng = self.eng
        mas = eng.practice.staff_on("medical_assistant", day)
        if not mas or not st.pcp:
            return
        at = minute + policy["forward_after_minutes"]
        due = day * _DAY_MINUTES + minute + 60 * routing()["reply_within_hours"]
        ctx.out.append(
            {
                "resourceType": "Task",
                "id": ctx.new_id("fwd"),
                "meta": meta("Task"),
                "status": "completed" if replied else "requested",
                "intent": "order",
                "priority": "routine",
                "code": _TASK_CODE,
                "description": f"Portal message forwarded to the provider: {msg['topic']['text']}",
                "focus": {"reference": f"Communication/{msg['id']}"},
                "for": ctx.subject,
                "authoredOn": instant(day, at, eng.offset),
                "requester": {"reference": f"Practitioner/{mas[day % len(mas)]}"},
                "owner": {"reference": f"Practitioner/{st.pcp}"},
                "restriction": {"period": {"end": instant(*divmod(due, _DAY_MINUTES), eng.offset)}},
            }
        )

    def _thread(self, ctx: RecordContext, st: PatientState, t: Any, day: int, minute: int) -> None:
        rng = ctx.rng
        rates = self.rates
        eng = self.eng
        msg = {
            "resourceType": "Communication",
            "id": ctx.new_id("msg"),
            "meta": _COMMUNICATION_META,
            "status": "completed",
            "category": self.category[t.code],
            "subject": ctx.subject,
            "topic": FrozenDict(text=t.display or t.code),  # shared with the reply
            "sent": instant(day, minute, eng.offset),
            "sender": ctx.subject,
            "recipient": [{"reference": eng.org_ref}],
            "payload": [{"contentString": t.texts[rng.randrange(len(t.texts))]}],
        }
        ctx.out.append(msg)
        lo, hi = rates.late_hours if rng.random() < rates.late_share else rates.reply_hours
        at = day * _DAY_MINUTES + minute + 60 * (lo + rng.randrange(max(1, hi - lo + 1)))
        r_day, r_minute = divmod(at, _DAY_MINUTES)
        if t.code in self.forwarded:  # in the MA pool but outside its scope: to the provider
            self._forward(ctx, st, msg, day, minute, r_day < st.end)
        if r_day >= st.end:
            return  # still open in the inbox at the end of the record
        if t.reply_role == "physician" and st.pcp:
            who = [st.pcp]
        else:
            who = eng.practice.staff_on(t.reply_role, r_day)
        if not who:
            return
        ctx.out.append(
            {
                "resourceType": "Communication",
                "id": ctx.new_id("msg"),
                "meta": _COMMUNICATION_META,
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
