"""Play the same care journey in EMR mode and in EHR mode, and measure the difference.

``Scenario(seed).run("emr")`` builds a fresh network, walks every shared person through the
journey (clinic visit -> lab -> ED -> cardiology consult -> clinic follow-up) and measures at
each point of care what the clinician could actually see *through their own Session*:

* **duplicate_tests** — lipid panels the cardiologist ordered although one had been resulted
  in the network within :data:`RECENT_DAYS` days;
* **allergies_missed** / **conflicts_caught** — the penicillin allergy known only to the ED,
  and whether the planned amoxicillin was held (the order is written: on-hold or active);
* **medications_missed** — the statin (clinic) and aspirin (ED) not visible at the consult;
* **steps_to_information** and **hours_to_lipids** — user actions to assemble the
  information, and hours until the cardiologist has lipid values (a repeat test waits for
  the lab). Minutes per action are a stated time model (:data:`MINUTES`), applied to the
  actions the run actually performed;
* **rekey_errors** — errors made typing documents in (EMR);
* **completeness_<visit>** — the share of the person's journey facts in existence at that
  visit that the clinician could see;
* **people_with_access** / **organizations_with_access** — who could see the ED's record of
  the person (the privacy cost of sharing);
* ``run(mode, down="hospital")`` repeats it with one organization's system down.

>>> sorted(MINUTES)
['exchange-query', 'fax', 'lab-turnaround', 'rekey-item']
>>> allergy_conflict({"764146007"}, "308192"), allergy_conflict(set(), "308192")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ArgumentError, NotFound, SandboxError
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.documents import DocumentItem, chart_items, items_of
from ehr_sandbox.network.journey import DAYS, Person
from ehr_sandbox.network.network import MODES, Network

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "METRICS",
    "MINUTES",
    "RECENT_DAYS",
    "Scenario",
    "ScenarioResult",
    "VisitMeasure",
    "allergy_conflict",
]

RECENT_DAYS = 30
"""A lipid panel resulted within this many days need not be repeated."""
MINUTES: dict[str, float] = {
    "fax": 10.0,
    "rekey-item": 2.0,
    "exchange-query": 1.0,
    "lab-turnaround": 24 * 60.0,
}
"""Time model per action: send/receive a fax, type one item, one exchange query, a lab result."""
METRICS: tuple[str, ...] = (
    "duplicate_tests",
    "allergies_missed",
    "conflicts_caught",
    "medications_missed",
    "steps_to_information",
    "hours_to_lipids",
    "rekey_errors",
    "completeness_clinic-visit",
    "completeness_ed-visit",
    "completeness_cardiology-consult",
    "completeness_clinic-follow-up",
    "people_with_access",
    "organizations_with_access",
    "unlinked_records",
)
"""The metrics every run reports, in table order."""
FACTS = ("allergy:penicillin", "medication:atorvastatin", "medication:aspirin", "lab:lipid-panel")
_FACT_DAY = {
    "medication:atorvastatin": DAYS["clinic-visit"],
    "lab:lipid-panel": DAYS["lab-draw"],
    "allergy:penicillin": DAYS["ed-visit"],
    "medication:aspirin": DAYS["ed-visit"],
}
_MEDS = {code: f"medication:{key}" for key, (code, _, _) in fb.MEDS.items()}
_LIPID = "2093-3"


def allergy_conflict(allergy_codes: set[str], rxnorm: str) -> bool:
    """True when prescribing ``rxnorm`` conflicts with one of the recorded allergies.

    The scenario's one rule: a penicillin allergy (SNOMED 764146007) against the penicillins
    the cardiologist might order.

    Parameters
    ----------
    allergy_codes : set of str
        SNOMED codes of the allergies the clinician can see.
    rxnorm : str
        The drug to be ordered.

    Returns
    -------
    bool

    Examples
    --------
    >>> allergy_conflict({"764146007"}, "308192"), allergy_conflict({"764146007"}, "316672")
    (True, False)
    """
    return fb.PENICILLIN[0] in allergy_codes and rxnorm in fb.PENICILLIN_CONFLICTS


@dataclass(frozen=True)
class VisitMeasure:
    """What one clinician could see at one visit: completeness and the facts missing.

    Parameters
    ----------
    person, visit, org : str
    completeness : float
        Share of the person's journey facts (existing by then) the clinician could see.
    missing : tuple of str
        The facts not seen (``medication:atorvastatin``, ``lab:lipid-panel`` ...).

    Examples
    --------
    >>> m = VisitMeasure("P1", "ed-visit", "hospital", 0.0, ("medication:atorvastatin", "lab:lipid-panel"))
    >>> m.completeness, len(m.missing)
    (0.0, 2)
    """

    person: str
    visit: str
    org: str
    completeness: float
    missing: tuple[str, ...]


@dataclass
class ScenarioResult:
    """One run: its mode, the organization down (if any), the metrics and per-visit measures.

    Parameters
    ----------
    mode : {"emr", "ehr"}
    down : str or None
    metrics : dict of str to float
        See the module docstring.
    visits : list of VisitMeasure
    network : Network, optional
        The network the run played on.

    Examples
    --------
    >>> r = ScenarioResult("emr", None, {"duplicate_tests": 2.0}, [VisitMeasure("P1", "clinic-visit", "clinic", 1.0, ())])
    >>> r.metrics["duplicate_tests"], r.visits[0].org
    (2.0, 'clinic')
    """

    mode: str
    down: str | None
    metrics: dict[str, float]
    visits: list[VisitMeasure] = field(default_factory=list)
    network: Network | None = field(default=None, repr=False)

    def visits_frame(self) -> pd.DataFrame:
        """Per-visit completeness as a DataFrame (person, visit, org, completeness, missing).

        Returns
        -------
        pandas.DataFrame
            One row per :class:`VisitMeasure`.

        Examples
        --------
        >>> r = ScenarioResult("ehr", None, {}, [VisitMeasure("P1", "clinic-visit", "clinic", 1.0, ()),
        ...                                      VisitMeasure("P1", "ed-visit", "hospital", 0.5, ("lab:lipid-panel",))])
        >>> df = r.visits_frame()
        >>> list(df.columns), df["completeness"].tolist()
        (['person', 'visit', 'org', 'completeness', 'missing'], [1.0, 0.5])
        """
        import pandas as pd

        return pd.DataFrame([v.__dict__ for v in self.visits])


def _facts(items: list[DocumentItem], *, today: date) -> set[str]:
    """Journey facts among chart items (a lipid panel counts when recent)."""
    out: set[str] = set()
    for it in items:
        if it.kind == "allergy" and it.code == fb.PENICILLIN[0]:
            out.add("allergy:penicillin")
        elif it.kind == "medication" and it.code in _MEDS:
            out.add(_MEDS[it.code])
        elif (
            it.kind == "lab"
            and it.code == _LIPID
            and it.date
            and (today - date.fromisoformat(it.date[:10])).days <= RECENT_DAYS
        ):
            out.add("lab:lipid-panel")
    return out


class Scenario:
    """The same journey played in both modes (results cached per mode and downtime).

    >>> Scenario(seed=1, patients=8, people=2).run("paper")
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: mode: expected 'emr' or 'ehr', got 'paper'
    """

    def __init__(
        self,
        seed: int = 7,
        *,
        patients: int = 16,
        people: int = 4,
        reference_date: str = "2026-01-01",
    ) -> None:
        self.seed = seed
        self.patients = patients
        self.people = people
        self.reference_date = reference_date
        self._results: dict[tuple[str, str | None], ScenarioResult] = {}

    # -- running ------------------------------------------------------------------------------
    def run(self, mode: str, *, down: str | None = None) -> ScenarioResult:
        """Play the journey in ``mode`` (optionally with organization ``down``); return metrics.

        Each run builds a fresh network; results are cached per ``(mode, down)``.

        Parameters
        ----------
        mode : {"emr", "ehr"}
        down : str, optional
            An organization out of service for the run.

        Returns
        -------
        ScenarioResult

        Raises
        ------
        ArgumentError
            An unknown mode or organization.

        Examples
        --------
        >>> sc = Scenario(seed=3, patients=8, people=2)
        >>> emr, ehr = sc.run("emr"), sc.run("ehr")
        >>> emr.metrics["allergies_missed"] > ehr.metrics["allergies_missed"], emr.metrics["rekey_errors"] > 0 == ehr.metrics["rekey_errors"]
        (True, True)
        >>> sc.run("ehr") is ehr  # cached
        True
        """
        if mode not in MODES:
            raise ArgumentError(f"mode: expected 'emr' or 'ehr', got {mode!r}")
        key = (mode, down)
        if key not in self._results:
            net = Network.generate(
                self.seed,
                mode,
                self.patients,
                people=self.people,
                reference_date=self.reference_date,
            )
            if down is not None and down not in net.organizations:
                raise ArgumentError(
                    f"down: expected one of {', '.join(sorted(net.organizations))}, got {down!r}"
                )
            self._results[key] = _Run(net, down).play()
        return self._results[key]

    def compare(self, *, down: str | None = "hospital") -> pd.DataFrame:
        """Side-by-side metrics: EMR, EHR (and both again with ``down`` out of service).

        Parameters
        ----------
        down : str or None, default "hospital"
            None compares the two modes only.

        Returns
        -------
        pandas.DataFrame
            One row per metric, one column per run.

        Examples
        --------
        >>> df = Scenario(seed=3, patients=8, people=2).compare(down=None)
        >>> list(df.columns), float(df.loc["rekey_errors", "EHR"])
        (['EMR', 'EHR'], 0.0)
        """
        import pandas as pd

        runs = [("EMR", self.run("emr")), ("EHR", self.run("ehr"))]
        if down:
            runs += [
                (f"EMR, {down} down", self.run("emr", down=down)),
                (f"EHR, {down} down", self.run("ehr", down=down)),
            ]
        frame = pd.DataFrame(
            {name: [r.metrics[m] for m in METRICS] for name, r in runs}, index=list(METRICS)
        )
        frame.index.name = "metric"
        return frame

    def plot(self, *, down: str | None = "hospital") -> Figure:
        """A figure: outcome counts, completeness by visit, and the privacy cost, per run."""
        from matplotlib.figure import (
            Figure,
        )  # no pyplot: no global backend or figure registry touched

        frame = self.compare(down=down)
        fig = Figure(figsize=(13, 4.2))
        groups = [
            (
                "Outcomes (per journey)",
                [
                    "duplicate_tests",
                    "allergies_missed",
                    "conflicts_caught",
                    "medications_missed",
                    "rekey_errors",
                ],
            ),
            ("Completeness at each visit", [m for m in METRICS if m.startswith("completeness_")]),
            (
                "Privacy cost: who can see the ED record",
                ["people_with_access", "organizations_with_access"],
            ),
        ]
        for n, (title, rows) in enumerate(groups):
            ax = fig.add_subplot(1, 3, n + 1)
            sub = frame.loc[rows]
            width = 0.8 / len(sub.columns)
            for i, col in enumerate(sub.columns):
                ax.bar(
                    [x + i * width for x in range(len(rows))], sub[col].tolist(), width, label=col
                )
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))])
            ax.set_xticklabels(
                [r.replace("completeness_", "").replace("_", " ") for r in rows],
                rotation=30,
                ha="right",
                fontsize=8,
            )
            ax.set_title(title, fontsize=10)
        fig.axes[0].legend(fontsize=7)
        fig.suptitle(f"EMR vs EHR: the same journey, seed {self.seed}")
        fig.tight_layout()
        return fig


class _Run:
    """One play of the journey on one network."""

    def __init__(self, net: Network, down: str | None) -> None:
        self.net = net
        self.down = down
        self.mode = net.mode
        self.ref = net.reference_date
        self.steps = 0
        self.minutes = 0.0
        self.visits: list[VisitMeasure] = []
        self.sent: dict[str, list[str]] = {}
        if down and self.mode == "ehr":
            net.exchange.down.add(down)

    def year_before(self) -> str:
        return (self.ref - timedelta(days=365)).isoformat()

    def day(self, kind: str) -> date:
        return self.ref + timedelta(days=DAYS[kind])

    # -- what a clinician sees ------------------------------------------------------------------
    def visible(self, person: Person, org: str, username: str, when: date) -> set[str]:
        if org == self.down:
            return set()  # downtime: the chart is unreachable; paper only
        s = self.net.login(org, username)
        pid = person.records[org]
        seen = _facts(chart_items(s, pid), today=when)
        if self.mode == "ehr":
            try:
                outside = self.net.exchange.retrieve(s, org, pid)
                self.net.exchange.locate(s, org, pid)
            except (SandboxError, NotFound):
                return seen
            seen |= _facts(items_of(outside.resources), today=when)
        return seen

    def measure(self, person: Person, visit: str, org: str, username: str) -> set[str]:
        when = self.day(visit)
        seen = self.visible(person, org, username, when)
        offset = DAYS[visit]
        exist = [
            f for f in FACTS if _FACT_DAY[f] < offset
        ]  # facts recorded at this very visit do not count
        missing = tuple(f for f in exist if f not in seen)
        done = 1.0 if not exist else (len(exist) - len(missing)) / len(exist)
        self.visits.append(VisitMeasure(person.key, visit, org, round(done, 3), missing))
        return seen

    # -- the journey ------------------------------------------------------------------------------
    def play(self) -> ScenarioResult:
        people = self.net.journey.people
        consult: dict[str, dict[str, Any]] = {}
        for p in people:
            self.measure(p, "clinic-visit", "clinic", "dr.patel")
            if self.mode == "emr":
                self.emr_documents(p)
            self.measure(p, "ed-visit", "hospital", "dr.okafor")
            if self.mode == "emr" and self.down != "hospital":
                doc = self.net.send(
                    "fhir-document",
                    self.net.login("hospital", "dr.okafor"),
                    "hospital",
                    p.records["hospital"],
                    "clinic",
                    created=self.day("ed-visit").isoformat(),
                )
                self.rekey_into(doc, "clinic", p)
            steps_before, minutes_before = self.steps, self.minutes
            if self.mode == "emr":
                for doc in [
                    d for d in self.net.inbox("cardiology") if d.id in self.sent.get(p.key, [])
                ]:
                    self.rekey_into(doc, "cardiology", p)
            else:
                self.steps += 2
                self.minutes += 2 * MINUTES["exchange-query"]
            seen = self.measure(p, "cardiology-consult", "cardiology", "dr.nguyen")
            consult[p.key] = self.decide(p, seen)
            consult[p.key]["steps"] = self.steps - steps_before + consult[p.key]["extra_steps"]
            consult[p.key]["minutes"] = self.minutes - minutes_before
            self.measure(p, "clinic-follow-up", "clinic", "dr.patel")
        return ScenarioResult(self.mode, self.down, self.metrics(consult), self.visits, self.net)

    def emr_documents(self, p: Person) -> None:
        """Referral letter to cardiology; the lab's faxed result to the ordering clinic."""
        if self.down != "clinic":
            letter = self.net.send(
                "referral-letter",
                self.net.login("clinic", "dr.patel"),
                "clinic",
                p.records["clinic"],
                "cardiology",
                created=self.day("clinic-visit").isoformat(),
                reason="chest tightness on exertion; please evaluate",
                since=self.year_before(),
            )
            self.sent.setdefault(p.key, []).append(letter.id)
            self.steps += 1
            self.minutes += MINUTES["fax"]
        if self.down != "lab":
            fax = self.net.send(
                "visit-summary",
                self.net.org("lab").sandbox.system_session(),
                "lab",
                p.records["lab"],
                "clinic",
                created=self.day("lab-draw").isoformat(),
            )
            self.rekey_into(fax, "clinic", p, count=False)

    def rekey_into(self, doc: Any, org: str, p: Person, *, count: bool = True) -> None:
        if org == self.down:
            return
        result = self.net.rekey(doc, self.net.login(org, "ma.garcia"), p.records[org])
        if count:
            self.steps += 1 + result.steps
            self.minutes += MINUTES["fax"] + MINUTES["rekey-item"] * result.steps

    def decide(self, p: Person, seen: set[str]) -> dict[str, Any]:
        """The cardiologist orders lipids if none are visible and plans amoxicillin prophylaxis."""
        if self.down == "cardiology":
            return {
                "duplicate": False,
                "caught": False,
                "missed_allergy": True,
                "extra_steps": 0,
                "meds_missed": 2,
                "hours": MINUTES["lab-turnaround"] / 60,
            }
        s = self.net.login("cardiology", "dr.nguyen")
        pk = p.ref("cardiology")
        dr = f"Practitioner/{s.user.practitioner_id}"
        today = self.day("cardiology-consult").isoformat()
        duplicate = "lab:lipid-panel" not in seen
        extra = 0
        if duplicate:
            s.create(
                fb.service_request(
                    pk,
                    dr,
                    today,
                    fb.LIPID_PANEL,
                    performer=self.net.org("lab").name,
                    reason="Lipids before treatment decision",
                )
            )
            extra = 3  # order, draw, result
        caught = allergy_conflict(
            {fb.PENICILLIN[0]} if "allergy:penicillin" in seen else set(), fb.MEDS["amoxicillin"][0]
        )
        s.create(
            fb.medication_request(
                pk, dr, today, "amoxicillin", status="on-hold" if caught else "active"
            )
        )
        meds_missed = sum(
            1 for f in ("medication:atorvastatin", "medication:aspirin") if f not in seen
        )
        hours = MINUTES["lab-turnaround"] / 60 if duplicate else None
        return {
            "duplicate": duplicate,
            "caught": caught,
            "missed_allergy": "allergy:penicillin" not in seen,
            "extra_steps": extra,
            "meds_missed": meds_missed,
            "hours": hours,
        }

    # -- metrics ----------------------------------------------------------------------------------
    def metrics(self, consult: dict[str, dict[str, Any]]) -> dict[str, float]:
        n = max(1, len(consult))
        out: dict[str, float] = {
            "duplicate_tests": float(sum(c["duplicate"] for c in consult.values())),
            "allergies_missed": float(sum(c["missed_allergy"] for c in consult.values())),
            "conflicts_caught": float(sum(c["caught"] for c in consult.values())),
            "medications_missed": float(sum(c["meds_missed"] for c in consult.values())),
            "steps_to_information": round(sum(c["steps"] for c in consult.values()) / n, 2),
            "hours_to_lipids": round(
                sum(
                    c["hours"] if c["hours"] is not None else c["minutes"] / 60
                    for c in consult.values()
                )
                / n,
                2,
            ),
            "rekey_errors": float(len(self.net.rekey_errors)),
        }
        for visit in ("clinic-visit", "ed-visit", "cardiology-consult", "clinic-follow-up"):
            vals = [v.completeness for v in self.visits if v.visit == visit]
            out[f"completeness_{visit}"] = round(sum(vals) / len(vals), 3) if vals else 0.0
        access = [self.net.people_with_access(p.key) for p in self.net.journey.people]
        out["people_with_access"] = round(sum(len(a) for a in access) / n, 2)
        out["organizations_with_access"] = round(sum(len({o for o, _ in a}) for a in access) / n, 2)
        out["unlinked_records"] = self._unlinked()
        return out

    def _unlinked(self) -> float:
        """Records of journey people the MPI did not link to the clinic's (missed matches);
        NaN in EMR mode, where nothing is matched at all."""
        if self.mode != "ehr":
            return float("nan")
        mpi = self.net.exchange.mpi
        count = 0
        for p in self.net.journey.people:
            home = mpi.enterprise_id(f"clinic/Patient/{p.records['clinic']}")
            count += sum(
                1
                for org, pid in p.records.items()
                if mpi.enterprise_id(f"{org}/Patient/{pid}") != home
            )
        return count
