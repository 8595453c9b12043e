"""A patient chart: what one session may see of one patient, on one page.

``session.chart(patient)`` reads through the session (policy, masking and audit apply to
every search it runs), so the chart shows exactly what that user may see: a masked element is
simply absent. Sections: problems, medications, allergies, immunizations, vitals (with a
trend plot), abnormal results, encounters and notes, under a banner with the alerts
(allergies, security labels, break-the-glass state). Each section has ``to_pandas()``.

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=2, seed=1)
>>> s = sb.login("dr.patel")
>>> c = s.chart(s.search("Patient").first())
>>> [sec.name for sec in c.sections][:3]
['problems', 'medications', 'allergies']
>>> "Problems" in str(c) and "<h3>Problems" in c._repr_html_()
True
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ehr_sandbox.display.format import (
    codes_of,
    concept_text,
    day,
    esc,
    html_table,
    person_name,
    quantity_text,
    text_table,
)
from ehr_sandbox.display.svg import line_svg

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

NORMAL_FLAGS = frozenset({"N", "NEG", "ND", "S"})
"""Interpretation codes that are not abnormal (v3-ObservationInterpretation)."""

TREND_CODES = {
    "8480-6": "Systolic BP (mmHg)",
    "8462-4": "Diastolic BP (mmHg)",
    "29463-7": "Weight (kg)",
    "39156-5": "BMI (kg/m2)",
    "8867-4": "Heart rate (/min)",
}
"""LOINC codes of the vitals the trend plot draws, with their labels."""

RECENT_VITALS = 3
"""The vitals section lists the measurements of this many most recent visits."""

NOTE_EXCERPT = 240


@dataclass
class Section:
    """One section of a chart: a title, column names and rows (dicts).

    >>> Section("problems", "Problems", ["problem"], [{"problem": "Asthma"}]).to_pandas().shape
    (1, 1)
    """

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (columns in order, also when there are no rows).

        Returns
        -------
        pandas.DataFrame
            One row per chart row.

        Examples
        --------
        >>> df = Section("problems", "Problems", ["problem", "code"], []).to_pandas()
        >>> list(df.columns), len(df)
        (['problem', 'code'], 0)
        """
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def __len__(self) -> int:
        return len(self.rows)

    def to_html(self) -> str:
        """The section as escaped HTML (a heading and a table, or "none recorded").

        >>> "&lt;x&gt;" in Section("notes", "Notes", ["a"], [{"a": "<x>"}]).to_html()
        True
        """
        body = (
            html_table(self.columns, self.rows)
            if self.rows
            else "<p class='ehr-none'>none recorded or visible</p>"
        )
        return (
            f"<section class='ehr-section' data-section='{esc(self.name)}'>"
            f"<h3>{esc(self.title)} ({len(self.rows)})</h3>{body}</section>"
        )

    def to_text(self) -> str:
        """The section as a text table.

        >>> print(Section("x", "X", ["a"], []).to_text())
        X (0)
          none recorded or visible
        """
        head = f"{self.title} ({len(self.rows)})"
        if not self.rows:
            return head + "\n  none recorded or visible"
        table = text_table(self.columns, self.rows, limit=15)
        more = f"\n  ... {len(self.rows) - 15} more" if len(self.rows) > 15 else ""
        return head + "\n" + "\n".join("  " + line for line in table.splitlines()) + more

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()


