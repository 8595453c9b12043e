"""Visit step: diagnostic tests the MA performs, with results in the workflows' shapes.

* A 12-lead ECG (procedure ``ECG-12`` ordered by a condition module): an Observation 11524-6
  with heart rate, PR, QRS, QT and the Bazett QTc as components, a rhythm Observation 8884-9
  (atrial fibrillation for a patient with it), and a final DiagnosticReport interpreted by the
  visit's physician.
* Spirometry (procedure ``SPIRO``, adults): FEV1, FVC, FEV1/FVC and FEV1 % predicted from the
  NHANES III equations (``spirometry.toml``, shared with ``ehr_sandbox.workflows.diagnostics``),
  in the ranges of the patient's lung disease (content).
* Vision (Snellen each eye) and hearing (pure-tone audiometry each ear) at the preventive visits
  of the ages the content names (AAP Bright Futures).

>>> Diagnostics.name
'diagnostics'
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Any

from synthetic.builders.clinical_ma import SANDBOX_OBS
from synthetic.builders.common import coding, qty
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import (
    OBSERVATION_CATEGORY,
    SANDBOX_PROCEDURE,
    V2_0074,
    V3_OBSERVATION_INTERPRETATION,
)
from synthetic.visit.side_rng import SideRng
from synthetic.visit.state import PatientState, VisitState

INTERP = V3_OBSERVATION_INTERPRETATION
DR_CATEGORY = V2_0074
OBS_CATEGORY = OBSERVATION_CATEGORY
AUDIO_FREQS = (500, 1000, 2000, 4000)
SNELLEN_PASS = ("20/15", "20/20", "20/20", "20/25", "20/30", "20/40")
SNELLEN_REFER = ("20/50", "20/70", "20/100")


def qtc_bazett(qt_ms: float, heart_rate: float) -> int:
    """QTc (Bazett): QT / sqrt(RR in seconds), rounded to a whole ms.

    >>> qtc_bazett(400, 75)
    447
    """
    return round(qt_ms / math.sqrt(60.0 / heart_rate))


def spirometry_table() -> dict[str, Any]:
    """The NHANES III reference equations (``synthetic/content/data/spirometry.toml``).

    >>> spirometry_table()["obstruction_ratio"]
    0.7
    """
    text = (resources.files("synthetic.content") / "data" / "spirometry.toml").read_text("utf-8")
    return tomllib.loads(text)


def predicted(table: dict[str, Any], sex: str, measure: str, age: float, height_cm: float) -> float:
    """Predicted FEV1 or FVC (L): b0 + b1*age + b2*age^2 + b3*height^2.

    >>> round(predicted(spirometry_table(), "male", "fev1", 45, 178), 2)
    4.09
    """
    c = table[sex][measure]
    return c["b0"] + c["b1"] * age + c["b2"] * age * age + c["b3"] * height_cm * height_cm


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [coding(OBS_CATEGORY, code)]}]


class Diagnostics:
    """ECG and spirometry results for the visit's procedures; vision and hearing screens.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> names = {r["code"]["coding"][0]["display"] for r in of("Observation")}
    >>> "EKG study" in names, "Visual acuity uncorrected Right eye" in names
    (True, True)
    """

    name = "diagnostics"

    def __init__(self, eng: Any, side: SideRng) -> None:
        self.eng = eng
        self.side = side
        cm = eng.content.clinical_ma
        self.cm = cm
        self.screens = {s.kind: s for s in cm.sensory_screen}
        self.bands = {b.condition: b for b in cm.spirometry_band}
        self.spiro = spirometry_table()
        self.codes = eng.cat.observation_codes
        wanted = {"procedure|ECG-12", "procedure|SPIRO"}
        # conditions (or a preset) whose visits may include an ECG or spirometry
        self.tested = frozenset(
            k for k, c in eng.cat.conditions.items() if wanted & set(c.procedures)
        )
        self.preset_tests = bool(wanted & set(eng.preset.visit_procedures))
        self.proc = {
            k: freeze({"coding": [coding(SANDBOX_PROCEDURE, k, v)], "text": v})  # shared
            for k, v in (
                ("VISION-SCREEN", "Visual acuity screening"),
                ("AUDIOMETRY", "Pure tone audiometry screening, air conduction"),
            )
        }

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Record the results of the visit's diagnostic tests.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> ecgs = [p for p in of("Procedure") if code(p) == "ECG-12"]
        >>> ekg = [o for o in of("Observation") if o["code"]["coding"][0]["display"] == "EKG study"]
        >>> len(ecgs) == len(ekg) > 0
        True
        """
        if vs.virtual:
            return
        done = set()
        tested = (
            self.preset_tests
            or any(c.key in self.tested for c in vs.addressed)
            or (vs.acute is not None and vs.acute.key in self.tested)
        )
        for r in reversed(ctx.out) if tested else ():
            if r["resourceType"] == "Encounter":
                break
            if r["resourceType"] == "Procedure" and r.get("encounter") == ctx.encounter:
                done.add(r["code"]["coding"][0]["code"])
        rng = self.side.of(ctx)
        if "ECG-12" in done:
            self.ecg(ctx, rng, st, vs)
        if "SPIRO" in done:
            self.spirometry(ctx, rng, st, vs)
        if vs.v.wellness:
            age = int(vs.age)
            for kind, sc in self.screens.items():
                if age in sc.ages and st.screen_days.get(kind, -(10**6)) < vs.day - 300:
                    st.screen_days[kind] = vs.day
                    refer = rng.random() < sc.refer_share
                    (self.vision if kind == "vision" else self.hearing)(ctx, rng, vs, refer)

    # ------------------------------------------------------------------ builders

    def _obs(self, ctx: RecordContext, code: dict[str, Any], cat: str) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": ctx.new_id("obs"),
            "meta": meta("exam"),
            "status": "final",
            "category": _category(cat),
            "code": code,
            "subject": ctx.subject,
            "encounter": ctx.encounter,
            "effectiveDateTime": ctx.when,
            "performer": ctx.performer,
        }

    def _report(
        self,
        ctx: RecordContext,
        code: dict[str, Any],
        results: list[dict[str, Any]],
        conclusion: str,
        interpreter: str | None,
    ) -> None:
        dr: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "id": ctx.new_id("dr"),
            "meta": meta("DiagnosticReport"),
            "status": "final",
            "category": [{"coding": [coding(DR_CATEGORY, "OTH", "Other")]}],
            "code": code,
            "subject": ctx.subject,
            "encounter": ctx.encounter,
            "effectiveDateTime": ctx.when,
            "issued": ctx.when,
            "performer": ctx.performer,
            "result": [{"reference": f"Observation/{o['id']}"} for o in results],
            "conclusion": conclusion,
        }
        if interpreter:
            dr["resultsInterpreter"] = [{"reference": interpreter}]
        for o in results:
            ctx.add(o)
        ctx.add(dr)

    def ecg(self, ctx: RecordContext, rng: Any, st: PatientState, vs: VisitState) -> None:
        """A 12-lead ECG with intervals, rhythm and the physician's interpretation.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> ekg = next(o for o in of("Observation") if o["code"]["coding"][0]["display"] == "EKG study")
        >>> [c["code"]["coding"][0]["display"] for c in ekg["component"]]
        ['Heart rate', 'P-R Interval', 'QRS duration', 'Q-T interval', 'Q-T interval corrected']
        """
        e = self.cm.ecg
        dx = st.profile.diagnoses.get("atrial_fibrillation")
        af = dx is not None and dx.recorded <= vs.day
        hr = self.eng.measures.last.get("heart_rate") or rng.randint(60, 90)
        qt = rng.randint(*e.qt_ms)
        comps = [("8867-4", hr, "/min")]
        if not af:
            comps.append(("8625-6", rng.randint(*e.pr_ms), "ms"))
        comps += [
            ("8633-0", rng.randint(*e.qrs_ms), "ms"),
            ("8634-8", qt, "ms"),
            ("8636-3", qtc_bazett(qt, hr), "ms"),
        ]
        obs = self._obs(ctx, self.codes["11524-6"], "procedure")
        obs["component"] = [
            {"code": self.codes[c], "valueQuantity": qty(v, u)} for c, v, u in comps
        ]
        rhythm = self._obs(ctx, self.codes["8884-9"], "procedure")
        rhythm["valueString"] = "Atrial fibrillation" if af else "Normal sinus rhythm"
        if af:
            rhythm["interpretation"] = [{"coding": [coding(INTERP, "A", "Abnormal")]}]
        self._report(
            ctx,
            self.codes["11524-6"],
            [obs, rhythm],
            f"{rhythm['valueString']}, rate {hr}/min",
            vs.phys_ref,
        )

    def spirometry(self, ctx: RecordContext, rng: Any, st: PatientState, vs: VisitState) -> None:
        """FEV1, FVC, ratio and FEV1 % predicted (adults with a measured height).

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> fev1 = next(o for o in of("Observation") if o["code"]["coding"][0]["display"] == "FEV1")
        >>> fev1["valueQuantity"]["code"], 0 < fev1["valueQuantity"]["value"] < 8
        ('L', True)
        """
        sex = st.person.sex
        last = self.eng.measures.last
        height = last.get("height")
        if height is None and last.get("weight") and last.get("bmi"):
            height = round(100 * math.sqrt(last["weight"] / last["bmi"]), 1)  # from today's BMI
        if height is None or vs.age < (20 if sex == "male" else 18):
            return  # the reference equations start at 18 (women) / 20 (men)
        band = next(
            (self.bands[k] for k in ("copd", "asthma") if k in st.profile.diagnoses),
            self.bands.get(""),
        )
        if band is None:
            return
        pct = rng.uniform(*band.fev1_percent)
        ratio = round(rng.uniform(*band.ratio), 2)
        fev1 = round(predicted(self.spiro, sex, "fev1", vs.age, height) * pct / 100, 2)
        fvc = round(fev1 / ratio, 2)
        pred = predicted(self.spiro, sex, "fev1", vs.age, height)
        values = [
            ("20150-9", fev1, "L"),
            ("19868-9", fvc, "L"),
            ("19926-5", round(100 * fev1 / fvc), "%"),
            ("20152-5", round(100 * fev1 / pred), "%"),
        ]
        results = []
        for code, v, unit in values:
            o = self._obs(ctx, self.codes[code], "procedure")
            o["valueQuantity"] = qty(v, unit)
            results.append(o)
        obstructed = fev1 / fvc < self.spiro["obstruction_ratio"]
        if obstructed:
            results[2]["interpretation"] = [
                {"coding": [coding(INTERP, "L", "Low")], "text": "below 0.70"}
            ]
        conclusion = (
            "airflow obstruction (FEV1/FVC below 0.70)" if obstructed else "no airflow obstruction"
        )
        code = {"coding": [coding(SANDBOX_PROCEDURE, "SPIRO", "Spirometry, with interpretation")]}
        code["text"] = "Spirometry"
        self._report(ctx, code, results, conclusion, vs.phys_ref)

    def vision(self, ctx: RecordContext, rng: Any, vs: VisitState, refer: bool) -> None:
        """Uncorrected Snellen acuity of each eye; refer when an eye is worse than 20/40.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> eyes = sorted({o["code"]["coding"][0]["display"] for o in of("Observation") if "Visual acuity" in o["code"]["coding"][0]["display"]})
        >>> eyes
        ['Visual acuity uncorrected Left eye', 'Visual acuity uncorrected Right eye']
        """
        bad_eye = rng.randrange(2) if refer else -1
        results = []
        for i, code in enumerate(("98499-7", "98498-9")):
            pool = SNELLEN_REFER if i == bad_eye else SNELLEN_PASS
            o = self._obs(ctx, self.codes[code], "exam")
            o["valueString"] = pool[rng.randrange(len(pool))]
            if i == bad_eye:
                o["interpretation"] = [
                    {"coding": [coding(INTERP, "A", "Abnormal")], "text": "refer: worse than 20/40"}
                ]
            results.append(o)
        conclusion = "refer to eye care" if refer else "pass"
        self._report(ctx, self.proc["VISION-SCREEN"], results, conclusion, None)

    def hearing(self, ctx: RecordContext, rng: Any, vs: VisitState, refer: bool) -> None:
        """Pure-tone thresholds (dB HL) each ear; refer above 25 dB HL at any frequency.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> ear = next(o for o in of("Observation") if o["code"]["coding"][0]["display"] == "Pure tone audiometry, right ear")
        >>> [c["code"]["text"] for c in ear["component"]][:2]
        ['500 Hz', '1000 Hz']
        """
        bad = (rng.randrange(2), AUDIO_FREQS[rng.randrange(4)]) if refer else None
        results = []
        notes = []
        for i, ear in enumerate(("right", "left")):
            values = {f: 5 * rng.randint(0, 4) for f in AUDIO_FREQS}
            if bad is not None and bad[0] == i:
                values[bad[1]] = 5 * rng.randint(6, 10)
            o = self._obs(
                ctx,
                {
                    "coding": [
                        coding(SANDBOX_OBS, f"audiometry-{ear}", f"Pure tone audiometry, {ear} ear")
                    ]
                },
                "exam",
            )
            o["component"] = [
                {"code": {"text": f"{f} Hz"}, "valueQuantity": qty(values[f], "dB")}
                for f in AUDIO_FREQS
            ]
            high = [f for f in AUDIO_FREQS if values[f] > 25]
            if high:
                o["interpretation"] = [{"coding": [coding(INTERP, "A", "Abnormal")]}]
                notes.append(f"{ear} ear above 25 dB HL at {', '.join(f'{h} Hz' for h in high)}")
            results.append(o)
        conclusion = ("refer: " + "; ".join(notes)) if notes else "pass at 25 dB HL"
        self._report(ctx, self.proc["AUDIOMETRY"], results, conclusion, None)
