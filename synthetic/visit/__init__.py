"""Visit-step providers: each documents one concern of a visit, in order.

A step is an object with a ``name`` and ``run(ctx, patient_state, visit_state)``; the engine
runs :data:`VISIT_STEPS` for every visit and :meth:`synthetic.engine.Engine.add_step` adds more
(front office, rooming...). Steps share a :class:`VisitState` (times, clinician, diagnoses,
claim lines) and the patient's :class:`PatientState`.

>>> [s.name for s in VISIT_STEPS]
['booking', 'charting', 'measuring', 'ordering', 'treating', 'prescribing', 'immunizing', 'closing']
"""

from __future__ import annotations

from synthetic.visit.booking import Booking
from synthetic.visit.charting import Charting
from synthetic.visit.closing import Closing
from synthetic.visit.immunizing import Immunizing
from synthetic.visit.measuring import Measuring
from synthetic.visit.ordering import Ordering
from synthetic.visit.prescribing import Prescribing, renew_between_visits
from synthetic.visit.state import PatientState, VisitState
from synthetic.visit.treating import Treating

VISIT_STEPS = (
    Booking,
    Charting,
    Measuring,
    Ordering,
    Treating,
    Prescribing,
    Immunizing,
    Closing,
)
"""The default visit steps, in the order they run."""

__all__ = [
    "VISIT_STEPS",
    "Booking",
    "Charting",
    "Closing",
    "Immunizing",
    "Measuring",
    "Ordering",
    "PatientState",
    "Prescribing",
    "Treating",
    "VisitState",
    "renew_between_visits",
]
