"""The unit of generated output: one patient and everything in their record.

>>> r = PatientRecord(0, {"resourceType": "Patient", "id": "p"}, [{"resourceType": "Encounter", "id": "e"}])
>>> [x["resourceType"] for x in r.all()]
['Patient', 'Encounter']
>>> r.count()
2
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any


@dataclass(slots=True)
class PatientRecord:
    """One patient (``patient``) and the resources of their record, in a stable order.

    ``resources`` excludes the Patient; :meth:`all` yields the Patient first. ``index`` is the
    patient's position in the dataset (the id and random stream derive from it).

    >>> PatientRecord(3, {"resourceType": "Patient", "id": "p"}).index
    3
    """

    index: int
    patient: dict[str, Any]
    resources: list[dict[str, Any]] = field(default_factory=list)
    defects: list[dict[str, Any]] = field(default_factory=list)
    """Manifest of the dirty-data defects injected into this record (empty unless asked for)."""

    def all(self) -> Iterator[dict[str, Any]]:
        """The Patient, then every other resource.

        >>> next(PatientRecord(1, {"id": "x"}).all())["id"]
        'x'
        """
        yield self.patient
        yield from self.resources

    def drain(self) -> Iterator[dict[str, Any]]:
        """The Patient, then every other resource, each let go once the next is asked for.

        For the last reader of a record (a writer): a resource is freed right after it is
        encoded, while it is still in the CPU's cache, instead of all at once with the record
        (which then reads every object back from memory). The record is not to be read again:
        ``resources`` is empty once the iterator is exhausted.

        >>> r = PatientRecord(0, {"id": "p"}, [{"id": "a"}, {"id": "b"}])
        >>> [x["id"] for x in r.drain()], r.resources
        (['p', 'a', 'b'], [])
        """
        resources: list[Any] = self.resources  # None marks the end below
        resources.reverse()  # popped from the end: each step is O(1)
        resources.insert(0, None)  # the end mark, popped last
        return chain((self.patient,), iter(resources.pop, None))

    def count(self) -> int:
        """Number of resources including the Patient.

        >>> PatientRecord(1, {}).count()
        1
        """
        return 1 + len(self.resources)

    def by_type(self, resource_type: str) -> list[dict[str, Any]]:
        """Resources of one type (the Patient included when asked for).

        >>> PatientRecord(1, {"resourceType": "Patient"}).by_type("Patient")[0]["resourceType"]
        'Patient'
        """
        return [r for r in self.all() if r["resourceType"] == resource_type]
