"""Apply a bundle plan to a bare :class:`~ehr_sandbox.store.Store` in one transaction.

This is the store layer's bulk path (tests, benchmarks, building fixtures): no policy, no
audit, no Provenance. Patient data in a sandbox is written only through the Session
(``session.transaction(bundle)`` / ``session.import_(paths)``), never with these.

>>> from ehr_sandbox.store import Store
>>> st = Store()
>>> out = import_resources(st, [{"resourceType": "Patient", "id": "a", "gender": "male"}])
>>> [r["meta"]["versionId"] for r in out], st.count("Patient")
(['1'], 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ehr_sandbox.bundles.plan import PlannedWrite, plan_bundle, plan_resources
from ehr_sandbox.bundles.references import Finder
from ehr_sandbox.errors import NotFound, SearchError
from ehr_sandbox.search.query import parse

if TYPE_CHECKING:
    from ehr_sandbox.store import Store


def store_finder(store: Store) -> Finder:
    """A ``find(type, query)`` over ``store`` (for conditional references and creates).

    >>> from ehr_sandbox.store import Store
    >>> store_finder(Store())("Patient", "identifier=urn:mrn|1")
    []
    """

    def find(resource_type: str, query: str) -> list[str]:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
        if not pairs:
            raise SearchError(
                resource_type, "(condition)", "a search like identifier=system|value", found=query
            )
        return store.search_ids(resource_type, parse(resource_type, pairs))

    return find


def apply_plan(store: Store, plan: list[PlannedWrite]) -> list[dict[str, Any]]:
    """Write a plan in one store transaction; return per entry the stored (or existing) resource.

    Any failure (e.g. a version conflict) rolls the whole plan back.

    Parameters
    ----------
    store : Store
        A bare store (no policy, no audit: the store layer's bulk path).
    plan : list of PlannedWrite
        From :func:`ehr_sandbox.bundles.plan.plan_bundle` or ``plan_resources``.

    Returns
    -------
    list of dict
        The stored resource of each entry, in the plan's order.

    Raises
    ------
    ConflictError
        An entry's version is stale; nothing is written.

    Examples
    --------
    >>> from ehr_sandbox.store import Store
    >>> from ehr_sandbox.bundles.plan import plan_resources
    >>> st = Store()
    >>> plan = plan_resources([{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}],
    ...                       exists=st.exists, find=store_finder(st))
    >>> [r["id"] for r in apply_plan(st, plan)], st.count("Patient")
    (['a', 'b'], 2)
    """
    out: list[dict[str, Any]] = []
    with store.transaction():
        for w in plan:
            if w.action == "create":
                out.append(store.create(w.resource))
            elif w.action == "update":
                out.append(store.update(w.resource, expected_version=w.expected_version))
            else:
                found = store.read(w.resource["resourceType"], w.resource["id"])
                if found is None:
                    raise NotFound(f"{w.ref} (entry {w.entry_index}) disappeared while importing")
                out.append(found)
    return out


def import_bundle(store: Store, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Plan and apply a Bundle against ``store`` (no policy, no audit: the Session adds those).

    >>> from ehr_sandbox.store import Store
    >>> b = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "id": "z"}}]}
    >>> [r["id"] for r in import_bundle(Store(), b)]
    ['z']
    """
    return apply_plan(store, plan_bundle(bundle, exists=store.exists, find=store_finder(store)))


def import_resources(
    store: Store, resources: Iterable[dict[str, Any]], *, label: str = "ndjson"
) -> list[dict[str, Any]]:
    """Plan and apply plain resources (e.g. from :func:`read_ndjson_dir`) in one transaction.

    Parameters
    ----------
    store : Store
        A bare store.
    resources : iterable of dict
        FHIR resources, each with its ``id``.
    label : str, default "ndjson"
        Names the source in error messages.

    Returns
    -------
    list of dict
        The stored resources.

    Raises
    ------
    ValidationError
        A resource is malformed; nothing is written.

    Examples
    --------
    >>> from ehr_sandbox.store import Store
    >>> st = Store()
    >>> out = import_resources(st, [{"resourceType": "Patient", "id": "a"}])
    >>> out[0]["meta"]["versionId"], st.read("Patient", "a")["id"]
    ('1', 'a')
    """
    return apply_plan(
        store, plan_resources(resources, exists=store.exists, find=store_finder(store), label=label)
    )
