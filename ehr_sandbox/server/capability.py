"""The classroom server's CapabilityStatement (``GET /fhir/metadata``).

>>> capability_statement("http://127.0.0.1:8080/fhir")["kind"]
'instance'
"""

from __future__ import annotations

import functools
from typing import Any

from ehr_sandbox.server.operations import OPERATIONS, TYPE_OPERATIONS
from synthetic.systems import RESTFUL_SECURITY_SERVICE, SMART_OAUTH_URIS

__all__ = ["capability_statement"]


@functools.lru_cache(maxsize=4)
def capability_statement(base: str) -> dict[str, Any]:
    """The server's CapabilityStatement: resource types, interactions, search parameters,
    operations and the SMART security service.

    >>> cs = capability_statement("http://127.0.0.1:8080/fhir")
    >>> cs["fhirVersion"], cs["rest"][0]["security"]["service"][0]["coding"][0]["code"]
    ('4.0.1', 'SMART-on-FHIR')
    """
    from ehr_sandbox.search.registry import REGISTRY

    interactions = [
        {"code": c}
        for c in (
            "read",
            "vread",
            "update",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        )
    ]
    resources = []
    for rtype in sorted(REGISTRY):
        resources.append(
            {
                "type": rtype,
                "interaction": interactions,
                "versioning": "versioned-update",
                "updateCreate": False,
                "conditionalCreate": False,
                "conditionalDelete": "not-supported",
                "searchParam": [
                    {"name": p.name, "type": p.type if p.type != "special" else "special"}
                    for p in sorted(REGISTRY[rtype].values(), key=lambda p: p.name)
                ],
            }
        )
    root = base.rsplit("/fhir", 1)[0]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": {"name": "ehr-sandbox"},
        "implementation": {"description": "ehr-sandbox classroom server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": RESTFUL_SECURITY_SERVICE,
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": SMART_OAUTH_URIS,
                            "extension": [
                                {"url": "token", "valueUri": f"{root}/auth/token"},
                                {"url": "authorize", "valueUri": f"{root}/auth/authorize"},
                            ],
                        }
                    ],
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {"name": name, "definition": f"{base}/OperationDefinition/{name}"}
                    for name in [
                        *OPERATIONS,
                        *(op for _, op in TYPE_OPERATIONS),
                        "export",
                        "report",
                        "whoami",
                        "run-view",
                        "audit-action",
                        "own-actions",
                        "audit-events",
                        "btg-review-queue",
                        "btg-review",
                    ]
                ],
            }
        ],
    }
