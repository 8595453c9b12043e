"""The EMR/EHR network: organizations, the care journey, documents and re-keying (EMR mode),
the exchange with its master patient index (EHR mode), and measured scenarios.

>>> from ehr_sandbox.network import MasterPatientIndex, score_pair
>>> len(MasterPatientIndex())
0
>>> from ehr_sandbox.network import Network, Scenario
>>> Network.generate(seed=3, mode="ehr", patients=8, people=2).exchange.mpi.config.link_threshold
38.0
"""

from __future__ import annotations

from .documents import Document, DocumentItem, chart_items, items_of
from .exchange import OUTSIDE_TAG, Exchange, ExchangeSession, OutsideData, RecordLocation
from .journey import Journey, Person, Visit
from .matching import (
    Evaluation,
    FieldScore,
    MasterPatientIndex,
    MatchConfig,
    MatchScore,
    evaluate,
    jaro_winkler,
    score_pair,
    soundex,
)
from .network import MODES, Network
from .organizations import ORGANIZATION_SPECS, Organization
from .rekey import REKEYED_TAG, RekeyingError, RekeyResult
from .scenario import METRICS, Scenario, ScenarioResult, VisitMeasure, allergy_conflict

__all__ = [
    "METRICS",
    "MODES",
    "ORGANIZATION_SPECS",
    "OUTSIDE_TAG",
    "REKEYED_TAG",
    "Document",
    "DocumentItem",
    "Evaluation",
    "Exchange",
    "ExchangeSession",
    "FieldScore",
    "Journey",
    "MasterPatientIndex",
    "MatchConfig",
    "MatchScore",
    "Network",
    "Organization",
    "OutsideData",
    "Person",
    "RecordLocation",
    "RekeyResult",
    "RekeyingError",
    "Scenario",
    "ScenarioResult",
    "Visit",
    "VisitMeasure",
    "allergy_conflict",
    "chart_items",
    "evaluate",
    "items_of",
    "jaro_winkler",
    "score_pair",
    "soundex",
]
