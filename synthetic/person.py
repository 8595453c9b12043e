"""Demographics of one synthetic person, drawn from pools built once.

Faker is slow per call, so it runs once per process with a fixed seed to fill name and address
pools; each patient then draws from the pools with its own random stream.

>>> import random
>>> pools = name_pools()
>>> p = make_person(random.Random(1), pools, birth=730000, sex="female")
>>> p.sex, p.gender_code, bool(p.given and p.family and p.postal_code)
('female', 'F', True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any

from synthetic.disk_cache import cached_json

RACES: tuple[tuple[str, str, float], ...] = (
    ("2106-3", "White", 0.60),
    ("2054-5", "Black or African American", 0.13),
    ("2028-9", "Asian", 0.06),
    ("1002-5", "American Indian or Alaska Native", 0.01),
    ("2076-8", "Native Hawaiian or Other Pacific Islander", 0.005),
    ("2131-1", "Other Race", 0.195),
)
"""OMB race categories (CDC Race & Ethnicity code system) with rough US census shares."""

HISPANIC_SHARE = 0.19
"""Share of Hispanic or Latino ethnicity (US census, 2020 order of magnitude)."""

LANGUAGES: tuple[tuple[str, str, float], ...] = (
    ("en-US", "English (United States)", 0.85),
    ("es", "Spanish", 0.11),
    ("zh", "Chinese", 0.02),
    ("vi", "Vietnamese", 0.02),
)

MARITAL: tuple[tuple[str, str, float], ...] = (
    ("M", "Married", 0.5),
    ("S", "Never Married", 0.32),
    ("D", "Divorced", 0.11),
    ("W", "Widowed", 0.07),
)


@dataclass(frozen=True, slots=True)
class NamePools:
    """Name, street and town pools (built once per process with a fixed seed).

    >>> name_pools().towns[0][1]
    'OH'
    """

    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    streets: tuple[str, ...]
    towns: tuple[tuple[str, str, str], ...]  # (city, state, postal code)
    area_code: str


@cache
def name_pools(state: str = "OH", area_code: str = "614") -> NamePools:
    """Build the pools for practices in ``state`` (cached in memory and on disk; Faker runs
    only on a miss, see :mod:`synthetic.disk_cache`).

    >>> len(name_pools().family) >= 500
    True
    """
    import importlib.util

    spec = importlib.util.find_spec("faker")
    faker_file = spec.origin if spec is not None and spec.origin else "faker"
    data = cached_json(
        f"name-pools-{_slug(state)}-{_slug(area_code)}",
        lambda: _build_pools(state),
        (__file__, faker_file),  # our code and Faker's version decide the pools
    )
    return NamePools(
        tuple(data["female"]),
        tuple(data["male"]),
        tuple(data["family"]),
        tuple(data["streets"]),
        tuple((c, s, z) for c, s, z in data["towns"]),
        area_code,
    )


def _build_pools(state: str) -> dict[str, list[Any]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(20260101)
    female = sorted({fake.first_name_female() for _ in range(1500)})
    male = sorted({fake.first_name_male() for _ in range(1500)})
    family = sorted({fake.last_name() for _ in range(3000)})
    streets = sorted({f"{fake.building_number()} {fake.street_name()}" for _ in range(2000)})
    towns = sorted({(fake.city(), state, fake.zipcode_in_state(state)) for _ in range(12)})
    return {"female": female, "male": male, "family": family, "streets": streets, "towns": towns}


@dataclass(slots=True)
class Person:
    """One person's demographics; dates are ordinal days.

    >>> make_person(random.Random(0), name_pools(), birth=700000, sex="female").deceased is None
    True
    """

    sex: str
    birth: int
    given: str
    middle: str
    family: str
    street: str
    city: str
    state: str
    postal_code: str
    phone: str
    email: str
    ssn: str
    race: tuple[str, str]
    hispanic: bool
    language: tuple[str, str]
    marital: tuple[str, str]
    deceased: int | None = None

    @property
    def gender_code(self) -> str:
        """US Core birth sex code (F/M).

        >>> make_person(random.Random(0), name_pools(), birth=1, sex="male").gender_code
        'M'
        """
        return "F" if self.sex == "female" else "M"


def _weighted(rng: random.Random, table: tuple[tuple[str, str, float], ...]) -> tuple[str, str]:
    x = rng.random() * sum(w for _, _, w in table)
    for code, display, w in table:
        x -= w
        if x < 0:
            return code, display
    return table[-1][0], table[-1][1]


def _slug(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum()) or "x"


def make_person(rng: random.Random, pools: NamePools, *, birth: int, sex: str) -> Person:
    """Draw a person born on ordinal day ``birth`` with ``sex`` ('female' or 'male').

    Phone numbers use the fictional 555-01xx range, e-mail the reserved example domains and
    SSNs the never-issued 9xx area, so none can belong to a real person.

    >>> p = make_person(random.Random(3), name_pools(), birth=720000, sex="male")
    >>> p.phone.split("-")[1], p.ssn[:3], p.email.endswith(".example.org")
    ('555', '999', True)
    """
    given = rng.choice(pools.female if sex == "female" else pools.male)
    middle = rng.choice(pools.female if sex == "female" else pools.male)
    family = rng.choice(pools.family)
    city, state, postal = rng.choice(pools.towns)
    n = rng.randrange(10_000)
    return Person(
        sex=sex,
        birth=birth,
        given=given,
        middle=middle,
        family=family,
        street=rng.choice(pools.streets),
        city=city,
        state=state,
        postal_code=postal,
        phone=f"{pools.area_code}-555-01{rng.randrange(100):02d}",
        email=f"{_slug(given)}.{_slug(family)}{n}@mail.example.org",
        ssn=f"999-{rng.randrange(10, 100)}-{rng.randrange(1000, 10000)}",
        race=_weighted(rng, RACES),
        hispanic=rng.random() < HISPANIC_SHARE,
        language=_weighted(rng, LANGUAGES),
        marital=_weighted(rng, MARITAL),
    )
