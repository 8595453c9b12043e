"""The front-office and clinical workflows: operations a user performs through a Session.

One module per area; import the one you need (nothing is imported eagerly)::

    from ehr_sandbox.workflows import scheduling, registration, claims

Every operation validates its input, writes through the Session (validation, access control,
Provenance, audit) and raises :class:`ehr_sandbox.workflows.base.RuleRefused` naming the rule and
its source when a business rule refuses it. See ``docs/workflows.md``.

>>> from ehr_sandbox.workflows import base
>>> base.RuleRefused.__mro__[1].__name__
'ValidationError'
"""
