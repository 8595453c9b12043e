"""Small, escaping-safe formatters shared by the chart and the reprs.

Everything shown comes from patient data, which is untrusted: HTML is built only through
:func:`html_table` and :func:`esc`, which escape every value.

>>> concept_text({"coding": [{"code": "E11.9", "display": "Type 2 diabetes"}]})
'Type 2 diabetes'
>>> quantity_text({"value": 147, "unit": "mm[Hg]"})
'147 mm[Hg]'
>>> html_table(["a"], [{"a": "<script>"}])
'<table class="ehr-table"><thead><tr><th>a</th></tr></thead><tbody><tr><td>&lt;script&gt;</td></tr></tbody></table>'
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (``None`` is empty).

    >>> esc('<b a="1">'), esc(None)
    ('&lt;b a=&quot;1&quot;&gt;', '')
    """
    return "" if value is None else html.escape(str(value), quote=True)


def concept_text(concept: Any) -> str:
    """A CodeableConcept's (or Coding's) words: its text, else the first display or code.

    >>> concept_text({"text": "Pollen"}), concept_text(None)
    ('Pollen', '')
    """
    if not isinstance(concept, Mapping):
        return "" if concept is None else str(concept)
    if concept.get("text"):
        return str(concept["text"])
    for c in concept.get("coding") or ([concept] if "code" in concept else []):
        if isinstance(c, Mapping) and (c.get("display") or c.get("code")):
            return str(c.get("display") or c.get("code"))
    return ""


def codes_of(concept: Any) -> list[str]:
    """The codes of a CodeableConcept.

    >>> codes_of({"coding": [{"code": "H"}, {"code": "A"}]})
    ['H', 'A']
    """
    if not isinstance(concept, Mapping):
        return []
    return [
        str(c["code"])
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and "code" in c
    ]


def quantity_text(q: Any) -> str:
    """``value unit`` of a Quantity (empty when absent).

    >>> quantity_text(None), quantity_text({"value": 9.7, "unit": "%"})
    ('', '9.7 %')
    """
    if not isinstance(q, Mapping) or q.get("value") is None:
        return ""
    unit = q.get("unit") or q.get("code") or ""
    return (
        f"{q['value']:g} {unit}".strip() if isinstance(q["value"], int | float) else str(q["value"])
    )


def day(value: Any) -> str:
    """The date part of a FHIR date/dateTime/Period (``""`` when absent).

    >>> day("2025-09-25T10:20:00-05:00"), day({"start": "2020-01-02T10:00:00Z"})
    ('2025-09-25', '2020-01-02')
    """
    if isinstance(value, Mapping):
        value = value.get("start") or value.get("end")
    return str(value)[:10] if value else ""


def person_name(resource: Mapping[str, Any] | None) -> str:
    """``Given Family`` of a Patient or Practitioner (the first name; empty when masked).

    >>> person_name({"name": [{"given": ["Scott", "Jay"], "family": "Hunter"}]})
    'Scott Jay Hunter'
    """
    for n in (resource or {}).get("name") or []:
        if isinstance(n, Mapping):
            if n.get("text"):
                return str(n["text"])
            parts = [*(n.get("given") or []), n.get("family") or ""]
            return " ".join(str(p) for p in parts if p)
    return ""


def html_table(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, limit: int | None = None
) -> str:
    """An escaped HTML table of ``rows`` (dicts) in ``columns`` order.

    >>> html_table(["x"], [{"x": 1}, {"x": 2}], limit=1).count("<tr>")
    2
    """
    shown = rows if limit is None else rows[:limit]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in columns) + "</tr>" for r in shown
    )
    return f'<table class="ehr-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def text_table(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, limit: int | None = None
) -> str:
    """A fixed-width text table (cells cut at 40 characters).

    >>> print(text_table(["a", "b"], [{"a": 1, "b": "x"}]))
    a  b
    -  -
    1  x
    """
    shown = rows if limit is None else rows[:limit]
    cells = [[_cut(r.get(c)) for c in columns] for r in shown]
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _cut(value: Any, width: int = 40) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
