"""Audited search at speed (issue 17): the batch path writes exactly what one-by-one would.

Rules stated here:

* a prepared batch's bytes are ``canonical_json(build_event(...))`` of every event, whatever
  the ids, queries and texts (markers, quotes and Unicode included);
* ``append_many`` leaves the same rows and checkpoints as ``append`` one by one, and writes
  nothing when any item is refused;
* a search (and a report) writes one AuditEvent per patient it returns, and returns exactly
  what the per-resource policy decision allows.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access import patient_of
from ehr_sandbox.audit import AuditTrail, build_event
from ehr_sandbox.audit.batch import prepare_event, prepare_events
from ehr_sandbox.crypto import AesGcmCodec, IdentityCodec, MasterKey, canonical_json
from ehr_sandbox.errors import AuditError, SandboxError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.search import parse

MARKERS = ["~pid~", "0000-00-00T00:00:00Z", '"recorded":"0000-00-00T00:00:00Z"', "Patient/~pid~"]
text = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(MARKERS))
ids = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z0-9.\-]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=8),
    st.sampled_from(["~pid~", "Patient", "a/b", "é"]),
)
instants = st.one_of(
    st.sampled_from(["2026-01-01T08:00:00+00:00", "2026-12-31T23:59:59.5Z"]),
    st.from_regex(r"20\d\d-0\d-1\dT0\d:\d\d:\d\d(Z|\+01:00)", fullmatch=True),
)
users = st.fixed_dictionaries(
    {
        "username": st.sampled_from(["dr.patel", "rn.kim", "pt.~pid~"]),
        "role": st.sampled_from(["physician", "nurse", "patient"]),
    },
    optional={
        "practitioner_id": st.sampled_from(["d1", "~pid~"]),
        "patient_id": st.sampled_from(["p1", "~pid~"]),
    },
)


def _one_by_one(common: dict, items: list) -> list:
    out = []
    for pid, when in items:
        try:
            out.append(canonical_json(build_event(**common, patient_id=pid, recorded=when)))
        except SandboxError as exc:
            out.append(type(exc))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    user=users,
    query=text,
    detail=text,
    entity=st.one_of(st.none(), st.sampled_from(["Patient/~pid~", "Observation/o1"])),
    items=st.lists(st.tuples(ids, instants), min_size=1, max_size=6),
    action=st.sampled_from(["E", "R", "E-BTG"]),
)
def test_prepared_batch_is_the_canonical_bytes_of_each_event(
    user, query, detail, entity, items, action
) -> None:
    common = dict(
        action=action,
        interaction="search",
        outcome="0",
        user=user,
        purpose="TREAT",
        entity_ref=entity,
        query=query,
        detail=detail,
    )
    expected = _one_by_one(common, items)
    if any(isinstance(e, type) for e in expected):
        # whatever one-by-one refuses, the batch refuses too (nothing half-prepared)
        with pytest.raises(SandboxError):
            prepare_events(items=items, **common)
        return
    try:
        got = prepare_events(items=items, **common)
    except SandboxError:
        # the template is refused only where one-by-one would refuse every event too
        pytest.fail("the batch refused events that build one by one")
    assert [p.record for p in got] == expected
    for p, (pid, when) in zip(got, items, strict=True):
        assert p == prepare_event(build_event(**common, patient_id=pid, recorded=when))


def _pair(batch: int, codec_factory) -> tuple:
    mk = MasterKey(bytes(range(32)))
    cons = [sqlite3.connect(":memory:", isolation_level=None) for _ in range(2)]
    return mk, cons, [AuditTrail(c, mk, codec_factory(mk), batch=batch) for c in cons]


def _events(n: int, offset: int = 0) -> list[dict]:
    u = {"username": "dr.patel", "role": "physician", "practitioner_id": "d1"}
    return [
        build_event(
            action="E",
            interaction="search",
            outcome="0",
            user=u,
            purpose="TREAT",
            patient_id=f"p{(i + offset) % 7}",
            query="Patient?",
            recorded=f"2026-01-01T08:{(i + offset) // 60 % 60:02d}:{(i + offset) % 60:02d}Z",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("encrypted", [False, True])
@given(sizes=st.lists(st.integers(0, 9), min_size=1, max_size=5), batch=st.integers(1, 6))
@settings(max_examples=25, deadline=None)
def test_append_many_leaves_what_appending_one_by_one_leaves(sizes, batch, encrypted) -> None:
    factory = (lambda mk: AesGcmCodec(mk)) if encrypted else (lambda mk: IdentityCodec())
    _, (one_con, many_con), (one, many) = _pair(batch, factory)
    done = 0
    for k, n in enumerate(sizes):
        events = _events(n, done)
        half = n // 2  # a mix of dicts and prepared events
        mixed = events[:half] + [prepare_event(e) for e in events[half:]]
        seqs = [one.append(e) for e in events]
        assert many.append_many(mixed) == seqs
        done += n
        assert many.count() == one.count() == done, k

    def rows(trail, con):
        cols = "seq, h, mac, patient, username, action"
        return con.execute(f"SELECT {cols} FROM audit_log ORDER BY seq").fetchall(), [
            (e["id"], canonical_json({k: v for k, v in e.items() if k != "id"}))
            for e in trail.events()
        ]

    if encrypted:  # sealed bytes differ (random nonces): compare what they open to
        assert one.events() == many.events()
        assert [r[2:] for r in rows(one, one_con)[0]] == [r[2:] for r in rows(many, many_con)[0]]
    else:
        assert rows(one, one_con) == rows(many, many_con)
    checkpoints = "SELECT seq, h, signature FROM audit_checkpoint ORDER BY seq"
    assert one_con.execute(checkpoints).fetchall() == many_con.execute(checkpoints).fetchall()
    assert many.verify().ok


def test_append_many_is_all_or_nothing() -> None:
    _, (con, _), (trail, _) = _pair(3, lambda mk: IdentityCodec())
    trail.append_many(_events(4))
    before = con.execute("SELECT * FROM audit_log").fetchall()
    for bad in ({"resourceType": "Patient"}, {"resourceType": "AuditEvent", "x": float("nan")}):
        with pytest.raises(AuditError):
            trail.append_many([*_events(2, 4), bad, *_events(2, 6)])
    assert con.execute("SELECT * FROM audit_log").fetchall() == before
    assert trail.verify().ok and trail.count() == 4


# ------------------------------------------------------------------ through the door
@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    """A small clinic with one patient nobody treats (so a search must hide someone) and a
    Consent that denies dr.patel one of the patients he treats."""
    sb = Sandbox.generate(patients=6, seed=5, years=1)
    system = sb.system_session()
    system.create({"resourceType": "Patient", "name": [{"family": "Stranger"}]})
    treated = sorted(sb.treating("dr.patel"))
    assert len(treated) >= 2, "the fixture needs two patients dr.patel treats"
    doctor = f"Practitioner/{sb.user('dr.patel').practitioner_id}"
    sb.login("po.wilson").create(
        {
            "resourceType": "Consent",
            "status": "active",
            "policy": [{"uri": "https://www.ecfr.gov/current/title-45/section-164.522"}],
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "INFA",
                        }
                    ]
                }
            ],
            "patient": {"reference": f"Patient/{treated[0]}"},
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "PRCP",
                                }
                            ]
                        },
                        "reference": {"reference": doctor},
                    }
                ],
            },
        }
    )
    return sb


def _store_rows(sb: Sandbox, rtype: str, params: list) -> list[dict]:
    return sb._store.search(rtype, parse(rtype, params))  # noqa: SLF001 - the test's oracle


@pytest.mark.parametrize("user", ["dr.patel", "rn.kim", "fd.smith", "billing.davis"])
@pytest.mark.parametrize(
    ("rtype", "params"),
    [("Patient", []), ("Observation", [("_count", "7")]), ("Encounter", [("_sort", "-date")])],
)
def test_search_returns_what_the_policy_allows_with_one_event_per_patient(
    clinic: Sandbox, user: str, rtype: str, params: list
) -> None:
    s = clinic.login(user)
    policy = clinic.policy
    count = dict(params).get("_count")
    query = [p for p in params if p[0] != "_count"]
    allowed = [
        r
        for r in _store_rows(clinic, rtype, query)
        if policy.decide(s.context, "search", r, resource_type=rtype).allowed
    ]
    if count is not None:
        allowed = allowed[: int(count)]
    before = clinic.audit.count()
    got = s.search(rtype, params).fetch()
    assert [(r["id"], r.get("meta", {}).get("versionId")) for r in got] == [
        (r["id"], r.get("meta", {}).get("versionId")) for r in allowed
    ]
    assert got == [policy.mask(s.context, r) for r in allowed]
    events = clinic.audit.events()[before:]
    patients = sorted({patient_of(r) for r in got if patient_of(r)})
    assert len(events) == max(1, len({patient_of(r) or "" for r in got}))
    audited = [
        e_ref["what"]["reference"].split("/", 1)[1]
        for e in events
        for e_ref in e.get("entity", [])
        if e_ref["role"]["code"] == "1"
    ]
    assert audited == patients  # one per patient returned, in order, nobody else
    assert all(
        e["agent"][0]["altId"] == user and e["subtype"][0]["code"] == "search" for e in events
    )
    assert clinic.audit.verify().ok


def test_the_fixture_hides_someone_from_the_physician(clinic: Sandbox) -> None:
    everyone = {p["id"] for p in clinic.grader_session().search("Patient").fetch()}
    seen = {p["id"] for p in clinic.login("dr.patel").search("Patient").fetch()}
    assert seen < everyone and len(everyone - seen) >= 2  # the stranger and the Consent


def test_break_the_glass_search_is_audited_per_patient_under_btg(clinic: Sandbox) -> None:
    s = clinic.login("dr.patel")
    everyone = {p["id"] for p in clinic.grader_session().search("Patient").fetch()}
    hidden = sorted(everyone - {p["id"] for p in s.search("Patient").fetch()})
    s.break_glass(hidden[0], "unconscious in the waiting room")
    before = clinic.audit.count()
    got = s.search("Patient").fetch()
    assert hidden[0] in {p["id"] for p in got}
    events = clinic.audit.events()[before:]
    assert len(events) == len(got)
    assert {e["purposeOfEvent"][0]["coding"][0]["code"] for e in events} == {"BTG"}
    s.end_break_glass()
    assert clinic.audit.verify().ok
