"""The EMR/EHR network. For now: probabilistic patient matching (the master patient index).

>>> from ehr_sandbox.network import MasterPatientIndex, score_pair
>>> len(MasterPatientIndex())
0
"""

from __future__ import annotations

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

__all__ = [
    "Evaluation",
    "FieldScore",
    "MasterPatientIndex",
    "MatchConfig",
    "MatchScore",
    "evaluate",
    "jaro_winkler",
    "score_pair",
    "soundex",
]
