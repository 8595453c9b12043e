"""Catalogue item 26, ``emr-ehr/benefits-and-drawbacks``: the student runs the same journey as
EMR and as EHR (and with the hospital down) and reports the measured differences, privacy cost
included. The report is handed in as an audited action of the student's session
(:func:`~ehr_sandbox.exercises.builtin.common.hand_in`), so it works the same on a
classroom server and cannot be edited afterwards.
"""

from __future__ import annotations

from typing import Any

from ehr_sandbox.exercises.builtin.common import hand_in, handed_in
from ehr_sandbox.exercises.builtin.emr_ehr.common import PHYSICIAN
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import (
    Check,
    Criterion,
    Exercise,
    Expect,
    Hint,
    Scenario,
    Solution,
)

__all__ = ["BENEFITS_AND_DRAWBACKS", "scenario_for"]

_SCENARIOS: dict[tuple[int, int, int], Any] = {}
_REPORTED = ("duplicate_tests", "allergies_missed", "conflicts_caught", "rekey_errors")
_PRIVACY = ("people_with_access", "organizations_with_access")


def scenario_for(seed: int, patients: int, people: int) -> Any:
    """The :class:`~ehr_sandbox.network.Scenario` of these arguments (cached: runs are deterministic)."""
    from ehr_sandbox.network import Scenario

    key = (seed, patients, people)
    if key not in _SCENARIOS:
        _SCENARIOS[key] = Scenario(seed=seed, patients=patients, people=people)
    return _SCENARIOS[key]


SCENARIO_SEEDS = tuple(range(4101, 4117))
"""The scenario seeds variants draw from (a pool: each scenario takes seconds to run)."""


def _truth(seed: int, patients: int, people: int) -> dict[str, dict[str, float]]:
    sc = scenario_for(seed, patients, people)
    keep = _REPORTED + _PRIVACY
    return {
        run: {m: float(metrics[m]) for m in keep}
        for run, metrics in (
            ("emr", sc.run("emr").metrics),
            ("ehr", sc.run("ehr").metrics),
            ("ehr_hospital_down", sc.run("ehr", down="hospital").metrics),
        )
    }


def _setup_benefits(sandbox: Any, variant: Any) -> Scenario:
    seed = variant.pick(SCENARIO_SEEDS, salt="scenario")
    facts = {"scenario_seed": seed, "patients": 12, "people": 3}
    # the measured values are fixed at setup, on the instructor side: the grader never re-runs
    # the scenario in the student's process (whose cache the student could fill with anything)
    return Scenario(facts, answer={"truth": _truth(seed, 12, 3)})


def _measured(ctx: GradingContext) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    report = handed_in(ctx) or {}
    return report, ctx.answer["truth"]


def _compare(
    report: dict[str, Any],
    truth: dict[str, dict[str, float]],
    runs: tuple[str, ...],
    metrics: tuple[str, ...],
) -> list[str]:
    wrong = []
    for run in runs:
        for m in metrics:
            got = (report.get(run) or {}).get(m)
            if not isinstance(got, int | float) or abs(float(got) - truth[run][m]) > 1e-6:
                wrong.append(f"{run}.{m}={got!r}")
    return wrong


def _ben_benefits(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(report, truth, ("emr", "ehr"), _REPORTED)
    expected = "for emr and ehr: " + ", ".join(_REPORTED) + " as the scenario measured them"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong[:4]),
            expected,
            "report what you measured, not what you remember",
        )
    return Check(True, "benefits reported as measured", expected)


def _ben_privacy(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(report, truth, ("emr", "ehr"), _PRIVACY)
    expected = "people_with_access and organizations_with_access for both modes"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong[:4]),
            expected,
            "sharing has a privacy cost: report who could see the record",
        )
    return Check(True, "privacy cost reported", expected)


def _ben_downtime(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(
        report, truth, ("ehr_hospital_down",), ("conflicts_caught", "allergies_missed")
    )
    expected = "ehr_hospital_down: conflicts_caught and allergies_missed"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong),
            expected,
            "measure the drawback too: one organization down",
        )
    return Check(True, "downtime effect reported", expected)


def _measure(att: Any, *, privacy: bool) -> dict[str, dict[str, Any]]:
    f = att.facts
    sc = scenario_for(f["scenario_seed"], f["patients"], f["people"])
    keep = _REPORTED + (_PRIVACY if privacy else ())
    report = {
        run: {m: metrics[m] for m in keep}
        for run, metrics in (
            ("emr", sc.run("emr").metrics),
            ("ehr", sc.run("ehr").metrics),
            ("ehr_hospital_down", sc.run("ehr", down="hospital").metrics),
        )
    }
    return report


