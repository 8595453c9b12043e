"""Per-patient random streams.

Every patient draws from its own ``random.Random`` seeded from (seed, index), so a patient's
record does not depend on which worker made it or on the patients made before it.

>>> a, b = patient_rng(1, 5), patient_rng(1, 5)
>>> a.random() == b.random()
True
>>> patient_rng(1, 5).random() != patient_rng(1, 6).random()
True
"""

from __future__ import annotations

import random
from hashlib import blake2b

from synthetic.ids import patient_digest


def patient_rng(seed: int, index: int) -> random.Random:
    """The random stream of patient ``index`` in a dataset made with ``seed``.

    >>> isinstance(patient_rng(0, 0), random.Random)
    True
    """
    return random.Random(int.from_bytes(patient_digest(seed, index), "big"))


def named_rng(seed: int, name: str) -> random.Random:
    """A random stream for shared, non-patient data (the practice, the pools), keyed by name.

    >>> named_rng(0, "slots").random() == named_rng(0, "slots").random()
    True
    """
    digest = blake2b(f"{seed}:{name}".encode(), digest_size=16, key=b"ehr-sandbox/rng").digest()
    return random.Random(int.from_bytes(digest, "big"))
