"""The versioned FHIR store (SQLite): create/update/read/vread/history/search, transactions.

>>> Store().count("Patient")
0
"""

from __future__ import annotations

from ehr_sandbox.crypto.codec import IdentityCodec, RowCodec
from ehr_sandbox.store.store import AlreadyExists, Store

__all__ = ["AlreadyExists", "IdentityCodec", "RowCodec", "Store"]