@dataclass
class Chart:
    """A patient's chart as one session sees it (build it with ``session.chart(patient)``).

    Sections are also attributes (``chart.problems``); ``str(chart)`` is the text form and
    notebooks show the HTML form.

    Parameters
    ----------
    patient_id : str
        The patient.
    viewer : str
        Who sees it (username and role).
    banner : dict
        Name, birth date, sex, MRN and id, as far as the viewer may see them.
    alerts : list of str
        Allergies, security labels, break-the-glass state.
    sections : list of Section
        The chart's sections, in display order.
    trend_svg : str, optional
        The vitals trend plot (inline SVG).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> c = s.chart(s.search("Patient").first())
    >>> c.banner["MRN"], c.viewer
    ('MRN00000001', 'dr.patel (physician)')
    >>> len(c.problems) == s.search("Condition").count()
    True
    """

    patient_id: str
    viewer: str
    banner: dict[str, str]
    alerts: list[str]
    sections: list[Section]
    trend_svg: str = ""

    def section(self, name: str) -> Section:
        """The section called ``name`` (``problems``, ``vitals``, ...).

        Parameters
        ----------
        name : str
            One of problems, medications, allergies, immunizations, vitals, results, encounters,
            notes.

        Returns
        -------
        Section

        Raises
        ------
        KeyError
            No such section (the message lists them).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> c = s.chart(s.search("Patient").first())
        >>> c.section("problems").title, "problem" in c.section("problems").columns
        ('Problems', True)
        >>> c.section("labs")
        Traceback (most recent call last):
        ...
        KeyError: "no chart section 'labs': ['problems', 'medications', 'allergies', 'immunizations', 'vitals', 'results', 'encounters', 'notes']"
        """
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(f"no chart section {name!r}: {[s.name for s in self.sections]}")

    def __getattr__(self, name: str) -> Section:
        if name.startswith("_") or name in ("sections",):
            raise AttributeError(name)
        try:
            return self.section(name)
        except KeyError:
            raise AttributeError(name) from None

    def to_html(self) -> str:
        """The whole chart as a self-contained, escaped HTML fragment (plot as inline SVG).

        Returns
        -------
        str
            A ``<div class='ehr-chart'>`` with the banner, the alerts and every section.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> c = s.chart(s.search("Patient").first())
        >>> html = c.to_html()
        >>> html.startswith("<div class='ehr-chart'"), html.count("<section"), "<svg" in html
        (True, 8, True)
        """
        banner = " · ".join(
            f"<span data-field='{esc(k)}'><b>{esc(k)}</b> {esc(v)}</span>"
            for k, v in self.banner.items()
            if v
        )
        alerts = "".join(f"<li>{esc(a)}</li>" for a in self.alerts)
        alert_html = (
            f"<ul class='ehr-alerts'>{alerts}</ul>"
            if alerts
            else "<p class='ehr-alerts'>No alerts</p>"
        )
        parts = [
            "<div class='ehr-chart' style='font-family:sans-serif'>",
            f"<div class='ehr-banner' style='background:#eef3f8;padding:6px'>{banner}"
            f"<br><small>seen as {esc(self.viewer)}</small>{alert_html}</div>",
        ]
        for s in self.sections:
            parts.append(s.to_html())
            if s.name == "vitals" and self.trend_svg:
                parts.append(f"<figure class='ehr-trend'>{self.trend_svg}</figure>")
        parts.append("</div>")
        return "".join(parts)

    def to_text(self) -> str:
        """The whole chart as plain text (for a terminal).

        Returns
        -------
        str
            The banner line, the viewer, the alerts and each section's text table.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> c = s.chart(s.search("Patient").first())
        >>> print(c.to_text().splitlines()[0])
        name: Scott Jay Hunter, born: 1976-02-25, sex: male, MRN: MRN00000001, id: 6f8d9a7c6c00b1a8
        """
        head = ", ".join(f"{k}: {v}" for k, v in self.banner.items() if v)
        lines = [head, f"(seen as {self.viewer})"]
        lines += [f"! {a}" for a in self.alerts] or ["no alerts"]
        for s in self.sections:
            lines += ["", s.to_text()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name} {len(s.rows)}" for s in self.sections)
        return f"<Chart Patient/{self.patient_id} as {self.viewer}: {counts}>"


def _patient_id(patient: Any) -> str:
    if isinstance(patient, Mapping):
        return str(patient.get("id"))
    text = str(patient)
    return text.split("/", 1)[1] if text.startswith("Patient/") else text


def build_chart(session: Session, patient: Any) -> Chart:
    """Read ``patient``'s chart through ``session`` (raises NotFound when it may not see them).

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=2).login("dr.patel")
    >>> build_chart(s, s.search("Patient").first()).problems.to_pandas().columns[0]
    'problem'
    """
    pid = _patient_id(patient)
    pat = session.read("Patient", pid)
    ref = f"Patient/{pid}"

    def find(rtype: str, **params: Any) -> list[dict[str, Any]]:
        if not session.can_read(rtype):
            return []
        return session.search(rtype, patient=ref, **params).fetch()

    allergies = find("AllergyIntolerance")
    sections = [
        _problems(find("Condition")),
        _medications(find("MedicationRequest")),
        _allergies(allergies),
        _immunizations(find("Immunization")),
    ]
    vitals = find("Observation", category="vital-signs")
    sections.append(_vitals(vitals))
    sections.append(_results(find("Observation", category="laboratory")))
    sections.append(_encounters(find("Encounter")))
    sections.append(_notes(find("DocumentReference")))
    ctx = session.context
    return Chart(
        patient_id=pid,
        viewer=f"{session.user.username} ({session.role})",
        banner=_banner(pat),
        alerts=_alerts(pat, allergies, pid in ctx.btg),
        sections=sections,
        trend_svg=_trend(vitals),
    )


