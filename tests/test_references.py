"""FHIR references are parsed in one place (``ehr_sandbox.references``): the same resource
named relatively, with a version or by an absolute URL gives the same (type, id); strict
relative parsing refuses what is not exactly ``Type/id[/_history/v]``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ehr_sandbox.references import (
    ID_RE,
    reference_id,
    references_in,
    split_reference,
    split_relative,
)

types = st.sampled_from(["Patient", "Observation", "Encounter", "DocumentReference", "Task"])
ids = st.from_regex(ID_RE, fullmatch=True)
bases = st.sampled_from(["http://a.org/fhir", "https://ehr.example.net/r4", "http://h"])


@given(types, ids, ids, bases)
def test_every_form_of_a_reference_names_the_same_resource(rtype, rid, vid, base):
    forms = [
        f"{rtype}/{rid}",
        f"{rtype}/{rid}/_history/{vid}",
        f"{base}/{rtype}/{rid}",
        f"{base}/{rtype}/{rid}/_history/{vid}",
    ]
    assert {split_reference(f) for f in forms} == {(rtype, rid)}
    assert {reference_id({"reference": f}, rtype) for f in forms} == {rid}
    assert split_relative(forms[0]) == (rtype, rid, None)
    assert split_relative(forms[1]) == (rtype, rid, vid)
    assert split_relative(forms[2]) is None  # absolute: another server's, not ours
    assert reference_id(forms[0], "Group") is None


@given(st.text(max_size=40))
def test_what_names_no_stored_resource_parses_to_nothing(text):
    for ref in (f"#{text}", f"urn:uuid:{text}", f"Patient?identifier={text}"):
        assert split_reference(ref) is None
    parsed = split_reference(text)
    if parsed is not None:  # whatever parses names a well-formed type and id
        assert parsed[0][:1].isupper() and ID_RE.match(parsed[1])


def test_references_in_walks_contained_resources_and_lists():
    resource = {
        "subject": {"reference": "Patient/p"},
        "contained": [{"resourceType": "Provenance", "target": [{"reference": "Encounter/e"}]}],
        "note": [{"text": "reference: Patient/x"}],
    }
    assert list(references_in(resource)) == ["Patient/p", "Encounter/e"]
