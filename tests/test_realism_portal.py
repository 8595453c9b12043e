"""Front-office realism of generated portal messages and staff accounts (issue 15).

Topics, pools and the MA's scope come from ``portal.toml`` (shared by the workflows and the generator); rates, topic shares
and reply times from the generator's content (``rules.toml [portal]``); employment dates from
``staff.toml``. Checked on the shared 1,000-patient sample.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from realism_sample import REF_ISO, SEED, default_sample

import synthetic
from ehr_sandbox.users import staff_from_practice
from ehr_sandbox.workflows.portal import interpretive_phrases
from synthetic.clinical_rules import compile_rules
from synthetic.content import load_content
from synthetic.fhir import validate
from synthetic.visit.portal import TOPIC_SYSTEM

pytestmark = [pytest.mark.realism, pytest.mark.slow]

PORTAL = tomllib.loads(
    (
        Path(__file__).resolve().parents[1] / "synthetic" / "content" / "data" / "portal.toml"
    ).read_text()
)


def _topic(m: dict[str, Any]) -> str:
    return next(
        c["code"] for cat in m["category"] for c in cat["coding"] if c["system"] == TOPIC_SYSTEM
    )


def _roles() -> dict[str, tuple[str, str, str]]:
    """Practitioner reference -> (role, start, end) from the practice resources."""
    out = {}
    for r in synthetic.practice_resources(seed=SEED, reference_date=REF_ISO):
        if r["resourceType"] == "PractitionerRole":
            role = r["code"][0]["coding"][0]["code"]
            period = r.get("period", {})
            out[r["practitioner"]["reference"]] = (
                role,
                period.get("start", ""),
                period.get("end", ""),
            )
    return out


def test_messages_are_routed_answered_in_scope_by_staff_employed_that_day() -> None:
    topics = {t["code"]: t for t in PORTAL["topic"]}
    roles = _roles()
    limit = PORTAL["reply_within_hours"]
    bad: list[str] = []
    replies = on_time = 0
    by_topic: Counter[str] = Counter()
    for rec in default_sample():
        # inbox messages (a result release notice, with ``about``, is not one)
        msgs = {m["id"]: m for m in rec.by_type("Communication") if "about" not in m}
        for m in msgs.values():
            code = _topic(m)
            if code not in topics:
                bad.append(f"{m['id']}: topic {code}")
                continue
            if "inResponseTo" not in m:
                by_topic[code] += 1
                if m["sender"] != m["subject"]:
                    bad.append(f"{m['id']}: a patient message from someone else")
                continue
            replies += 1
            first = msgs.get(m["inResponseTo"][0]["reference"].removeprefix("Communication/"))
            if first is None or _topic(first) != code:
                bad.append(f"{m['id']}: thread broken")
                continue
            sent, answered = (
                datetime.fromisoformat(first["sent"]),
                datetime.fromisoformat(m["sent"]),
            )
            if answered <= sent:
                bad.append(f"{m['id']}: reply before the message")
            on_time += (answered - sent).total_seconds() <= limit * 3600
            role, start, end = roles.get(m["sender"]["reference"], ("?", "", ""))
            pool = PORTAL["pools"][topics[code]["pool"]]
            if role not in pool and role != "physician":
                bad.append(f"{m['id']}: {role} answers the {topics[code]['pool']} pool")
            if role == "medical_assistant":
                if not topics[code]["ma_may_answer"]:
                    bad.append(f"{m['id']}: MA answers {code}")
                if interpretive_phrases(m["payload"][0]["contentString"]):
                    bad.append(f"{m['id']}: MA interprets")
            day = m["sent"][:10]
            if (start and day < start) or (end and day > end):
                bad.append(f"{m['id']}: answered by {m['sender']['reference']} outside employment")
    assert bad == []
    total = sum(by_topic.values())
    assert total > 300 and replies > 0.8 * total
    rates = compile_rules(load_content()).portal
    p_on_time = 1 - rates.late_share
    assert abs(on_time / replies - p_on_time) <= 4 * math.sqrt(
        p_on_time * (1 - p_on_time) / replies
    )
    shares = {t.code: t.share for t in rates.topic}
    after = {t.code for t in rates.topic if t.after_visit}
    for code, share in shares.items():
        p = share / sum(shares.values())
        got = by_topic[code] / total
        tol = 4 * math.sqrt(p * (1 - p) / total)
        if code in after:  # only after a visit: a few users have none
            assert p * 0.7 - tol <= got <= p + tol, code
        else:
            assert abs(got - p) <= tol + 0.03, (code, got, p)


def test_portal_users_follow_the_content_rate() -> None:
    rates = compile_rules(load_content()).portal
    expected = 0.0
    users = 0
    ref = date.fromisoformat(REF_ISO).toordinal()
    from realism_sample import YEARS

    for rec in default_sample():
        birth = date.fromisoformat(rec.patient["birthDate"]).toordinal()
        end = date.fromisoformat(rec.patient.get("deceasedDateTime", REF_ISO)[:10]).toordinal()
        start = max(ref - int(YEARS * 365.25), birth + int(rates.min_age * 365.25))
        if start >= end:
            assert not rec.by_type("Communication")  # children and teens send none
            continue
        lam = rates.messages_per_year * (end - start) / 365.25
        expected += rates.active_share * (1 - math.exp(-lam))
        users += any("about" not in m for m in rec.by_type("Communication"))
    assert expected > 200
    assert 0.85 * expected - 4 * math.sqrt(expected) <= users <= expected + 4 * math.sqrt(expected)


def test_staff_accounts_have_employment_dates_and_former_staff_no_account() -> None:
    content = load_content()
    practice = synthetic.practice_resources(seed=SEED, reference_date=REF_ISO)
    pracs = {r["id"]: r for r in practice if r["resourceType"] == "Practitioner"}
    roles = [r for r in practice if r["resourceType"] == "PractitionerRole"]
    former = [m.username for m in content.former if m.end and m.end < REF_ISO]
    assert former  # the roster has someone who left
    for role in roles:
        pid = role["practitioner"]["reference"].removeprefix("Practitioner/")
        period = role.get("period", {})
        employed = period.get("start", "") <= REF_ISO and (
            not period.get("end") or period["end"] >= REF_ISO
        )
        assert role["active"] is employed and pracs[pid]["active"] is employed
    accounts = {u.username for u in staff_from_practice(practice)}
    assert not accounts & set(former)
    assert {m.username for m in content.staff if not m.end} <= accounts


def test_front_office_resources_are_valid_fhir() -> None:
    kinds = (
        "Communication",
        "PaymentReconciliation",
        "Invoice",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "ClaimResponse",
    )
    seen: Counter[str] = Counter()
    errors = []
    for rec in default_sample()[:200]:
        for r in rec.resources:
            if r["resourceType"] in kinds:
                seen[r["resourceType"]] += 1
                errors.extend(validate(r))
    assert set(seen) == set(kinds)
    assert errors == []


def _release_policy() -> dict[str, Any]:
    root = Path(synthetic.__file__).resolve().parent
    return tomllib.loads((root / "content" / "data" / "portal_release.toml").read_text())


def test_results_are_released_to_portal_users_without_delay() -> None:
    """Cures Act: each portal user's final results are released as issued, each once; a
    restricted result is held for the clinician; non-users get no release notices."""
    policy = _release_policy()
    assert policy["release_delay_minutes"] == 0
    bad: list[str] = []
    users = released = eligible_users = 0
    for rec in default_sample():
        comms = rec.by_type("Communication")
        notices = [m for m in comms if "about" in m]
        user = any("about" not in m for m in comms) or bool(notices)
        reports = {r["id"]: r for r in rec.by_type("DiagnosticReport")}
        adult = (
            date.fromisoformat(rec.patient["birthDate"]).replace(
                year=int(rec.patient["birthDate"][:4]) + 18
            )
            if rec.patient["birthDate"][5:] != "02-29"
            else None
        )
        eligible = [
            r
            for r in reports.values()
            if r["status"] == "final"
            and adult is not None
            and r["issued"][:10] >= adult.isoformat()
            and r["issued"][:10] < REF_ISO
            and not {x["code"] for x in r["meta"].get("security", [])} & {"R", "V"}
        ]
        eligible_users += bool(eligible)
        if not user:
            continue
        users += bool(notices)
        about = [n["about"][0]["reference"].removeprefix("DiagnosticReport/") for n in notices]
        if len(set(about)) != len(about):
            bad.append(f"{rec.patient['id']}: a result released twice")
        for n in notices:
            r = reports.get(n["about"][0]["reference"].removeprefix("DiagnosticReport/"))
            if r is None or r["status"] != "final":
                bad.append(f"{n['id']}: releases no final result")
            elif n["sent"] != r["issued"]:
                bad.append(f"{n['id']}: released {n['sent']}, issued {r['issued']}")
            elif {x["code"] for x in r["meta"].get("security", [])} & {"R", "V"}:
                bad.append(f"{n['id']}: a restricted result released without the clinician")
            if n["sender"]["reference"].startswith("Patient/") or n["recipient"] != [n["subject"]]:
                bad.append(f"{n['id']}: not a notice to the patient")
        released += len(notices)
        # every result the user was old enough for and that was not held is released
        # (the portal window starts at 18 inside the record's years)
        missing = {r["id"] for r in eligible} - set(about)
        if notices and missing:
            first = min(n["sent"] for n in notices)[:10]
            if any(reports[m]["issued"][:10] >= first for m in missing):
                bad.append(f"{rec.patient['id']}: {len(missing)} results not released")
    assert bad == [], bad[:10]
    rate = compile_rules(load_content()).portal.active_share
    assert released > 300
    assert (
        abs(users / eligible_users - rate)
        <= 4 * math.sqrt(rate * (1 - rate) / eligible_users) + 0.05
    )


def test_messages_that_need_the_provider_are_forwarded_to_the_pcp() -> None:
    policy = _release_policy()
    # what lands in the MA pool but is outside the MA's scope goes to the provider
    provider = {t["code"] for t in PORTAL["topic"] if t["pool"] == "ma" and not t["ma_may_answer"]}
    roles = _roles()
    bad: list[str] = []
    forwarded = 0
    for rec in default_sample():
        msgs = {f"Communication/{m['id']}": m for m in rec.by_type("Communication")}
        replies = {m["inResponseTo"][0]["reference"] for m in msgs.values() if "inResponseTo" in m}
        tasks = [
            t
            for t in rec.by_type("Task")
            if t.get("focus", {}).get("reference", "").startswith("Communication/")
        ]
        by_msg = Counter(t["focus"]["reference"] for t in tasks)
        for ref, m in msgs.items():
            if "inResponseTo" in m or "about" in m:
                continue
            want = _topic(m) in provider
            if by_msg[ref] != (1 if want else 0):
                bad.append(f"{ref}: {by_msg[ref]} forwards ({_topic(m)})")
        for t in tasks:
            forwarded += 1
            m = msgs[t["focus"]["reference"]]
            sent = datetime.fromisoformat(m["sent"])
            at = datetime.fromisoformat(t["authoredOn"])
            due = datetime.fromisoformat(t["restriction"]["period"]["end"])
            if (at - sent).total_seconds() != 60 * policy["forward_after_minutes"] or (
                due - sent
            ).total_seconds() != 3600 * PORTAL["reply_within_hours"]:
                bad.append(f"{t['id']}: forwarded {at}, due {due}, sent {sent}")
            if t["owner"] != rec.patient["generalPractitioner"][0]:
                bad.append(f"{t['id']}: not forwarded to the patient's PCP")
            role, start, end = roles.get(t["requester"]["reference"], ("?", "", ""))
            day = t["authoredOn"][:10]
            if role != "medical_assistant" or (start and day < start) or (end and day > end):
                bad.append(f"{t['id']}: forwarded by {role} not employed that day")
            if (t["status"] == "completed") != (t["focus"]["reference"] in replies):
                bad.append(
                    f"{t['id']}: {t['status']} but replied={t['focus']['reference'] in replies}"
                )
            bad.extend(f"{t['id']}: {e}" for e in validate(t))
    assert bad == [], bad[:10]
    assert forwarded > 200
