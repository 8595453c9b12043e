"""The classroom server: the same Session behind a process boundary (FHIR REST + SMART v2).

Start it with ``ehr-sandbox serve --data DIR``; students connect with
:func:`ehr_sandbox.connect` or any FHIR client. Keys, stores, graders and course state live
only in the server process and its data directory.
"""

from ehr_sandbox.server.app import ServerApp, create_app

__all__ = ["ServerApp", "create_app"]
