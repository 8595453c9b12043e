"""ehr-sandbox: a small, real teaching EHR over synthetic FHIR R4 patients.

>>> from ehr_sandbox import Sandbox
>>> sb = Sandbox.generate(patients=3, seed=7)
>>> sb.login("ma.garcia").user.role
'medical_assistant'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.session import Session
    from ehr_sandbox.users import User

__version__ = "0.1.0"

_LAZY = {
    "Sandbox": "ehr_sandbox.sandbox",
    "Session": "ehr_sandbox.session",
    "User": "ehr_sandbox.users",
}


def __getattr__(name: str) -> Any:
    """``Sandbox``, ``Session`` and ``User`` import on first use, so a command line that
    only generates data does not load the EHR (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ehr_sandbox' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["Sandbox", "Session", "User", "__version__", "connect"]


def connect(url: str, **credentials: str) -> object:
    """Connect to a classroom server (see :func:`ehr_sandbox.remote.connect`).

    >>> connect("http://127.0.0.1:9", token="t").base
    'http://127.0.0.1:9/fhir'
    """
    from ehr_sandbox.remote import connect as remote_connect

    return remote_connect(url, **credentials)
