"""Named reports over SQL on FHIR views, run in DuckDB (results as pandas, Arrow or a plot).

``Reports(source)`` binds the catalogue to a data source (the Session passes itself);
``reports.catalog()`` lists the reports, ``reports.run(name, **params)`` runs one and
``reports.sql(query)`` runs your own SQL over the view tables.

>>> from datetime import date
>>> class Source:
...     reference_date = date(2026, 1, 1)
...     def resources(self, resource_type):
...         return []
>>> Reports(Source()).run("ar_aging").columns
['bucket', 'claims', 'insurance', 'patient', 'balance']
"""

from __future__ import annotations

from ehr_sandbox.reports.definitions import load_report, load_view, report_names, view_names
from ehr_sandbox.reports.report import Report
from ehr_sandbox.reports.runner import Reports

__all__ = ["Report", "Reports", "load_report", "load_view", "report_names", "view_names"]
