"""Matplotlib figures as inline SVG (no files, no JavaScript, text kept as text).

>>> svg = line_svg("Weight", {"kg": [("2020-01-01", 80.0), ("2021-01-01", 82.5)]})
>>> svg.startswith("<svg") and "</svg>" in svg
True
>>> line_svg("Nothing", {})
''
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence


def line_svg(
    title: str,
    series: Mapping[str, Sequence[tuple[str, float]]],
    *,
    width: float = 6.0,
    height: float = 2.4,
) -> str:
    """One line per series of ``(ISO date, value)`` points, as an ``<svg>`` element.

    Labels are the caller's fixed words (series names, title); patient values only appear as
    plotted points and axis numbers. Empty input gives ``""``.

    Parameters
    ----------
    title : str
        The plot's title.
    series : mapping of str to sequence of (str, float)
        Series name to ``(ISO date, value)`` points; empty series are left out.
    width, height : float
        The figure's size in inches.

    Returns
    -------
    str
        The ``<svg>`` element, or ``""`` when there is nothing to plot.

    Examples
    --------
    >>> svg = line_svg("Weight", {"kg": [("2020-01-01", 80.0), ("2021-01-01", 82.5)], "lb": []})
    >>> svg.startswith("<svg"), "Weight" in svg, ">lb<" in svg
    (True, True, False)
    >>> line_svg("Nothing", {"kg": []})
    ''
    """
    points = {k: v for k, v in series.items() if v}
    if not points:
        return ""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from datetime import date

    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ehr-sandbox"}):
        fig, ax = plt.subplots(figsize=(width, height))
        try:
            for name, pts in points.items():
                xs = [date.fromisoformat(d[:10]) for d, _ in pts]
                ax.plot(xs, [v for _, v in pts], marker="o", markersize=3, label=name)
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=8, loc="best")
            ax.tick_params(labelsize=8)
            fig.autofmt_xdate()
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]
