"""Catalogue section "Privacy and access control": exercises 13-20 of EXERCISES.md.

The sandbox enforces PRIVACY.md on every path, so these exercises grade what really
happened: the record state, the Consents, the accounting of disclosures and the tamper-evident
audit trail (who read what, who broke the glass, who reviewed it).

How a student hands work in (the framework has no ``submit`` of its own):

- an artefact (an allow/deny matrix, a list of flagged audit events, a research folder) goes
  in with :func:`submit`, which keeps it in the attempt's sandbox state;
- a release of information goes out with :func:`disclose`, which reads every released
  resource through the student's session (so the policy checks it and the audit trail logs it)
  and adds the release to the sandbox's accounting of disclosures.

>>> from ehr_sandbox.exercises import get
>>> get("privacy/role-policy").role
'po.wilson'
>>> sorted(get("privacy/restriction").wrong_solutions)
['bill-anyway']
"""

from __future__ import annotations

# isort: off
# Each exercise module registers its exercise on import: keep these imports in catalogue order.
from ehr_sandbox.exercises.builtin.privacy.common import (
    accounting_of_disclosures,
    disclose,
    DISCLOSURES_KEY,
    submit,
    submitted,
)
from ehr_sandbox.exercises.builtin.privacy.role_policy import ROLE_POLICY
from ehr_sandbox.exercises.builtin.privacy.minimum_necessary import MINIMUM_NECESSARY
from ehr_sandbox.exercises.builtin.privacy.release_of_information import (
    RELEASE_OF_INFORMATION,
    _roi_valid_on as _roi_valid_on,
)
from ehr_sandbox.exercises.builtin.privacy.break_the_glass import BREAK_THE_GLASS
from ehr_sandbox.exercises.builtin.privacy.restriction import (
    RESTRICTION,
    _restriction_consent as _restriction_consent,
)
from ehr_sandbox.exercises.builtin.privacy.deidentification import DEIDENTIFICATION
from ehr_sandbox.exercises.builtin.privacy.snooping_review import SNOOPING_REVIEW
from ehr_sandbox.exercises.builtin.privacy.encryption_keys import clinic_database, ENCRYPTION
# isort: on

__all__ = [
    "BREAK_THE_GLASS",
    "DEIDENTIFICATION",
    "DISCLOSURES_KEY",
    "ENCRYPTION",
    "MINIMUM_NECESSARY",
    "RELEASE_OF_INFORMATION",
    "RESTRICTION",
    "ROLE_POLICY",
    "SNOOPING_REVIEW",
    "accounting_of_disclosures",
    "clinic_database",
    "disclose",
    "submit",
    "submitted",
]