def _banner(p: Mapping[str, Any]) -> dict[str, str]:
    mrn = ""
    for ident in p.get("identifier") or []:
        if isinstance(ident, Mapping) and "MR" in codes_of(ident.get("type")):
            mrn = str(ident.get("value") or "")
    return {
        "name": person_name(p) or "(name not shown)",
        "born": str(p.get("birthDate") or ""),
        "sex": str(p.get("gender") or ""),
        "MRN": mrn,
        "id": str(p.get("id") or ""),
    }


def _alerts(p: Mapping[str, Any], allergies: list[dict[str, Any]], btg: bool) -> list[str]:
    out: list[str] = []
    if btg:
        out.append("Break-the-glass access is active for this patient (every view is reviewed)")
    for lab in (p.get("meta") or {}).get("security") or []:
        if isinstance(lab, Mapping) and lab.get("code") not in (None, "N", "REDACTED"):
            out.append(f"Security label: {lab.get('display') or lab.get('code')}")
    for a in allergies:
        if "active" in codes_of(a.get("clinicalStatus")) or not a.get("clinicalStatus"):
            crit = a.get("criticality")
            out.append(
                f"Allergy: {concept_text(a.get('code'))}"
                + (f" (criticality {crit})" if crit else "")
            )
    return out


def _by_date(rows: list[dict[str, Any]], key: str = "date") -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r.get(key) or "", reverse=True)


def _problems(conds: list[dict[str, Any]]) -> Section:
    rows = [
        {
            "problem": concept_text(c.get("code")),
            "code": ", ".join(codes_of(c.get("code"))[:1]),
            "status": concept_text(c.get("clinicalStatus")),
            "onset": day(c.get("onsetDateTime") or c.get("onsetPeriod")),
            "recorded": day(c.get("recordedDate")),
            "note": " ".join(
                str(n.get("text"))
                for n in c.get("note") or []
                if isinstance(n, Mapping) and n.get("text")
            ),
        }
        for c in conds
    ]
    return Section(
        "problems",
        "Problems",
        ["problem", "code", "status", "onset", "recorded", "note"],
        _by_date(rows, "onset"),
    )


def _medications(meds: list[dict[str, Any]]) -> Section:
    rows = []
    for m in meds:
        dosage = "; ".join(
            str(d.get("text"))
            for d in m.get("dosageInstruction") or []
            if isinstance(d, Mapping) and d.get("text")
        )
        rows.append(
            {
                "medication": concept_text(m.get("medicationCodeableConcept")),
                "status": m.get("status") or "",
                "dosage": dosage,
                "authored": day(m.get("authoredOn")),
            }
        )
    rows.sort(key=lambda r: r["authored"], reverse=True)
    rows.sort(key=lambda r: r["status"] != "active")  # stable: active first, newest first
    return Section(
        "medications", "Medications", ["medication", "status", "dosage", "authored"], rows
    )


def _allergies(items: list[dict[str, Any]]) -> Section:
    rows = [
        {
            "substance": concept_text(a.get("code")),
            "criticality": a.get("criticality") or "",
            "reaction": ", ".join(
                concept_text(m)
                for r in a.get("reaction") or []
                if isinstance(r, Mapping)
                for m in r.get("manifestation") or []
            ),
            "status": concept_text(a.get("clinicalStatus")),
            "recorded": day(a.get("recordedDate")),
        }
        for a in items
    ]
    return Section(
        "allergies",
        "Allergies",
        ["substance", "criticality", "reaction", "status", "recorded"],
        rows,
    )


def _immunizations(items: list[dict[str, Any]]) -> Section:
    rows = [
        {
            "vaccine": concept_text(i.get("vaccineCode")),
            "date": day(i.get("occurrenceDateTime")),
            "status": i.get("status") or "",
        }
        for i in items
    ]
    return Section("immunizations", "Immunizations", ["vaccine", "date", "status"], _by_date(rows))


