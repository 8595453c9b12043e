"""Install the clinical MA's generated records on an engine (content ``clinical_ma.toml``).

Visit steps: :class:`~synthetic.visit.rooming.Rooming` after charting,
:class:`~synthetic.visit.screening.Screening` after measuring,
:class:`~synthetic.visit.point_of_care.PointOfCare` after ordering,
:class:`~synthetic.visit.diagnostics.Diagnostics` after treating. Record steps:
:class:`~synthetic.visit.episodes.Deliveries`, :class:`~synthetic.visit.episodes.Admissions`
and
:class:`~synthetic.visit.episodes.RefillRequests`. The practice's rooms, kits and QC log are
:class:`synthetic.clinic_logs.ClinicLogs`. Without ``clinical_ma`` content nothing is added.

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
>>> [s.name for s in e.steps if s.name in ("rooming", "screening", "point-of-care", "diagnostics")]
['rooming', 'screening', 'point-of-care', 'diagnostics']
>>> [s.name for s in e.record_steps]
['deliveries', 'admissions', 'refill-requests']
"""

from __future__ import annotations

from typing import Any

from synthetic.clinic_logs import ClinicLogs
from synthetic.visit.diagnostics import Diagnostics
from synthetic.visit.episodes import Admissions, Deliveries, RefillRequests
from synthetic.visit.point_of_care import PointOfCare
from synthetic.visit.rooming import Rooming
from synthetic.visit.screening import Screening
from synthetic.visit.side_rng import SideRng


def install(eng: Any) -> None:
    """Add the clinical MA steps and the clinic's logs to ``eng`` (when its content has them).

    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="pediatrics")
    >>> e.clinic is not None
    True
    """
    if getattr(eng.content, "clinical_ma", None) is None:
        return
    side = SideRng()
    eng.clinic = ClinicLogs(eng)
    eng.add_step(Rooming(eng), after="charting")
    eng.add_step(Screening(eng, side), after="measuring")
    eng.add_step(PointOfCare(eng), after="ordering")
    eng.add_step(Diagnostics(eng, side), after="treating")
    eng.add_record_step(Deliveries(eng, side))
    eng.add_record_step(Admissions(eng, side))
    eng.add_record_step(RefillRequests(eng, side))
