"""Lazy search sets, in the style of FHIR clients: build the query, run it when you iterate.

>>> # s = sandbox.login("dr.patel")
>>> # s.search("Observation", patient=p, code="http://loinc.org|8480-6").sort("-date").limit(5)
>>> SearchSet(None, "Observation", [("code", "http://loinc.org|8480-6")]).sort("-date").limit(5).params
[('code', 'http://loinc.org|8480-6'), ('_sort', '-date'), ('_count', '5')]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ehr_sandbox.session import Session


def normalize_params(
    params: Mapping[str, Any] | list[tuple[str, Any]] | None, kwargs: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Turn ``params``/keyword arguments into ``[(name, value), ...]``.

    Lists become repeated parameters (AND); a resource dict becomes its reference.

    >>> normalize_params({"code": ["a", "b"]}, {"patient": {"resourceType": "Patient", "id": "x"}})
    [('code', 'a'), ('code', 'b'), ('patient', 'Patient/x')]
    """
    items: list[tuple[str, Any]] = []
    if params is not None:
        items.extend(params.items() if isinstance(params, Mapping) else params)
    items.extend(kwargs.items())
    out: list[tuple[str, str]] = []
    for name, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            out.append((str(name), _as_text(v)))
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, dict) and "resourceType" in value and "id" in value:
        return f"{value['resourceType']}/{value['id']}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SearchSet:
    """A search not yet run. Chain ``sort``/``limit``/``include``/``where``; iterate to run.

    Every run goes through the session's policy: hidden resources never appear, and counts
    only count what the session may see. Build one with :meth:`Session.search`; chaining
    returns a new set and leaves the old one unchanged.

    Parameters
    ----------
    session : Session or None
        The session that runs it (None: a query that can be built and shown, not run).
    resource_type : str
        The FHIR type searched.
    params : list of (str, str)
        The search parameters so far (see :func:`normalize_params`).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> hr = s.search("Observation", code="http://loinc.org|8867-4")
    >>> hr.sort("-date").limit(2)
    <SearchSet Observation?code=http://loinc.org|8867-4&_sort=-date&_count=2>
    >>> len(hr.limit(2)), hr.count()
    (2, 5)
    """

    def __init__(self, session: Session | None, resource_type: str, params: list[tuple[str, str]]):
        self._session = session
        self.resource_type = resource_type
        self.params = list(params)

    def _with(self, extra: list[tuple[str, str]], *, replace: str | None = None) -> SearchSet:
        kept = [p for p in self.params if p[0] != replace] if replace else self.params
        return SearchSet(self._session, self.resource_type, kept + extra)

    def where(self, params: Mapping[str, Any] | None = None, **kwargs: Any) -> SearchSet:
        """Add search parameters (AND).

        >>> SearchSet(None, "Patient", []).where(family="Smith").params
        [('family', 'Smith')]
        """
        return self._with(normalize_params(params, kwargs))

    def sort(self, *keys: str) -> SearchSet:
        """Sort by search parameters; ``-`` for descending (``sort("-date")``).

        >>> SearchSet(None, "Observation", []).sort("-date", "code").params
        [('_sort', '-date,code')]
        """
        return self._with([("_sort", ",".join(keys))], replace="_sort")

    def limit(self, count: int) -> SearchSet:
        """At most ``count`` results (FHIR ``_count``).

        >>> SearchSet(None, "Patient", []).limit(3).params
        [('_count', '3')]
        """
        return self._with([("_count", str(int(count)))], replace="_count")

    def include(self, spec: str) -> SearchSet:
        """Also return referenced resources (``"Observation:performer"``), access-filtered.

        >>> SearchSet(None, "Observation", []).include("Observation:subject").params
        [('_include', 'Observation:subject')]
        """
        return self._with([("_include", spec)])

    def revinclude(self, spec: str) -> SearchSet:
        """Also return resources that point at the results (``"Provenance:target"``).

        >>> SearchSet(None, "Patient", []).revinclude("Provenance:target").params
        [('_revinclude', 'Provenance:target')]
        """
        return self._with([("_revinclude", spec)])

    def _run(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._session is None:
            raise RuntimeError("this search set is not bound to a session")
        return self._session._execute_search(self.resource_type, self.params)

    def fetch(self) -> list[dict[str, Any]]:
        """Run the search; return the matches (without included resources).

        Returns
        -------
        list of dict
            The matching resources this session may see, masked.

        Raises
        ------
        SearchError
            A parameter is unknown or malformed.
        RuntimeError
            The set is not bound to a session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> found = s.search("Condition").include("Condition:subject").fetch()
        >>> {r["resourceType"] for r in found}
        {'Condition'}
        """
        return self._run()[0]

    def fetch_all(self) -> list[dict[str, Any]]:
        """Run the search; return the matches followed by included resources.

        Returns
        -------
        list of dict
            The matches, then the resources ``include``/``revinclude`` brought in (each
            access-filtered and masked).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> found = s.search("Condition").include("Condition:subject").fetch_all()
        >>> [r["resourceType"] for r in found][-1], sum(r["resourceType"] == "Condition" for r in found)
        ('Patient', 4)
        """
        matches, included = self._run()
        return matches + included

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.fetch())

    def __len__(self) -> int:
        return len(self.fetch())

    def count(self) -> int:
        """How many matches the session may see (``_count`` applies).

        Returns
        -------
        int
            The number of visible matches (at most ``_count`` when a limit is set).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.login("dr.patel").search("Condition").count(), sb.login("dr.nguyen").search("Condition").count()
        (4, 0)
        >>> sb.login("dr.patel").search("Condition").limit(1).count()
        1
        """
        return len(self.fetch())

    def first(self) -> dict[str, Any] | None:
        """The first match, or ``None``.

        Returns
        -------
        dict or None
            The first visible match in the set's order.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.login("dr.patel").search("Patient").first()["resourceType"]
        'Patient'
        >>> sb.login("dr.nguyen").search("Patient").first() is None  # treats no one today
        True
        """
        found = self.limit(1).fetch()
        return found[0] if found else None

    def bundle(self) -> dict[str, Any]:
        """The results as a FHIR ``searchset`` Bundle (matches, then includes).

        The Bundle carries the highest confidentiality of what it contains.

        Returns
        -------
        dict
            A Bundle with ``total`` (the matches) and one entry per resource, ``search.mode``
            ``match`` or ``include``.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> b = s.search("Condition").include("Condition:subject").bundle()
        >>> b["type"], b["total"], [e["search"]["mode"] for e in b["entry"]].count("include")
        ('searchset', 4, 1)
        >>> b["meta"]["security"][0]["code"]  # one Condition is restricted
        'R'
        """
        matches, included = self._run()
        entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
        entries += [{"resource": r, "search": {"mode": "include"}} for r in included]
        from ehr_sandbox.access.labels import confidentiality_coding, highest_confidentiality

        # A Bundle carries the highest confidentiality of what it contains (PRIVACY.md).
        level = highest_confidentiality([*matches, *included])
        return {
            "resourceType": "Bundle",
            "meta": {"security": [confidentiality_coding(level)]},
            "type": "searchset",
            "total": len(matches),
            "entry": entries,
        }

    def to_pandas(self) -> Any:
        """The matches as a pandas DataFrame (one row per resource, nested fields flattened).

        Returns
        -------
        pandas.DataFrame
            One row per match; nested keys become dotted columns (``valueQuantity.value``).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> df = s.search("Observation", code="http://loinc.org|8867-4").to_pandas()
        >>> len(df), "valueQuantity.value" in df.columns
        (5, True)
        """
        import pandas as pd

        return pd.json_normalize(self.fetch())

    def __repr__(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.params)
        return f"<SearchSet {self.resource_type}?{q}>"

    def _repr_html_(self) -> str:
        from ehr_sandbox.display.reprs import searchset_html

        return searchset_html(self)
