"""Front-office realism of generated portal messages and staff accounts (issue 15).

Topics, pools and the MA's scope come from the workflows' ``portal.toml``; rates, topic shares
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
        Path(__file__).resolve().parents[1] / "ehr_sandbox" / "workflows" / "data" / "portal.toml"
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
        msgs = {m["id"]: m for m in rec.by_type("Communication")}
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
        users += bool(rec.by_type("Communication"))
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
