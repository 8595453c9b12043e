"""Readable HTML and text for the objects a notebook shows: search sets, sandboxes,
sessions, networks, courses, reports and results.

Each function takes the object and returns a string; the objects' ``_repr_html_`` (and for
a Result its ``__repr__``) are one-line hooks into these. Every value is escaped. A search
set's HTML runs the search (through its session: policy, masking and audit apply).

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=2, seed=1)
>>> "<table" in sandbox_html(sb) and "in memory" in sandbox_text(sb)
True
>>> s = sb.login("dr.patel")
>>> "physician" in session_html(s)
True
>>> "<td>" in searchset_html(s.search("Patient"))
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ehr_sandbox.display.format import (
    concept_text,
    day,
    esc,
    html_table,
    person_name,
    quantity_text,
    text_table,
)

SEARCH_ROWS = 20
"""A search set's HTML shows at most this many rows."""

_BOX = "<div class='ehr-repr' style='font-family:sans-serif'>"


def _kv_html(title: str, items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f"{_BOX}<b>{esc(title)}</b><table class='ehr-kv'>{rows}</table></div>"


def _kv_text(title: str, items: Mapping[str, Any]) -> str:
    return "\n".join([title, *(f"  {k}: {v}" for k, v in items.items())])


# ----------------------------------------------------------------------------- search sets
def resource_row(r: Mapping[str, Any]) -> dict[str, str]:
    """Key columns of any resource: id, what it is, when, value or status.

    >>> resource_row({"resourceType": "Observation", "id": "o1", "code": {"text": "BP"},
    ...               "effectiveDateTime": "2020-01-02", "valueQuantity": {"value": 1, "unit": "x"}})
    {'type': 'Observation', 'id': 'o1', 'what': 'BP', 'when': '2020-01-02', 'value/status': '1 x'}
    """
    rtype = str(r.get("resourceType", ""))
    what = person_name(r) if rtype in ("Patient", "Practitioner") else ""
    for key in ("code", "vaccineCode", "medicationCodeableConcept", "type", "class"):
        if not what and r.get(key):
            v = r[key]
            what = concept_text(v[0] if isinstance(v, list) and v else v)
    when = ""
    for key in (
        "effectiveDateTime",
        "occurrenceDateTime",
        "authoredOn",
        "period",
        "date",
        "onsetDateTime",
        "recordedDate",
        "birthDate",
        "start",
        "created",
    ):
        if r.get(key):
            when = day(r[key])
            break
    value = quantity_text(r.get("valueQuantity")) or concept_text(r.get("valueCodeableConcept"))
    return {
        "type": rtype,
        "id": str(r.get("id", "")),
        "what": what,
        "when": when,
        "value/status": value or str(r.get("status") or r.get("gender") or ""),
    }


_COLUMNS = ["type", "id", "what", "when", "value/status"]


def searchset_html(search_set: Any) -> str:
    """The search's matches as a table of key columns (runs the search).

    Parameters
    ----------
    search_set : SearchSet
        The search (run through its session: policy and audit apply).

    Returns
    -------
    str
        An HTML box: type, count, the query and up to ``SEARCH_ROWS`` rows.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> html = searchset_html(sb.login("dr.patel").search("Condition"))
    >>> "<b>Condition</b>: 4 result(s)" in html, html.count("<tr>")
    (True, 5)
    """
    rows = search_set.fetch()
    head = f"<b>{esc(search_set.resource_type)}</b>: {len(rows)} result(s)"
    more = f"<p>… {len(rows) - SEARCH_ROWS} more</p>" if len(rows) > SEARCH_ROWS else ""
    table = html_table(_COLUMNS, [resource_row(r) for r in rows[:SEARCH_ROWS]])
    return f"{_BOX}{head}<br><small>{esc(repr(search_set))}</small>{table}{more}</div>"


def searchset_text(search_set: Any) -> str:
    """The search's matches as a text table (runs the search).

    Parameters
    ----------
    search_set : SearchSet
        The search.

    Returns
    -------
    str
        A count line and a table of key columns.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> print(searchset_text(sb.login("dr.patel").search("Condition")).splitlines()[0])
    Condition: 4 result(s)
    >>> print(searchset_text(sb.login("fd.smith").search("Condition")).splitlines()[0])
    Condition: 0 result(s)
    """
    rows = search_set.fetch()
    return f"{search_set.resource_type}: {len(rows)} result(s)\n" + text_table(
        _COLUMNS, [resource_row(r) for r in rows[:SEARCH_ROWS]]
    )


# ----------------------------------------------------------------------------- sandbox, session
def _sandbox_items(sb: Any) -> dict[str, Any]:
    roles = Counter(u.role for u in sb.users)
    return {
        "file": Path(sb.path).name if sb.path else "in memory",
        "reference date": sb.reference_date,
        "encrypted at rest": "yes" if getattr(sb.codec, "encrypting", False) else "no",
        "staff": ", ".join(f"{n} {r}" for r, n in sorted(roles.items())),
        "audit events": sb.audit.count(),
    }


def sandbox_html(sb: Any) -> str:
    """A sandbox's summary (file, date, encryption, staff by role, audit size).

    Parameters
    ----------
    sb : Sandbox

    Returns
    -------
    str
        An HTML key/value box.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> "in memory" in sandbox_html(sb) and "2026-01-01" in sandbox_html(sb)
    True
    """
    return _kv_html("Sandbox", _sandbox_items(sb))


def sandbox_text(sb: Any) -> str:
    r"""A sandbox's summary as text.

    Parameters
    ----------
    sb : Sandbox

    Returns
    -------
    str

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> print("\n".join(sandbox_text(sb).splitlines()[:4]))
    Sandbox
      file: in memory
      reference date: 2026-01-01
      encrypted at rest: no
    """
    return _kv_text("Sandbox", _sandbox_items(sb))


def _session_items(s: Any) -> dict[str, Any]:
    ctx = s.context
    return {
        "user": f"{s.user.username} ({s.user.display})" if s.user.display else s.user.username,
        "role": s.role,
        "scopes": s.scopes_text or "(all the role allows)",
        "purpose of use": ctx.purpose,
        "patient context": s.patient_id or "",
        "break-the-glass": ", ".join(sorted(ctx.btg)) or "none",
    }


def session_html(s: Any) -> str:
    """Who a session is: user, role, scopes, purpose, patient context, break-the-glass.

    Parameters
    ----------
    s : Session

    Returns
    -------
    str
        An HTML key/value box.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> html = session_html(sb.login("rn.kim"))
    >>> "rn.kim" in html and "nurse" in html
    True
    """
    return _kv_html("Session", _session_items(s))


def session_text(s: Any) -> str:
    r"""A session's summary as text.

    Parameters
    ----------
    s : Session

    Returns
    -------
    str

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> print("\n".join(session_text(sb.login("dr.patel")).splitlines()[2:5]))
      role: physician
      scopes: (all the role allows)
      purpose of use: TREAT
    """
    return _kv_text("Session", _session_items(s))


# ----------------------------------------------------------------------------- network, course
def network_html(net: Any) -> str:
    """A network's organizations, mode, journey people and documents exchanged.

    Parameters
    ----------
    net : Network
        Anything with ``organizations`` (each with ``key``, ``name``, ``kind``), ``mode``,
        ``reference_date``, ``documents`` and ``rekey_errors``.

    Returns
    -------
    str
        An HTML box with a table of organizations.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> net = N(organizations={"rfm": N(key="rfm", name="Riverton Family Medicine", kind="primary-care")},
    ...         mode="hie", reference_date="2026-01-01", documents=[1, 2], rekey_errors=[])
    >>> html = network_html(net)
    >>> "(HIE mode" in html, "2 documents sent" in html, "Riverton Family Medicine" in html
    (True, True, True)
    """
    rows = [{"key": o.key, "name": o.name, "kind": o.kind} for o in net.organizations.values()]
    head = (
        f"<b>Network</b> ({esc(net.mode.upper())} mode, reference date {esc(net.reference_date)}): "
        f"{len(rows)} organizations, {len(net.documents)} documents sent, "
        f"{len(net.rekey_errors)} re-keying errors"
    )
    return f"{_BOX}{head}{html_table(['key', 'name', 'kind'], rows)}</div>"


def course_html(course: Any) -> str:
    """A course: students, assignments and results recorded.

    Parameters
    ----------
    course : Course
        Anything with ``name``, ``students``, ``assignments`` (each with ``exercise_id`` and
        ``due``) and ``results()``.

    Returns
    -------
    str
        An HTML box with a table of assignments.

    Examples
    --------
    >>> from types import SimpleNamespace as N
    >>> course = N(name="HIM 101", students=["al", "bo"], results=lambda: [],
    ...            assignments={"x": N(exercise_id="verify-identity", due="2026-02-01")})
    >>> html = course_html(course)
    >>> "2 students, 1 assignments, 0 results" in html, "verify-identity" in html
    (True, True)
    """
    rows = [
        {"exercise": a.exercise_id, "due": getattr(a, "due", "") or ""}
        for a in course.assignments.values()
    ]
    results = course.results()
    head = (
        f"<b>Course {esc(course.name)}</b>: {len(course.students)} students, "
        f"{len(course.assignments)} assignments, {len(results)} results"
    )
    return f"{_BOX}{head}{html_table(['exercise', 'due'], rows)}</div>"


# ----------------------------------------------------------------------------- results, reports
def result_text(result: Any) -> str:
    """One line: exercise, student, score, passed, failed criteria by name.

    >>> from types import SimpleNamespace as N
    >>> result_text(N(exercise_id="x", student="al", score=1.0, max_score=2.0, passed=False,
    ...                criteria=[N(name="c1", passed=False)], late=False, tampered=False))
    '<Result x, al: 1/2 not passed; failed: c1>'
    """
    failed = [c.name for c in result.criteria if not c.passed]
    flags = [f for f, on in (("late", result.late), ("tampered", result.tampered)) if on]
    tail = f"; failed: {', '.join(failed)}" if failed else ""
    tail += f" ({', '.join(flags)})" if flags else ""
    status = "passed" if result.passed else "not passed"
    return f"<Result {result.exercise_id}, {result.student}: {result.score:g}/{result.max_score:g} {status}{tail}>"


def report_plot_svg(report: Any) -> str:
    """The report's plot as inline SVG (``""`` when it has no rows or nothing to plot).

    Parameters
    ----------
    report : Report
        Anything with ``len()`` and ``plot(ax=...)``.

    Returns
    -------
    str
        An ``<svg>`` element (text kept as text), or ``""``.

    Examples
    --------
    >>> class Tiny:
    ...     def __init__(self, ys): self.ys = ys
    ...     def __len__(self): return len(self.ys)
    ...     def plot(self, ax): ax.plot(range(len(self.ys)), self.ys)
    >>> report_plot_svg(Tiny([])), report_plot_svg(Tiny([1.0, 3.0]))[:4]
    ('', '<svg')
    """
    if not len(report):
        return ""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ehr-sandbox"}):
        fig, ax = plt.subplots(figsize=(6, 2.6))
        try:
            report.plot(ax=ax)
            if not ax.has_data():
                return ""
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]
