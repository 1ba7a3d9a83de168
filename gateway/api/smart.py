"""``/.well-known/smart-configuration`` for SMART Backend Services (SMART App Launch 2.x conformance)."""

from __future__ import annotations

from gateway.clients import ALLOWED_ALGS
from gateway.fhir.resources import TYPES
from gateway.settings import Settings


def smart_configuration(settings: Settings) -> dict:
    """What a backend client needs to know to get a token here."""
    return {
        "issuer": settings.fhir_base,
        "token_endpoint": settings.token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALLOWED_ALGS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": [
            "system/*.read",
            "system/*.rs",
            "system/*.write",
            "system/*.cruds",
            "system/AuditEvent.read",
            "system/AuditEvent.rs",
            *[f"system/{t}.cruds" for t in TYPES if t != "AuditEvent"],
        ],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        "code_challenge_methods_supported": [],
    }