def _obs_values(o: Mapping[str, Any]) -> list[tuple[str, str, str, float | None]]:
    """(code, name, text value, numeric value) of an Observation and its components."""
    out = []
    for part in [o, *(o.get("component") or [])]:
        if not isinstance(part, Mapping):
            continue
        q = part.get("valueQuantity")
        text = (
            quantity_text(q)
            or concept_text(part.get("valueCodeableConcept"))
            or str(part.get("valueString") or "")
        )
        if not text:
            continue
        num = q.get("value") if isinstance(q, Mapping) else None
        codes = codes_of(part.get("code"))
        out.append((codes[0] if codes else "", concept_text(part.get("code")), text, num))
    return out


def _vitals(obs: list[dict[str, Any]]) -> Section:
    dates = sorted({day(o.get("effectiveDateTime")) for o in obs}, reverse=True)[:RECENT_VITALS]
    rows = [
        {"date": day(o.get("effectiveDateTime")), "measure": name, "value": text}
        for o in obs
        if day(o.get("effectiveDateTime")) in dates
        for _, name, text, _ in _obs_values(o)
    ]
    rows.sort(key=lambda r: (r["date"], r["measure"]), reverse=True)
    return Section("vitals", "Recent vitals", ["date", "measure", "value"], rows)


def _trend(obs: list[dict[str, Any]]) -> str:
    series: dict[str, list[tuple[str, float]]] = {}
    for o in obs:
        when = day(o.get("effectiveDateTime"))
        for code, _, _, num in _obs_values(o):
            if code in TREND_CODES and isinstance(num, int | float) and when:
                series.setdefault(TREND_CODES[code], []).append((when, float(num)))
    for pts in series.values():
        pts.sort()
    return line_svg("Vital sign trends", series)


def _results(obs: list[dict[str, Any]]) -> Section:
    rows = []
    for o in obs:
        flags = [c for i in o.get("interpretation") or [] for c in codes_of(i)]
        abnormal = [f for f in flags if f not in NORMAL_FLAGS]
        if not abnormal:
            continue
        rng = ""
        for rr in o.get("referenceRange") or []:
            if isinstance(rr, Mapping):
                rng = f"{quantity_text(rr.get('low'))} - {quantity_text(rr.get('high'))}".strip(
                    " -"
                )
        for _, name, text, _ in _obs_values(o):
            rows.append(
                {
                    "date": day(o.get("effectiveDateTime")),
                    "test": name,
                    "value": text,
                    "flag": ",".join(abnormal),
                    "reference range": rng,
                }
            )
    return Section(
        "results",
        "Abnormal results",
        ["date", "test", "value", "flag", "reference range"],
        _by_date(rows),
    )


def _encounters(encs: list[dict[str, Any]]) -> Section:
    rows = [
        {
            "date": day(e.get("period")),
            "type": ", ".join(concept_text(t) for t in e.get("type") or []),
            "class": concept_text(e.get("class")),
            "status": e.get("status") or "",
            "reason": ", ".join(concept_text(r) for r in e.get("reasonCode") or []),
        }
        for e in encs
    ]
    return Section(
        "encounters", "Encounters", ["date", "type", "class", "status", "reason"], _by_date(rows)
    )


def _note_text(doc: Mapping[str, Any]) -> str:
    for c in doc.get("content") or []:
        att = c.get("attachment") if isinstance(c, Mapping) else None
        if not isinstance(att, Mapping) or not str(att.get("contentType", "")).startswith("text/"):
            continue
        try:
            text = base64.b64decode(att.get("data") or "", validate=False).decode(
                "utf-8", "replace"
            )
        except (binascii.Error, ValueError):
            continue
        text = " ".join(text.split())
        return text if len(text) <= NOTE_EXCERPT else text[: NOTE_EXCERPT - 1] + "…"
    return ""


def _notes(docs: list[dict[str, Any]]) -> Section:
    rows = [
        {
            "date": day(d.get("date")),
            "type": concept_text(d.get("type")),
            "description": d.get("description") or "",
            "excerpt": _note_text(d),
        }
        for d in docs
    ]
    return Section("notes", "Notes", ["date", "type", "description", "excerpt"], _by_date(rows))
