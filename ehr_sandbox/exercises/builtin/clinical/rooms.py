"""Clinical exercises: room turnover between patients; a failed biological indicator and the
recall of the load."""

from __future__ import annotations

from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.clinical.common import (
    MA,
    add_patient,
    routed_saying,
    standing,
    tamper,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import still_standing
from ehr_sandbox.exercises.grading import GradingContext, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import rooms, sterilization
from ehr_sandbox.workflows.base import write
from ehr_sandbox.workflows.care import identify, routed_task
from synthetic.systems import SANDBOX_PROCEDURE

__all__ = ["FAILED_BI_RECALL", "ROOM_TURNOVER"]


# ============================================================================ room turnover
def _setup_turnover(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    sys = sandbox.system_session()
    n = rng.randint(1, 6)
    room = rooms.create_room(sys, f"Exam {n}")
    other = rooms.create_room(sys, f"Exam {n + 1}")
    first = add_patient(sandbox, rng, age_days=rng.randint(20, 80) * 365, gender="female")
    nxt = add_patient(sandbox, rng, age_days=rng.randint(20, 80) * 365, gender="male")
    rooms.set_status(sys, f"Location/{room['id']}", "in-use")
    facts = {
        "room_ref": f"Location/{room['id']}",
        "room": room["name"],
        "other_ref": f"Location/{other['id']}",
        "first": first["name"],
        "next_ref": nxt["ref"],
        "next_id": nxt["id"],
        "next_name": nxt["name"],
        "next_dob": nxt["dob"],
    }
    return Scenario(facts, answer={}, protect=(facts["other_ref"],))


def _room_versions(ctx: GradingContext) -> list[dict[str, Any]]:
    return [v for v in written(ctx, "Location") if f"Location/{v['id']}" == ctx.facts["room_ref"]]


def _to_checklist(ctx: GradingContext) -> Check:
    expected = "a completed turnover checklist (every item) for the room before it was ready again"
    # a checklist entered in error afterwards documents no cleaning
    for t in still_standing(ctx, written(ctx, "Task", None, "rooms.turnover")):
        if (t.get("focus") or {}).get("reference") == ctx.facts["room_ref"] and all(
            o.get("valueBoolean") for o in t.get("output", [])
        ):
            return Check(True, "checklist completed", expected)
    return Check(
        False,
        "no completed turnover checklist for the room",
        expected,
        "clean and check every item before the room is ready",
    )


def _to_sequence(ctx: GradingContext) -> Check:
    expected = (
        "the room went dirty -> ready (through the turnover) before the next patient was roomed"
    )
    seq = [rooms.status_of(v) for v in _room_versions(ctx)]
    if seq[:3] != ["dirty", "ready", "in-use"]:
        return Check(
            False,
            f"room status went {' -> '.join(seq) or 'nowhere'}",
            expected,
            "never room a patient in a dirty room",
        )
    ready = _room_versions(ctx)[1]
    from ehr_sandbox.exercises.evidence import done_by

    if done_by(ctx, ready) != "rooms.turnover":
        return Check(
            False,
            "the room was set ready without the turnover",
            expected,
            "never room a patient in a dirty room",
        )
    return Check(True, "turnover before the next patient", expected)


def _identified_last(ctx: GradingContext, ref: str) -> str | None:
    """The patient id the acting user last identified (two matching identifiers) before their
    last write of ``ref``: the patient a room was given to (the room itself does not say).

    The audit trail, in order, is the evidence; a write of ``ref`` that nobody was identified
    before gives None.
    """
    from ehr_sandbox.audit import event_patient, event_username
    from ehr_sandbox.workflows.care import identification

    user = getattr(ctx.user, "username", None)
    last: str | None = None
    who: str | None = None
    for e in ctx.events():
        if event_username(e) != user or e.get("outcome") not in ("0", None):
            continue
        found = identification(e)
        if found is not None:
            last = event_patient(e) if found["matched"] else None
            continue
        what = [(x.get("what") or {}).get("reference", "") for x in e.get("entity", []) or []]
        if e["kind"] in ("create", "update", "patch") and any(
            w == ref or w.startswith(f"{ref}/") for w in what
        ):
            who = last
    return who


def _to_roomed(ctx: GradingContext) -> Check:
    expected = "the next patient identified and roomed in the clean room"
    seq = [rooms.status_of(v) for v in _room_versions(ctx)]
    if (
        seq
        and seq[-1] == "in-use"
        and (
            not ctx.identified_before(ctx.facts["next_id"])
            or _identified_last(ctx, ctx.facts["room_ref"]) != ctx.facts["next_id"]
        )
    ):
        return Check(
            False,
            "the room is in use, but the waiting patient was not the one identified when it "
            "was given",
            expected,
            "identify the patient who is waiting for the room (two identifiers) before rooming: "
            "rooming someone else leaves them in the waiting room",
        )
    if seq and seq[-1] == "in-use":
        return Check(True, "next patient roomed", expected)
    return Check(
        False,
        f"the room is {seq[-1] if seq else 'unchanged'}",
        expected,
        "room the waiting patient",
    )


def _to_reference(att: Any, *, void_checklist: bool = False) -> None:
    """The reference; ``void_checklist``: the turnover checklist then entered in error."""
    f = att.facts
    s = att.session
    rooms.discharge_room(s, f["room_ref"])
    done = rooms.turnover(
        s, f["room_ref"], {i["id"]: True for i in rooms.table("rooms")["checklist"]}
    )
    ref = identify(s, f["next_ref"], name=f["next_name"], birth_date=f["next_dob"])
    rooms.room_patient(s, f["room_ref"], ref)
    if void_checklist:
        s.mark_entered_in_error(f"Task/{done['id']}", "charted in error")


def _to_wipe_only(att: Any) -> None:
    """Typical mistake: the room set to ready by hand after a quick wipe (no checklist)."""
    f = att.facts
    s = att.session
    rooms.discharge_room(s, f["room_ref"])
    loc = s.read(f["room_ref"])
    loc["operationalStatus"] = {"system": rooms.BED_STATUS, "code": "U", "display": "Unoccupied"}
    s.update(loc)
    ref = identify(s, f["next_ref"], name=f["next_name"], birth_date=f["next_dob"])
    rooms.room_patient(s, f["room_ref"], ref)


def _to_tag_by_hand(att: Any) -> None:
    """A turnover Task with one checklist item and the room set ready, both written by hand
    with the rooms.turnover tag typed in."""
    f = att.facts
    s = att.session
    rooms.discharge_room(s, f["room_ref"])
    item = rooms.table("rooms")["checklist"][0]
    write(
        s,
        {
            "resourceType": "Task",
            "status": "completed",
            "intent": "order",
            "description": "Room wiped down",
            "focus": {"reference": f["room_ref"]},
            "output": [{"type": {"text": item["text"]}, "valueBoolean": True}],
        },
        operation="rooms.turnover",
    )
    loc = s.read(f["room_ref"])
    loc["operationalStatus"] = {"system": rooms.BED_STATUS, "code": "U", "display": "Unoccupied"}
    write(s, loc, operation="rooms.turnover")
    ref = identify(s, f["next_ref"], name=f["next_name"], birth_date=f["next_dob"])
    rooms.room_patient(s, f["room_ref"], ref)


def _to_dirty_room(att: Any) -> None:
    """Harmful: the next patient put straight into the dirty room."""
    f = att.facts
    s = att.session
    rooms.discharge_room(s, f["room_ref"])
    loc = s.read(f["room_ref"])
    loc["operationalStatus"] = {"system": rooms.BED_STATUS, "code": "O", "display": "Occupied"}
    s.update(loc)


def _to_someone_else(att: Any, *, waiting_identified: bool = False) -> None:
    """Turnover done right, then another patient (not the one waiting) identified and roomed
    (``waiting_identified``: after identifying the waiting patient first)."""
    f = att.facts
    s = att.session
    rooms.discharge_room(s, f["room_ref"])
    rooms.turnover(s, f["room_ref"], {i["id"]: True for i in rooms.table("rooms")["checklist"]})
    if waiting_identified:
        identify(s, f["next_ref"], name=f["next_name"], birth_date=f["next_dob"])
    p = next(p for p in s.search("Patient").fetch() if p["id"] != f["next_id"])
    name = f"{p['name'][0]['given'][0]} {p['name'][0]['family']}"
    ref = identify(s, f"Patient/{p['id']}", name=name, birth_date=p["birthDate"])
    rooms.room_patient(s, f["room_ref"], ref)


def _to_edit_other(att: Any) -> None:
    _to_reference(att)
    tamper(att, att.facts["other_ref"])


ROOM_TURNOVER = Exercise(
    id="clinical/room-turnover",
    title="Room turnover between patients",
    topic="clinical",
    topics=("exam-room-sterilization",),
    competencies=("III.P.5", "X.P.3"),
    minutes=10,
    role=MA,
    summary="The last patient leaves; clean and check the room, then room the next patient.",
    setup=_setup_turnover,
    instructions=(
        "{first} has just left **{room}** (`{room_ref}`). **{next_name}** (DOB {next_dob}) is waiting for it.\n\n"
        "Turn the room over (`workflows.rooms`: `discharge_room`, `turnover` with every checklist item, "
        "`room_patient`)."
    ),
    criteria=(
        Criterion(
            "turnover checklist",
            2,
            _to_checklist,
            "Disinfection between patients breaks the chain of infection (CDC environmental infection control; OSHA 29 CFR 1910.1030).",
        ),
        Criterion(
            "clean before the next patient",
            2,
            _to_sequence,
            "A patient is never roomed in a room that has not been turned over.",
        ),
        Criterion(
            "next patient roomed",
            1,
            _to_roomed,
            "Rooming status keeps the schedule and the provider on time.",
        ),
    ),
    hints=(Hint("`rooms.table('rooms')['checklist']` lists the items."),),
    solution=Solution(_to_reference),
    wrong_solutions={
        "checklist-then-entered-in-error": Solution(
            lambda att: _to_reference(att, void_checklist=True),
            fails="turnover checklist",
            message="clean and check every item before the room is ready",
            description="the turnover checklist done, then entered in error (it passed the "
            "checklist criterion before; only collateral damage caught it)",
        ),
        "ready-by-hand": Solution(
            _to_wipe_only, fails="turnover checklist", message="check every item"
        ),
        "turnover-tag-by-hand": Solution(
            _to_tag_by_hand,
            fails="turnover checklist",
            message="check every item",
            description="one checklist item and the room set ready by hand, the rooms.turnover tag typed in",
        ),
        "dirty-room": Solution(
            _to_dirty_room,
            fails="clean before the next patient",
            message="never room a patient in a dirty room",
        ),
        "roomed-someone-else": Solution(
            _to_someone_else,
            fails="next patient roomed",
            message="rooming someone else leaves them in the waiting room",
            description="another patient identified and roomed, not the one waiting",
        ),
        "waiting-identified-other-roomed": Solution(
            lambda att: _to_someone_else(att, waiting_identified=True),
            fails="next patient roomed",
            message="rooming someone else leaves them in the waiting room",
            description="the waiting patient identified, then another patient identified and "
            "given the room",
        ),
        "edit-other-room": Solution(
            _to_edit_other,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Location", ops=("update",)),
        Expect("Task", ops=("create",)),
    ),
)


# ============================================================================ failed BI, recall
def _setup_bi(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    sys = sandbox.system_session()
    auto = sterilization.register_autoclave(
        sys, f"Autoclave {rng.choice('ABC')}", f"SN-{rng.randint(1000, 9999)}"
    )
    aref = f"Device/{auto['id']}"
    good = sterilization.register_pack(sys, "Pack G (earlier load)")
    load_ok = f"L{rng.randint(100, 400)}"
    sterilization.log_cycle(
        sys,
        aref,
        load=load_ok,
        cycle="gravity",
        temp_c=121,
        minutes=30,
        pressure_psi=16,
        chemical_indicator="pass",
        packs=[f"Device/{good['id']}"],
        biological_indicator=True,
    )
    first_cycle = [t for t in sys.search("Task", focus=aref).fetch()][0]
    sterilization.record_bi(sys, f"Task/{first_cycle['id']}", "pass")
    sandbox.clock.advance(minutes=30)
    packs = [
        sterilization.register_pack(sys, f"Suture removal kit {i + 1}")
        for i in range(rng.randint(2, 4))
    ]
    load = f"L{rng.randint(401, 900)}"
    cycle = sterilization.log_cycle(
        sys,
        aref,
        load=load,
        cycle=rng.choice(["gravity", "prevacuum"]),
        temp_c=134,
        minutes=30,
        pressure_psi=30,
        chemical_indicator="pass",
        packs=[f"Device/{p['id']}" for p in packs],
        biological_indicator=True,
    )
    p = add_patient(
        sandbox, rng, age_days=rng.randint(30, 80) * 365, gender=rng.choice(["female", "male"])
    )
    proc = sys.create({"resourceType": "Procedure", "status": "completed", "code": {"coding": [{"system": SANDBOX_PROCEDURE, "code": "NAIL-DEBRIDE", "display": "Debridement of nails, 1 to 5"}]},
                       "subject": {"reference": p["ref"]}, "performedDateTime": cycle["authoredOn"], "usedReference": [{"reference": f"Device/{packs[0]['id']}"}]})  # fmt: skip
    facts = {
        "autoclave_ref": aref,
        "cycle_ref": f"Task/{cycle['id']}",
        "load": load,
        "pack_refs": [f"Device/{x['id']}" for x in packs],
        "good_pack_ref": f"Device/{good['id']}",
        "procedure_ref": f"Procedure/{proc['id']}",
        "patient_id": p["id"],
        "patient_name": p["name"],
    }
    return Scenario(facts, answer={}, protect=(facts["good_pack_ref"],))


def _bi_recorded(ctx: GradingContext) -> Check:
    expected = "the spore test result recorded as failed on the cycle's log"
    cur = ctx.read(ctx.facts["cycle_ref"]) or {}
    if sterilization.output_value(cur, "biological indicator") == "fail":
        return Check(True, "BI failure recorded", expected)
    return Check(
        False,
        "the cycle log does not show the failed BI",
        expected,
        "record the spore test result on the cycle",
    )


def _bi_recalled(ctx: GradingContext) -> Check:
    expected = "every pack of the load out of use (inactive, marked recalled)"
    for r in ctx.facts["pack_refs"]:
        seq = [v.get("status") for v in ctx.versions_since_setup(r)]
        if "inactive" in seq and "active" in seq[seq.index("inactive") :]:
            return Check(
                False,
                "a recalled pack was put back in use, then recalled again",
                expected,
                "a failed BI recalls the whole load: a recalled pack stays out of use until it "
                "is reprocessed",
            )
    bad = [
        r
        for r in ctx.facts["pack_refs"]
        if (ctx.read(r) or {}).get("status") != "inactive"
        or "RECALLED" not in str((ctx.read(r) or {}).get("note"))
    ]
    if bad:
        return Check(
            False,
            f"{len(bad)} pack(s) of the load still in use",
            expected,
            "a failed BI recalls the whole load",
        )
    return Check(True, "load recalled", expected)


RECALL_WORDS = ["recalled", "recall", "sterilizer", "sterilization", "BI", "biological indicator",
                "spore"]  # fmt: skip
"""Ways a flag or a task says the patient was exposed to the recalled load (any one will do)."""


def _bi_flagged(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "the procedure that used a recalled pack flagged on the patient and sent to the "
        "provider, both saying it was a recalled load"
    )
    pid = f["patient_id"]
    flags = [
        g
        for g in written(ctx, "Flag", pid)
        if rubric.check_text(
            text_of(g.get("code")), {"the recalled load": RECALL_WORDS}, what="the flag"
        ).passed
    ]
    tasks = [
        t
        for t in standing(ctx, written(ctx, "Task", pid), pid)
        if (t.get("focus") or {}).get("reference") == f["procedure_ref"]
    ]
    sent = routed_saying(
        ctx,
        pid,
        tasks,
        {"the recalled load": RECALL_WORDS},
        {"that nothing is needed": ["no action", "no follow-up", "nothing to do", "fyi only"]},
        "the task",
    )
    if (written(ctx, "Flag", pid) and not flags) or (sent is not None and not sent.passed):
        return Check(
            False,
            "a flag or a task that does not say what happened, or a task that does not reach "
            "the patient's provider",
            expected,
            "the flag tells every clinician who opens the chart that the patient was exposed to "
            "a recalled load, and the follow-up goes to the patient's own provider, saying so",
        )
    if flags and sent is not None:
        return Check(True, "procedure flagged", expected)
    return Check(
        False,
        "the exposed patient was not flagged",
        expected,
        "trace the load to the patients it was used on",
    )


def _bi_reference(att: Any, withdraw: str | None = None) -> None:
    """The reference; ``withdraw``: the exposed patient's task then set to that status."""
    sterilization.record_bi(att.session, att.facts["cycle_ref"], "fail")
    if withdraw:
        withdraw_messages(att, "Task", withdraw, f"Patient/{att.facts['patient_id']}")


def _bi_note_only(att: Any) -> None:
    """Typical mistake: the failed result written on the log, packs left on the shelf."""
    s = att.session
    t = s.read(att.facts["cycle_ref"])
    for o in t["output"]:
        if o["type"]["text"] == "biological indicator":
            o["valueString"] = "fail"
    s.update(t)


def _bi_use_pack(att: Any) -> None:
    """Harmful: the recall is done but a recalled pack is used on the next patient."""
    _bi_reference(att)
    f = att.facts
    s = att.session
    dev = s.read(f["pack_refs"][-1])
    dev["status"] = "active"
    s.update(dev)


def _bi_reuse_then_recall(att: Any) -> None:
    """The recall done, one pack put back in use (used), then marked recalled again so the
    shelf looks right."""
    _bi_reference(att)
    s = att.session
    ref = att.facts["pack_refs"][-1]
    recalled = s.read(ref)
    s.update({k: v for k, v in {**recalled, "status": "active"}.items() if k != "note"})
    s.update({**s.read(ref), "status": "inactive", "note": recalled["note"]})


def _bi_by_hand(
    att: Any,
    *,
    flag: str = "note",
    task: str = "fyi",
    owner: str = "Practitioner/prac-ma.garcia",
) -> None:
    """The log and the packs updated by hand; a flag saying ``flag`` and a task saying ``task``
    to ``owner`` (by default a one-word flag and a task to the MA herself)."""
    f = att.facts
    s = att.session
    t = s.read(f["cycle_ref"])
    for o in t["output"]:
        if o["type"]["text"] == "biological indicator":
            o["valueString"] = "fail"
    s.update(t)
    for r in f["pack_refs"]:
        s.update({**s.read(r), "status": "inactive", "note": [{"text": "RECALLED"}]})
    pref = f"Patient/{f['patient_id']}"
    s.create({"resourceType": "Flag", "status": "active", "code": {"text": flag}, "subject": {"reference": pref}})  # fmt: skip
    s.create(routed_task(s, pref, owner, task, focus=f["procedure_ref"]))


def _bi_edit_good(att: Any) -> None:
    _bi_reference(att)
    tamper(att, att.facts["good_pack_ref"])


FAILED_BI_RECALL = Exercise(
    id="clinical/failed-bi-recall",
    skip_traps=(
        "done-twice",
        "one-more-record",
    ),  # the EHR refuses the repeat (the device is already out of service)
    title="A failed biological indicator: recall the load",
    topic="clinical",
    topics=("exam-room-sterilization",),
    competencies=("III.P.5", "X.P.7", "X.P.3"),
    minutes=15,
    role=MA,
    summary="The weekly spore test failed: record it, recall the load's packs, flag the patient they were used on.",
    setup=_setup_bi,
    instructions=(
        "The spore test (biological indicator) of load **{load}** (`{cycle_ref}`, autoclave `{autoclave_ref}`) "
        "came back **positive: the BI failed**. The load held {pack_refs}; one of them was already used this "
        "morning on {patient_name}.\n\n"
        "Act on it with `workflows.sterilization`."
    ),
    criteria=(
        Criterion(
            "BI failure recorded",
            1,
            _bi_recorded,
            "The sterilization log is the legal record of each load (CDC 2008; ANSI/AAMI ST79).",
        ),
        Criterion(
            "load recalled",
            3,
            _bi_recalled,
            "A positive BI means the load may not be sterile: every item is recalled and reprocessed (CDC 2008).",
        ),
        Criterion(
            "exposed patient flagged",
            2,
            _bi_flagged,
            "Patients exposed to possibly non-sterile instruments need follow-up (infection control; MAERB X.P.7 incident reporting).",
        ),
    ),
    hints=(Hint("`record_bi(session, cycle, 'fail')` does the recall."),),
    solution=Solution(_bi_reference),
    wrong_solutions={
        "recall-task-then-cancelled": Solution(
            lambda att: _bi_reference(att, withdraw="cancelled"),
            fails="exposed patient flagged",
            message="the exposed patient was not flagged",
            description="the failed BI recorded and the exposed patient's task routed, then cancelled (a routing undone at hand-in)",
        ),
        "log-only": Solution(
            _bi_note_only, fails="load recalled", message="a failed BI recalls the whole load"
        ),
        "reuse-recalled-pack": Solution(
            _bi_use_pack, fails="load recalled", message="a failed BI recalls the whole load"
        ),
        "reused-then-recalled-again": Solution(
            _bi_reuse_then_recall,
            fails="load recalled",
            message="a recalled pack stays out of use until it is reprocessed",
            description="a recalled pack put back in use, then marked recalled again",
        ),
        "empty-flag-task-to-self": Solution(
            _bi_by_hand,
            fails="exposed patient flagged",
            message="the follow-up goes to the patient's own provider",
            description="recall typed in by hand; a flag that says 'note' and a task to the MA",
        ),
        "fyi-task-to-provider": Solution(
            lambda att: _bi_by_hand(
                att,
                flag="Exposed to a pack from a recalled sterilizer load (BI failed)",
                owner="Practitioner/prac-dr.patel",
            ),
            fails="exposed patient flagged",
            message="the follow-up goes to the patient's own provider, saying so",
            description="recall typed in by hand; a good flag, and a task to the provider that "
            "says only 'fyi'",
        ),
        "edit-good-pack": Solution(
            _bi_edit_good,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Task"),
        Expect("Device", ops=("update",)),
        Expect("Flag", ops=("create",), patients=("patient_id",)),
    ),
)
