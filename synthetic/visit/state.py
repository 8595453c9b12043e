"""What the visit steps share: the patient's running state and one visit's working state.

>>> from synthetic.profile import Profile
>>> PatientState(Profile()).first
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthetic.profile import Profile
from synthetic.timeline import Visit


class PatientState:
    """What the engine remembers while walking one patient's visits.

    >>> from synthetic.profile import Profile
    >>> PatientState(Profile()).doses
    {}
    """

    __slots__ = (
        "profile",
        "cond_ids",
        "rx",
        "lab_days",
        "doses",
        "vaccine_last",
        "pregnancy_ids",
        "first",
        "conflicts",
        "coverages",
        "secondary",
        "screen_days",
        "awv_billed",
        "pregnancy_tdap",
        "person",
        "birth",
        "end",
        "pcp",
        "growth_z",
        "pregnancies",
        "weight",
        "renewals",
    )

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.cond_ids: dict[str, str] = {}
        self.rx: dict[str, tuple[dict[str, Any], int, str]] = {}
        self.lab_days: dict[str, int] = {}
        self.doses: dict[str, int] = {}
        self.vaccine_last: dict[str, int] = {}
        self.pregnancy_ids: dict[int, str] = {}
        self.first = True
        self.conflicts: frozenset[str] = profile.conflicts()
        self.coverages: list[tuple[int, int, str, Any]] = []
        self.secondary: dict[str, tuple[str, Any]] = {}
        """Primary Coverage id -> (secondary Coverage id, its payer)."""
        self.screen_days: dict[str, int] = {}
        self.awv_billed = False
        self.pregnancy_tdap: set[int] = set()
        self.person: Any = None
        self.birth = 0
        self.end = 0
        self.pcp = ""
        self.growth_z: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.pregnancies: list[tuple[int, int, str]] = []
        self.weight: float | None = None
        self.renewals: list[dict[str, Any]] = []
        """Prescriptions renewed between visits (no encounter), in the order written."""

    def coverage_on(self, day: int) -> tuple[str, Any] | None:
        """(Coverage id, payer) in force on ``day``, or None.

        >>> from synthetic.profile import Profile
        >>> s = PatientState(Profile()); s.coverages.append((0, 10, "c", "p")); s.coverage_on(5)
        ('c', 'p')
        """
        for start, end, cid, payer in self.coverages:
            if start <= day < end:
                return cid, payer
        return None


@dataclass(slots=True, init=False)
class VisitState:
    """One visit's working state, filled in by the steps in order.

    Made once per visit: ``__init__`` is written out (the generated one checks a sentinel per
    defaulted field); it sets every field to the default declared here.

    >>> VisitState(Visit(1, "acute"), 1, 30.0).lines
    []
    """

    v: Visit
    day: int
    age: float
    tcode: str = ""
    atype: Any = None
    minutes: int = 0
    start_s: str = ""
    minute: int = 0
    end_s: str = ""
    physician: str = ""
    phys_ref: str = ""
    ma_ref: str = ""
    acute: Any = None
    acute_code: Any = None
    preg: Any = None
    preg_lmp: int = 0
    addressed: list[Any] = field(default_factory=list)
    security: Any = None
    dx_refs: list[str] = field(default_factory=list)
    dx_codes: list[dict[str, Any]] = field(default_factory=list)
    claim_dx: list[dict[str, Any]] = field(default_factory=list)
    reason_cc: Any = None
    acute_ref: str | None = None
    lines: list[Any] = field(default_factory=list)
    effects: dict[str, list[Any]] = field(default_factory=dict)
    labs_done: set[str] = field(default_factory=set)
    antibiotic_given: bool = False
    virtual: bool = False
    cov_id: str = ""
    payer: Any = None
    appointment_id: str = ""

    def __init__(self, v: Visit, day: int, age: float) -> None:
        self.v = v
        self.day = day
        self.age = age
        self.tcode = ""
        self.atype = None
        self.minutes = 0
        self.start_s = ""
        self.minute = 0
        self.end_s = ""
        self.physician = ""
        self.phys_ref = ""
        self.ma_ref = ""
        self.acute = None
        self.acute_code = None
        self.preg = None
        self.preg_lmp = 0
        self.addressed = []
        self.security = None
        self.dx_refs = []
        self.dx_codes = []
        self.claim_dx = []
        self.reason_cc = None
        self.acute_ref = None
        self.lines = []
        self.effects = {}
        self.labs_done = set()
        self.antibiotic_given = False
        self.virtual = False
        self.cov_id = ""
        self.payer = None
        self.appointment_id = ""