def _ben_report(att: Any, *, privacy: bool) -> None:
    hand_in(att, _measure(att, privacy=privacy))


def _ben_swapped(att: Any) -> None:
    """Typical mistake: the EMR and EHR runs reported the wrong way round."""
    report = _measure(att, privacy=True)
    report["emr"], report["ehr"] = report["ehr"], report["emr"]
    hand_in(att, report)


def _ben_export(att: Any) -> None:
    """Harm: exports the whole clinic 'to compare' (a bulk disclosure nobody asked for)."""
    import tempfile

    _ben_report(att, privacy=True)
    with tempfile.TemporaryDirectory() as out:
        att.session.export(out, types=["Patient", "Observation", "Condition"])


class _Poisoned:
    """What a student swaps into the scenario cache: every metric reads 0."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(metrics=dict.fromkeys(_REPORTED + _PRIVACY, 0.0))


def _ben_answer_key(att: Any) -> None:
    """Answer-key change: fill the scenario cache with made-up runs, report those."""
    f = att.facts
    key = (f["scenario_seed"], f["patients"], f["people"])
    real = _SCENARIOS.get(key)
    _SCENARIOS[key] = _Poisoned()
    try:
        _ben_report(att, privacy=True)
    finally:
        if real is not None:
            _SCENARIOS[key] = real
        else:
            _SCENARIOS.pop(key, None)


BENEFITS_AND_DRAWBACKS = Exercise(
    id="emr-ehr/benefits-and-drawbacks",
    skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
    title="Benefits and drawbacks: the same journey as EMR and as EHR",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "ehr-benefits-drawbacks", "privacy-security"),
    competencies=("VI.P.6", "X.P.2", "V.P.11"),
    minutes=30,
    role=PHYSICIAN,
    patients=2,
    summary="Run the scenario in both modes (and with the hospital down) and report the measured differences, privacy cost included.",
    setup=_setup_benefits,
    instructions=(
        "Run the scenario:\n\n```python\nfrom ehr_sandbox.network import Scenario\n"
        "sc = Scenario(seed={scenario_seed}, patients={patients}, people={people})\nsc.compare()\n```\n\n"
        "Then hand in what you measured with `emr_ehr.hand_in(att, report)` (`from ehr_sandbox.exercises.builtin "
        "import emr_ehr`), `report` a dict with keys `emr`, `ehr` and "
        "`ehr_hospital_down`, each a dict of metric -> value: duplicate_tests, allergies_missed, conflicts_caught, "
        "rekey_errors, people_with_access, organizations_with_access (the last hand-in counts). Nothing in the "
        "clinic needs changing or exporting for this."
    ),
    criteria=(
        Criterion(
            "benefits measured",
            2,
            _ben_benefits,
            "Claims about EHRs should rest on measurement, not on a list (VI.P.6).",
        ),
        Criterion(
            "privacy cost measured",
            2,
            _ben_privacy,
            "Every person who can see a record is a disclosure risk: sharing widens access (HIPAA minimum necessary, X.P.2).",
        ),
        Criterion(
            "downtime measured",
            1,
            _ben_downtime,
            "A shared record is only as available as the systems behind it (contingency planning, 164.308(a)(7)).",
        ),
    ),
    hints=(Hint("`sc.run('ehr', down='hospital').metrics` gives the downtime run."),),
    expects=(Expect("submit-report"),),
    solution=Solution(
        lambda att: _ben_report(att, privacy=True), description="report every measured metric"
    ),
    wrong_solutions={
        "benefits-only": Solution(
            lambda att: _ben_report(att, privacy=False),
            fails="privacy cost measured",
            message="who could see the record",
            description="report only the benefits",
        ),
        "swapped-modes": Solution(
            _ben_swapped,
            fails="benefits measured",
            message="report what you measured",
            description="report the EMR and EHR runs the wrong way round",
        ),
        "bulk-export": Solution(
            _ben_export,
            fails="no collateral damage",
            message="unexpected export",
            description="export the whole clinic to compare",
        ),
        "answer-key": Solution(
            _ben_answer_key,
            fails="benefits measured",
            message="report what you measured",
            description="fill the scenario cache with made-up runs and report those",
        ),
    },
)
