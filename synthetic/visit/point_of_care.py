"""Visit step: CLIA-waived point-of-care results name the kit lot they ran on.

Rapid strep, urine hCG and the urine dipstick are tested in the office on a kit (``Device``)
whose quality control ran and passed at the start of that day (the practice's QC log,
:class:`synthetic.clinic_logs.ClinicLogs`); each result Observation gets ``device`` and the
``method`` the workflows write.

>>> PointOfCare.name
'point-of-care'
"""

from __future__ import annotations

from typing import Any

from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.visit.state import PatientState, VisitState

METHOD = freeze({"text": "CLIA-waived point-of-care test"})


class PointOfCare:
    """Links the visit's point-of-care results to the kit in use that day.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> poc = [o for o in of("Observation") if "device" in o]
    >>> len(poc) > 0, {o["method"]["text"] for o in poc}
    (True, {'CLIA-waived point-of-care test'})
    """

    name = "point-of-care"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.clinic = eng.clinic
        # test LOINC -> panel id, for the panels run on a POC kit
        self.panel_of: dict[str, str] = {}
        for panel in self.clinic.by_panel:
            lab = eng.cat.labs.get(panel)
            if lab is not None:
                for t in lab.tests:
                    self.panel_of[t.loinc] = panel
        self.panels = frozenset(self.clinic.by_panel)

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Set the kit on every POC result of this visit.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> poc = [o for o in of("Observation") if "device" in o]
        >>> all(o["device"]["reference"].startswith("Device/") for o in poc)
        True
        """
        if vs.virtual or not (vs.labs_done & self.panels):
            return
        enc = ctx.encounter
        for r in reversed(ctx.out):
            kind = r["resourceType"]
            if kind == "Encounter":
                break
            if kind != "Observation" or r.get("encounter") != enc:
                continue
            panel = self.panel_of.get(r["code"]["coding"][0]["code"])
            if panel is not None and panel in vs.labs_done:
                r["device"] = {"reference": self.clinic.kit_for(panel, vs.day)}
                r["method"] = METHOD
