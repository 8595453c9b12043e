"""The one reader of what still stands at hand-in (``builtin.common.still_standing``), stated
in general: whatever records were written, in whatever order, with whatever statuses."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ehr_sandbox.exercises.builtin.common import WITHDRAWN_STATUSES, still_standing

STATUSES = sorted(WITHDRAWN_STATUSES | {"final", "amended", "requested", "completed", "on-hold"})
OPEN = frozenset({"requested"})

version = st.fixed_dictionaries(
    {
        "resourceType": st.sampled_from(["Observation", "Task"]),
        "id": st.sampled_from(["a", "b", "c", "d"]),
        "status": st.sampled_from(STATUSES),
        "patient": st.sampled_from(["p1", "p2"]),
        "value": st.integers(0, 9),
    }
).map(
    # the patient as the type names it (an Observation's subject, a Task's for)
    lambda v: {
        **{k: x for k, x in v.items() if k != "patient"},
        "subject" if v["resourceType"] == "Observation" else "for": {
            "reference": f"Patient/{v['patient']}"
        },
    }
)


class Ctx:
    """The grader's view: each record's current version is the last one written."""

    def __init__(self, versions: list[dict[str, Any]]) -> None:
        self.now = {f"{v['resourceType']}/{v['id']}": v for v in versions}

    def read(self, ref: str) -> dict[str, Any] | None:
        return self.now.get(ref)


def _ref(v: dict[str, Any]) -> str:
    return f"{v['resourceType']}/{v['id']}"


def _stands(now: dict[str, Any], open_tasks: bool, patient: str | None) -> bool:
    return (
        now["status"] not in WITHDRAWN_STATUSES
        and (not open_tasks or now["resourceType"] != "Task" or now["status"] in OPEN)
        and (
            patient is None
            or (now.get("subject") or now.get("for"))["reference"] == f"Patient/{patient}"
        )
    )


@given(
    st.lists(version, max_size=12),
    st.booleans(),
    st.sampled_from([None, "p1", "p2"]),
)
def test_a_record_counts_exactly_while_its_current_version_stands(versions, open_tasks, patient):
    ctx = Ctx(versions)
    kw = {"open_tasks": OPEN if open_tasks else None, "patient_id": patient}
    as_written = still_standing(ctx, versions, **kw)
    as_now = still_standing(ctx, versions, current=True, **kw)
    standing_refs = {r for r, now in ctx.now.items() if _stands(now, open_tasks, patient)}
    # as it is now: each standing record once, its current version, in first-written order
    assert [_ref(v) for v in as_now] == list(
        dict.fromkeys(_ref(v) for v in versions if _ref(v) in standing_refs)
    )
    assert all(v == ctx.now[_ref(v)] for v in as_now)
    # as written: every version given of the standing records, in order, and nothing else
    assert as_written == [v for v in versions if _ref(v) in standing_refs]


@given(st.lists(version, min_size=1, max_size=8), st.sampled_from(sorted(WITHDRAWN_STATUSES)))
def test_work_withdrawn_afterwards_counts_for_nothing(versions, status):
    last = {**versions[-1], "status": status}
    history = [*versions, last]
    ctx = Ctx(history)
    assert _ref(last) not in {_ref(v) for v in still_standing(ctx, history)}
    assert _ref(last) not in {_ref(v) for v in still_standing(ctx, history, current=True)}
