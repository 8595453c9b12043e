"""ehr-sandbox: a small, real teaching EHR over synthetic FHIR R4 patients.

>>> from ehr_sandbox import Sandbox
>>> sb = Sandbox.generate(patients=3, seed=7)
>>> sb.login("ma.garcia").user.role
'medical_assistant'
"""

from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session
from ehr_sandbox.users import User

__version__ = "0.1.0"

__all__ = ["Sandbox", "Session", "User", "__version__", "connect"]


def connect(url: str, **credentials: str) -> object:
    """Connect to a classroom server (see :func:`ehr_sandbox.remote.connect`).

    >>> connect("http://127.0.0.1:9", token="t").base
    'http://127.0.0.1:9/fhir'
    """
    from ehr_sandbox.remote import connect as remote_connect

    return remote_connect(url, **credentials)
