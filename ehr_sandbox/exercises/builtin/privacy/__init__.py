"""Catalogue section "Privacy and access control": exercises 13-20 of EXERCISES.md.

The sandbox enforces PRIVACY.md on every path, so these exercises grade what really
happened: the record state, the Consents, the accounting of disclosures and the tamper-evident
audit trail (who read what, who broke the glass, who reviewed it).

How a student hands work in (the framework has no ``submit`` of its own):

- an artefact (an allow/deny matrix, a list of flagged audit events, a research folder) goes
  in with :func:`submit`, an audited action of the student's session;
- a release of information goes out with :func:`disclose`, which reads every released
  resource through the student's session (so the policy checks it and the audit trail logs it)
  and records the release in the audit trail: that is the accounting of disclosures, which
  nobody can edit;
- a break-the-glass review is made by the privacy officer's session, `po.review_btg(...)` (or
  :func:`review_override`), audited by the sandbox itself.

The graders read hand-ins, disclosures and reviews from the tamper-evident audit trail, never
from writable state, and grade against what setup fixed.

>>> from ehr_sandbox.exercises import get
>>> get("privacy/role-policy").role
'po.wilson'
>>> sorted(get("privacy/restriction").wrong_solutions)[:2]
['bill-anyway', 'bill-then-repoint']
"""

from __future__ import annotations

# isort: off
# Each exercise module registers its exercise on import: keep these imports in catalogue order.
from ehr_sandbox.exercises.builtin.privacy.common import (
    accounting_of_disclosures,
    disclose,
    review_override,
    submit,
    submitted,
    work_dir,
)
from ehr_sandbox.exercises.builtin.privacy.role_policy import ROLE_POLICY
from ehr_sandbox.exercises.builtin.privacy.minimum_necessary import MINIMUM_NECESSARY
from ehr_sandbox.exercises.builtin.privacy.release_of_information import (
    RELEASE_OF_INFORMATION,
    roi_valid_on as roi_valid_on,
)
from ehr_sandbox.exercises.builtin.privacy.break_the_glass import BREAK_THE_GLASS
from ehr_sandbox.exercises.builtin.privacy.restriction import (
    RESTRICTION,
    restriction_consent as restriction_consent,
)
from ehr_sandbox.exercises.builtin.privacy.deidentification import DEIDENTIFICATION
from ehr_sandbox.exercises.builtin.privacy.snooping_review import SNOOPING_REVIEW
from ehr_sandbox.exercises.builtin.privacy.encryption_keys import clinic_database, ENCRYPTION
# isort: on

__all__ = [
    "BREAK_THE_GLASS",
    "DEIDENTIFICATION",
    "ENCRYPTION",
    "MINIMUM_NECESSARY",
    "RELEASE_OF_INFORMATION",
    "RESTRICTION",
    "ROLE_POLICY",
    "SNOOPING_REVIEW",
    "accounting_of_disclosures",
    "clinic_database",
    "disclose",
    "review_override",
    "submit",
    "submitted",
    "work_dir",
]
