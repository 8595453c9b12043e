"""Front-office content: the TOML/CSV tables under ``ehr_sandbox/workflows/data/``, read once.

Tables the generator needs as well (:data:`SHARED`, e.g. the spirometry reference equations)
are read from the one copy in ``synthetic/content/data/``.

Each table names its ``source``; a missing or malformed table is a :class:`ContentError`
naming the file and the field.

>>> table("templates")["template"][0]["method"]
'stream'
>>> "lunch" in {b["id"] for b in table("templates")["block"]}
True
"""

from __future__ import annotations

import csv
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from ehr_sandbox.errors import ContentError

__all__ = ["csv_rows", "table"]


SHARED = frozenset(
    {
        "carc.csv",
        "poc_tests.toml",
        "portal.toml",
        "rarc.csv",
        "spirometry.toml",
        "sterilization.toml",
        "templates.toml",
    }
)
"""Tables the generator uses too: they live once, in ``synthetic/content/data/``."""


def _text(name: str) -> str:
    # shared tables are read as files of the distribution: importing synthetic.content would
    # load the generator's content models, which the EHR's workflows never need
    if name in SHARED:
        folder = resources.files("synthetic").joinpath("content", "data")
    else:
        folder = resources.files("ehr_sandbox.workflows").joinpath("data")
    try:
        return folder.joinpath(name).read_text("utf-8")
    except FileNotFoundError as exc:
        raise ContentError(f"workflows/data/{name}: file not found") from exc


@cache
def table(name: str) -> dict[str, Any]:
    """The TOML table ``data/<name>.toml`` (cached; treat it as read-only).

    Parameters
    ----------
    name : str
        File stem, e.g. ``"templates"``.

    Returns
    -------
    dict
        The parsed table; it always has a ``source``.

    Raises
    ------
    ContentError
        When the file is missing, malformed or has no ``source``.

    Examples
    --------
    >>> table("templates")["double_booking"]["max_extra"]
    1
    """
    try:
        data = tomllib.loads(_text(f"{name}.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"workflows/data/{name}.toml: {exc}") from exc
    if not isinstance(data.get("source"), str) or not data["source"].strip():
        raise ContentError(f"workflows/data/{name}.toml: source: expected the table's source")
    return data


@cache
def csv_rows(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``data/<name>.csv`` (``#`` comment lines skipped), as dicts.

    Examples
    --------
    >>> any(r["code"] == "45" for r in csv_rows("carc"))
    True
    """
    lines = [ln for ln in _text(f"{name}.csv").splitlines() if ln and not ln.startswith("#")]
    return tuple(dict(r) for r in csv.DictReader(lines))
