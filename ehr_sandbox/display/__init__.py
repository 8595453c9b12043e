"""Notebook and terminal views: a patient chart and readable reprs of the main objects.

Everything here renders what it is given through escaping formatters (patient data is
untrusted) and reads patient data only through a session, so masked values never appear.

>>> from ehr_sandbox.display import Chart, Section, build_chart
>>> Section("x", "X", ["a"], []).to_pandas().columns.tolist()
['a']
"""

from __future__ import annotations

from ehr_sandbox.display.chart import Chart, Section, build_chart

__all__ = ["Chart", "Section", "build_chart"]
