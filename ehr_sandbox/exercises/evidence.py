"""What a workflow's stamp is worth to a grader: nothing by itself.

Workflow operations tag each version they write with ``meta.tag`` system
:data:`~ehr_sandbox.workflows.base.OPERATION_TAG` (``claims.submit``, ``scheduling.book``...).
Anyone who writes a record writes its tags: a plain ``session.create`` / ``update`` in-process,
or a PUT over the classroom server's REST API, can carry the same tag. On the server the
workflows run in the student's process and reach the record through those same REST writes, so
no write pipeline can tell a workflow's write from a hand-typed one: the stamp cannot be made
unforgeable there, and a grade must not rest on it.

So a grader asks :func:`done_by`, never the raw tag. It returns the stamped operation only
when the record itself shows what that operation guarantees, re-checked from the versions
written, the versions they replaced and the audit trail (a claim scrubs clean, a booking's
Slot was free and is held, a posted ERA balances, a no-show was marked after the start
time...). A stamp with no verifier here is never vouched for (fail closed). A student who
does by hand exactly what the workflow does gets the same record, and the same grade.

Payer answers are the same kind of thing: the payer simulator
(:mod:`ehr_sandbox.workflows.payer`) answers and the practice's workflow stores the answer,
so a student can store an answer the payer never gave. :func:`payer_answered` accepts a
stored CoverageEligibilityResponse only when it is what the simulator answers to its request.

>>> stamp({"meta": {"tag": [{"system": OPERATION_TAG, "code": "claims.submit"}]}})
'claims.submit'
>>> sorted(VERIFIERS)[:3]
['claims.submit', 'fees.publish', 'payments.post-era']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.workflows.base import OPERATION_TAG, operation_of

__all__ = [
    "OPERATION_TAG",
    "VERIFIERS",
    "done_by",
    "payer_answered",
    "prior_version",
    "stamp",
    "vouched",
]

Verifier = Callable[[Any, dict[str, Any]], str | None]
"""``(grading context, version) -> None`` when the version shows the operation's guarantee,
else what is missing."""


def stamp(version: Mapping[str, Any]) -> str | None:
    """The operation a version *claims* to be written by (its tag; anyone can type it).

    >>> stamp({"meta": {}}) is None
    True
    """
    return operation_of(dict(version))


def _at(version: Mapping[str, Any]) -> datetime | None:
    from ehr_sandbox.exercises.grading import GradingContext

    return GradingContext.written_at(version)


def _ref(version: Mapping[str, Any]) -> str:
    return f"{version.get('resourceType')}/{version.get('id')}"


def prior_version(ctx: Any, ref: str, version: Mapping[str, Any]) -> dict[str, Any] | None:
    """The version of ``ref`` that was current just before ``version`` was written (by the
    EHR's write clock, ``meta.lastUpdated``), or None when ``ref`` did not exist yet.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> h = [{"meta": {"versionId": "2", "lastUpdated": "2026-01-05T09:00:00+00:00"}},
    ...      {"meta": {"versionId": "1", "lastUpdated": "2026-01-05T08:00:00+00:00"}}]
    >>> ctx = NS(history=lambda ref: h)
    >>> prior_version(ctx, "Slot/s", {"meta": {"lastUpdated": "2026-01-05T08:30:00+00:00"}})["meta"]["versionId"]
    '1'
    >>> prior_version(ctx, "Slot/s", {"meta": {"lastUpdated": "2026-01-05T07:00:00+00:00"}}) is None
    True
    """
    when = _at(version)
    if when is None:
        return None
    older = [v for v in ctx.history(ref) if (_at(v) or when) < when]
    older.sort(key=lambda v: _at(v) or when)
    return older[-1] if older else None


def _later(ctx: Any, ref: str, version: Mapping[str, Any]) -> list[dict[str, Any]]:
    when = _at(version)
    return [v for v in ctx.history(ref) if when is not None and (_at(v) or when) > when]


def _written_with(ctx: Any, version: Mapping[str, Any], ref: str) -> dict[str, Any] | None:
    """The version of ``ref`` written right after ``version``, in the same unit of work (no
    other record written in between, only the Provenance of each), or None."""
    feed = ctx.versions_since_setup()
    key = (_ref(version), (version.get("meta") or {}).get("versionId"))
    idx = next(
        (i for i, x in enumerate(feed) if (_ref(x), (x.get("meta") or {}).get("versionId")) == key),
        None,
    )
    if idx is None:
        return None
    for x in feed[idx + 1 :]:
        if _ref(x) == ref:
            return x
        if x.get("resourceType") != "Provenance":
            return None
    return None


def _start(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# ----------------------------------------------------------------------------- verifiers
def _claims_submit(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows.scrubber import scrub

    if v.get("resourceType") != "Claim" or v.get("status") != "active":
        return "not a sent Claim"
    findings = scrub(ctx.session, v)
    if findings:
        return f"sent with {len(findings)} scrubber finding(s): {findings[0]}"
    return None


def _slot_of(ctx: Any, v: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    slots = [s.get("reference") for s in v.get("slot", []) if s.get("reference")]
    if not slots:
        return None, None
    return slots[0], prior_version(ctx, slots[0], v)


def _booking(ctx: Any, v: dict[str, Any], allowed: tuple[str, ...]) -> str | None:
    if v.get("resourceType") != "Appointment" or v.get("status") != "booked":
        return "not a booked Appointment"
    ref, before = _slot_of(ctx, v)
    if ref is None or before is None:
        return "no Slot of the schedule behind the appointment"
    if before.get("status") not in allowed:
        return f"{ref} was {before.get('status')} when the appointment was written"
    if (before.get("start"), before.get("end")) != (v.get("start"), v.get("end")):
        return f"the appointment's times are not {ref}'s"
    start, when = _start(before.get("start")), _at(v)
    if start is None or when is None or start <= when:
        return f"{ref} had already started when it was booked"
    nxt = _written_with(ctx, v, ref)
    if nxt is None or nxt.get("status") not in ("busy", "busy-overbooked"):
        return f"{ref} was not marked busy with the booking: the slot is not held"
    return None


def _book(ctx: Any, v: dict[str, Any]) -> str | None:
    return _booking(ctx, v, ("free",))


def _double_book(ctx: Any, v: dict[str, Any]) -> str | None:
    return _booking(ctx, v, ("free", "busy", "busy-overbooked"))


def _transition(
    ctx: Any, v: dict[str, Any], rtype: str, to: str, frm: str
) -> tuple[str | None, dict[str, Any] | None]:
    if v.get("resourceType") != rtype or v.get("status") != to:
        return f"not an {rtype} set to {to}", None
    before = prior_version(ctx, _ref(v), v)
    if before is None or before.get("status") != frm:
        return f"{_ref(v)} was {(before or {}).get('status')}, not {frm}, before", None
    return None, before


def _no_show(ctx: Any, v: dict[str, Any]) -> str | None:
    problem, _ = _transition(ctx, v, "Appointment", "noshow", "booked")
    if problem:
        return problem
    start, when = _start(v.get("start")), _at(v)
    if start is None or when is None or when < start:
        return "marked a no-show before the appointment's start time"
    return None


def _check_in(ctx: Any, v: dict[str, Any]) -> str | None:
    problem, _ = _transition(ctx, v, "Appointment", "arrived", "booked")
    if problem:
        return problem
    start, when = _start(v.get("start")), _at(v)
    if start is None or when is None or when.astimezone(start.tzinfo).date() != start.date():
        return "checked in on another day than the appointment's"
    return None


def _recall(ctx: Any, v: dict[str, Any]) -> str | None:
    if v.get("resourceType") != "Appointment" or v.get("status") != "proposed":
        return "not a proposed Appointment"
    cats = {c.get("code") for s in v.get("serviceCategory", []) for c in s.get("coding", [])}
    if "recall" not in cats:
        return "not in the recall category"
    if not any((r.get("text") or "").strip() for r in v.get("reasonCode", [])):
        return "no reason for the recall"
    if not any(
        (p.get("actor") or {}).get("reference", "").startswith("Patient/")
        for p in v.get("participant", [])
    ):
        return "no patient to recall"
    due, when = (v.get("requestedPeriod") or [{}])[0].get("start"), _at(v)
    try:
        ok = when is not None and date.fromisoformat(str(due)[:10]) > when.date()
    except ValueError:
        ok = False
    return None if ok else f"due {due}: not a date after the day it was recorded"


def _post_era(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows.payments import check_balanced

    if v.get("resourceType") != "ClaimResponse":
        return "not a ClaimResponse"
    me = _ref(v)
    batch = [
        p
        for p in ctx.versions_since_setup()
        if p.get("resourceType") == "PaymentReconciliation"
        and stamp(p) == "payments.post-era"
        and any((d.get("response") or {}).get("reference") == me for d in p.get("detail", []))
    ]
    if not batch:
        return "no posted payment (PaymentReconciliation) pays this ClaimResponse"
    pr = batch[0]
    crs = []
    for d in pr.get("detail", []):
        r = (d.get("response") or {}).get("reference")
        if r and r.startswith("ClaimResponse/"):
            got = ctx.read(r) if r != me else v
            if got is not None:
                crs.append(got)
    try:
        check_balanced(crs, pr)
    except SandboxError as exc:
        return str(exc)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return "the posting does not add up"
    return None


def _fees_publish(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows import fees
    from ehr_sandbox.workflows.base import money

    if v.get("resourceType") != "ChargeItemDefinition" or v.get("status") != "active":
        return "not an active ChargeItemDefinition"
    try:
        for g in v.get("propertyGroup", []):
            for pc in g.get("priceComponent", []):
                c = pc["code"]["coding"][0]
                fees.check_key(fees.code_key(c["system"], c["code"]))
                if money(pc["amount"]) <= 0:
                    return f"a fee of {pc['amount']} for {c['code']}"
    except SandboxError as exc:
        return str(exc)
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
        return "a fee line without a code or an amount"
    ident = next(
        (
            i.get("value")
            for i in v.get("identifier", [])
            if i.get("system") == fees.FEE_SCHEDULE_SYSTEM
        ),
        None,
    )
    owner, _, year = str(ident).rpartition("-")
    if not owner or not year.isdigit():
        return "no fee-schedule identifier (owner-year)"
    prev = f"{owner}-{int(year) - 1}"
    for cid in ctx.all("ChargeItemDefinition"):
        if not any(i.get("value") == prev for i in cid.get("identifier", [])):
            continue
        ref = f"ChargeItemDefinition/{cid['id']}"
        before = prior_version(ctx, ref, v)
        retired = any(x.get("status") == "retired" for x in _later(ctx, ref, v))
        if before is not None and before.get("status") == "active" and not retired:
            return f"{ref} ({prev}) was left active: the new schedule does not replace it"
    return None


def _turnover_task(ctx: Any, t: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows import rooms

    if t.get("resourceType") != "Task" or t.get("status") != "completed":
        return "not a completed Task"
    room = (t.get("focus") or {}).get("reference", "")
    if not room.startswith("Location/"):
        return "the checklist names no room"
    done = {(o.get("type") or {}).get("text") for o in t.get("output", []) if o.get("valueBoolean")}
    missing = [i["text"] for i in rooms.table("rooms")["checklist"] if i["text"] not in done]
    if missing:
        return f"checklist items not done: {', '.join(missing)}"
    before = prior_version(ctx, room, t)
    if before is None or rooms.status_of(before) != "dirty":
        return f"{room} was {rooms.status_of(before) if before else 'absent'}, not dirty"
    return None


def _turnover(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows import rooms

    if v.get("resourceType") == "Task":
        return _turnover_task(ctx, v)
    if v.get("resourceType") != "Location" or rooms.status_of(v) != "ready":
        return "not a room set ready"
    before = prior_version(ctx, _ref(v), v)
    if before is None or rooms.status_of(before) != "dirty":
        return f"{_ref(v)} was not dirty before"
    when, since = _at(v), _at(before)
    tasks = [
        t
        for t in ctx.versions_since_setup()
        if t.get("resourceType") == "Task"
        and (t.get("focus") or {}).get("reference") == _ref(v)
        and since is not None
        and when is not None
        and since < (_at(t) or when) < when
        and _turnover_task(ctx, t) is None
    ]
    return None if tasks else "no completed turnover checklist between dirty and ready"


def _collect(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows.content import table

    if v.get("resourceType") != "Specimen":
        return "not a Specimen"
    coll = v.get("collection") or {}
    subject = (v.get("subject") or {}).get("reference")
    batch = [
        s
        for s in ctx.versions_since_setup()
        if s.get("resourceType") == "Specimen"
        and (s.get("meta") or {}).get("versionId") == "1"
        and (s.get("subject") or {}).get("reference") == subject
        and (s.get("collection") or {}).get("collectedDateTime") == coll.get("collectedDateTime")
    ]
    order_of = {t["cap"]: t["order"] for t in table("specimens")["tube"]}
    drawn: list[tuple[int, int]] = []
    for s in batch:
        box = (s.get("container") or [{}])[0]
        cap = str((box.get("type") or {}).get("text", "")).removesuffix(" evacuated tube")
        words = str(box.get("description", "")).split()
        try:
            n = int(words[words.index("drawn") + 1])
        except (ValueError, IndexError):
            return f"Specimen/{s.get('id')}: the tube's place in the draw is not recorded"
        if cap not in order_of:
            return f"Specimen/{s.get('id')}: not a tube the clinic draws"
        drawn.append((n, order_of[cap]))
    orders = [o for _, o in sorted(drawn)]
    if orders != sorted(orders):
        return "tubes not drawn in the CLSI order of draw"
    for r in v.get("request", []):
        sr = ctx.read(r.get("reference", ""))
        if sr is None or (sr.get("subject") or {}).get("reference") != subject:
            return f"{r.get('reference')} is not an order for this patient"
    return None


def _searched_patients(event: Mapping[str, Any]) -> bool:
    import base64

    for ent in event.get("entity") or []:
        try:
            query = base64.b64decode(str(ent.get("query", ""))).decode()
        except ValueError:
            continue
        if query.startswith("Patient"):
            return True
    return False


def _register(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.audit import event_username

    if v.get("resourceType") != "Patient":
        return "not a Patient"
    user = getattr(ctx.user, "username", None)
    for e in ctx.events():
        what = [(x.get("what") or {}).get("reference", "") for x in e.get("entity") or []]
        mine = _ref(v)
        if e["kind"] in ("create", "update") and any(
            w == mine or w.startswith(f"{mine}/") for w in what
        ):
            break
        if event_username(e) == user and _searched_patients(e):
            return None
    return "no patient (MPI) search before the registration"


PERCENTILE, BMI = "59576-9", "39156-5"


def _percentile(ctx: Any, v: dict[str, Any], chart: dict[str, Any], when: datetime) -> str | None:
    from ehr_sandbox.workflows import vitals
    from ehr_sandbox.workflows.care import age_months

    bmis = [
        x
        for x in ctx.versions_since_setup()
        if x.get("resourceType") == "Observation"
        and ((x.get("code") or {}).get("coding") or [{}])[0].get("code") == BMI
        and x.get("subject") == v.get("subject")
        and x.get("effectiveDateTime") == v.get("effectiveDateTime")
        and vouched(ctx, x) is None
    ]
    if not bmis:
        return "a BMI percentile with no BMI measured with it"
    months = age_months(chart, when.date()) + 0.5
    want = vitals.bmi_percentile(
        float(bmis[-1]["valueQuantity"]["value"]), chart.get("gender", ""), months
    )
    got = (v.get("valueQuantity") or {}).get("value")
    return None if want is not None and got == want else f"percentile {got}, not the CDC one"


def _flags(concept: Mapping[str, Any]) -> set[str]:
    return {c.get("code") for i in concept.get("interpretation", []) for c in i.get("coding", [])}


def _vitals(ctx: Any, v: dict[str, Any]) -> str | None:
    from ehr_sandbox.workflows import vitals
    from ehr_sandbox.workflows.care import age_years

    if v.get("resourceType") != "Observation":
        return "not a vital sign"
    cats = {c.get("code") for x in v.get("category", []) for c in x.get("coding", [])}
    if not cats & {"vital-signs", "survey"}:
        return "not in the vital-signs category"
    chart = ctx.read(str((v.get("subject") or {}).get("reference", "")))
    when = _at(v)
    if chart is None or when is None:
        return "no patient chart behind the vital sign"
    years = age_years(chart, when.date())
    code = ((v.get("code") or {}).get("coding") or [{}])[0].get("code", "")
    if code == PERCENTILE:
        return _percentile(ctx, v, chart, when)
    # record_vitals flags every value against the age's ranges and routes a flagged one to
    # the provider in the same step: the flags and the message are the workflow's effect
    worst: str | None = None
    parts = v.get("component") or [v]
    for part in parts:
        q = part.get("valueQuantity") or {}
        pc = ((part.get("code") or {}).get("coding") or [{}])[0].get("code", code)
        try:
            f = vitals.flag(pc, float(q.get("value")), str(q.get("code")), years)
        except (TypeError, ValueError, SandboxError):
            return f"{pc}: not a value with a UCUM unit"
        if part is not v and _flags(part) != ({f} if f else set()):
            return f"{pc}: flagged {sorted(_flags(part))}, not as the workflow flags it"
        if f and (worst is None or len(f) > len(worst)):
            worst = f
    if _flags(v) != ({worst} if worst else set()):
        return f"flagged {sorted(_flags(v))}, not as the workflow flags it"
    if worst and not any(
        x.get("resourceType") == "Communication"
        and any((a.get("reference") or "") == _ref(v) for a in x.get("about", []))
        for x in ctx.versions_since_setup()
    ):
        return "an abnormal value never routed to the provider"
    return None


_EXPECTED = re.compile(
    r"^control (?P<level>.+) \(expected (?P<want>.+)\): (in range|OUT OF RANGE)$"
)
_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?)$")


def _control_ok(want: str, out: Mapping[str, Any]) -> bool:
    bounds = _RANGE.match(want)
    if bounds:
        value = (out.get("valueQuantity") or {}).get("value")
        lo, hi = float(bounds.group(1)), float(bounds.group(2))
        return isinstance(value, int | float) and lo <= value <= hi
    return out.get("valueString") == want


def _poc_qc(ctx: Any, v: dict[str, Any]) -> str | None:
    if v.get("resourceType") != "Task" or v.get("status") != "completed":
        return "not a completed QC log entry"
    kit = ctx.read(str((v.get("focus") or {}).get("reference", "")))
    when = _at(v)
    if kit is None or when is None:
        return "no kit behind the QC entry"
    if str(kit.get("expirationDate", ""))[:10] < when.date().isoformat():
        return "QC logged on an expired kit"
    authored = _start(v.get("authoredOn"))
    if authored is None or not (0 <= (when - authored).total_seconds() <= 300):
        return "the QC entry's time is not when it was logged"
    levels, summary = [], None
    for out in v.get("output", []):
        text = str((out.get("type") or {}).get("text", ""))
        if text == "QC passed":
            summary = out.get("valueBoolean")
            continue
        m = _EXPECTED.match(text)
        if m is None:
            return f"an output that is not a control result: {text!r}"
        levels.append(_control_ok(m.group("want"), out))
    if not levels:
        return "no control level was run"
    passed = all(levels)
    status = (v.get("businessStatus") or {}).get("text")
    if summary is not passed or status != ("pass" if passed else "fail"):
        return f"logged as {status} while the controls {'passed' if passed else 'failed'}"
    return None


VERIFIERS: Mapping[str, Verifier] = {
    "claims.submit": _claims_submit,
    "fees.publish": _fees_publish,
    "payments.post-era": _post_era,
    "poc.qc": _poc_qc,
    "registration.register": _register,
    "rooms.turnover": _turnover,
    "scheduling.book": _book,
    "scheduling.check-in": _check_in,
    "scheduling.double-book": _double_book,
    "scheduling.no-show": _no_show,
    "scheduling.recall": _recall,
    "specimens.collect": _collect,
    "vitals.record": _vitals,
}
"""Operation -> what the record must show for a version stamped with it to count."""


def vouched(ctx: Any, version: dict[str, Any]) -> str | None:
    """None when the version's stamp is borne out by the record, else why it is not.

    Examples
    --------
    >>> vouched(None, {"resourceType": "Claim", "meta": {}})
    'no workflow stamp'
    >>> vouched(None, {"meta": {"tag": [{"system": OPERATION_TAG, "code": "demo.op"}]}})
    'nothing re-checks what demo.op guarantees: its stamp does not count'
    """
    op = stamp(version)
    if op is None:
        return "no workflow stamp"
    verify = VERIFIERS.get(op)
    if verify is None:
        return f"nothing re-checks what {op} guarantees: its stamp does not count"
    return verify(ctx, version)


def done_by(ctx: Any, version: dict[str, Any]) -> str | None:
    """The workflow operation that wrote ``version``, when the record bears its stamp out;
    None when unstamped or when what the operation guarantees is missing (a typed-in tag).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext, SetupMark
    >>> from ehr_sandbox.workflows import scheduling
    >>> from ehr_sandbox.workflows.base import write
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> fd = sb.login("fd.smith")
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user("fd.smith"), "ann")
    >>> pid = fd.search("Patient").first()["id"]
    >>> real = scheduling.recall(fd, f"Patient/{pid}", "Practitioner/prac-dr.patel",
    ...                          due="2026-04-01", reason="3-month BP recheck")
    >>> done_by(ctx, real)
    'scheduling.recall'
    >>> copy = {k: v for k, v in real.items() if k not in ("id", "meta", "reasonCode")}
    >>> typed = write(fd, copy, operation="scheduling.recall")  # tag typed in, no reason
    >>> stamp(typed), done_by(ctx, typed)
    ('scheduling.recall', None)
    """
    return stamp(version) if vouched(ctx, version) is None else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def payer_answered(ctx: Any, response: dict[str, Any]) -> bool:
    """True when a stored CoverageEligibilityResponse is what the payer simulator answers to
    its request: the plan as it stood when the answer was stored, for the service date asked.

    A response typed by hand with other figures (or for a plan the payer would not confirm) is
    not the payer's answer, whoever stored it and whatever it is tagged.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext
    >>> from ehr_sandbox.workflows import eligibility
    >>> sb = Sandbox.generate(patients=3, seed=1, years=1)
    >>> fd = sb.login("fd.smith")
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user("fd.smith"), "ann")
    >>> cov = next(c for c in fd.search("Coverage").fetch() if "selfpay" not in c["payor"][0]["reference"])
    >>> real = eligibility.check_eligibility(fd, f"Coverage/{cov['id']}")
    >>> payer_answered(ctx, real)
    True
    >>> fake = {k: v for k, v in real.items() if k not in ("id", "meta")}
    >>> fake["insurance"][0]["item"][0]["benefit"][1]["allowedMoney"]["value"] += 100  # deductible
    >>> payer_answered(ctx, fd.create(fake))
    False
    """
    from ehr_sandbox.workflows import payer

    if response.get("resourceType") != "CoverageEligibilityResponse":
        return False
    ins = response.get("insurance") or [{}]
    cov_ref = (ins[0].get("coverage") or {}).get("reference", "")
    if not cov_ref.startswith("Coverage/"):
        return False
    cov = prior_version(ctx, cov_ref, response) or ctx.read(cov_ref)
    try:
        day = date.fromisoformat(str(response.get("servicedDate"))[:10])
        want = payer.eligibility(
            ctx.session,
            cov,
            service_date=day,
            request_ref=(response.get("request") or {}).get("reference", ""),
        )
    except (SandboxError, KeyError, IndexError, TypeError, ValueError):
        return False
    keys = ("patient", "servicedDate", "outcome", "disposition", "insurer", "insurance")
    return all(_canonical(response.get(k)) == _canonical(want.get(k)) for k in keys)
