"""SMART on FHIR system scopes, v1 and v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

``system/<Type>.<perm>`` where ``<perm>`` is v1 ``read`` (= ``rs``), ``write`` (= ``cud``) or ``*``
(= ``cruds``), or v2 letters in the order ``c r u d s`` (``rs``, ``cruds``, ``cu`` ...). ``<Type>`` is a
resource type or ``*``. A wildcard type never covers ``AuditEvent``: reading the NEN 7513 log takes an
explicit ``system/AuditEvent.read`` (or ``.rs``), the audit scope. Finer v2 constraints
(``?category=...``) are not supported and refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from gateway.fhir.resources import TYPES
from mappings.problems import GatewayError

AUDIT_TYPE = "AuditEvent"
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$")
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
LETTERS = "cruds"


class ScopeError(GatewayError, ValueError):
    """A scope string that is not a supported SMART system scope."""


def parse_scope(scope: str) -> tuple[str, frozenset[str]]:
    """``"system/Patient.rs"`` -> ``("Patient", {"r", "s"})``; raises :class:`ScopeError`."""
    m = _SCOPE.match(scope)
    if not m or not m[2]:
        raise ScopeError(f"unsupported scope {scope!r}")
    rtype, perm = m[1], m[2]
    if rtype != "*" and rtype not in TYPES:
        raise ScopeError(f"scope {scope!r} names a resource type this gateway does not serve")
    return rtype, frozenset(V1.get(perm, perm))


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a set of scopes allows: per type (and ``*``) the letters of ``cruds``."""

    grants: tuple[tuple[str, frozenset[str]], ...]

    def allows(self, rtype: str, letter: str) -> bool:
        """Whether ``letter`` (c, r, u, d or s) is granted on ``rtype``."""
        for t, letters in self.grants:
            if letter in letters and (t == rtype or (t == "*" and rtype != AUDIT_TYPE)):
                return True
        return False

    def covers(self, other: Permissions) -> bool:
        """Whether every permission of ``other`` is also one of these."""
        for t, letters in other.grants:
            types = [t] if t != "*" else [x for x in TYPES if x != AUDIT_TYPE]
            if not all(self.allows(x, letter) for x in types for letter in letters):
                return False
        return True


@lru_cache(maxsize=4096)
def permissions(scopes: str) -> Permissions:
    """Permissions of a space-separated scope string; unsupported scopes raise :class:`ScopeError`."""
    return Permissions(tuple(parse_scope(s) for s in scopes.split()))


def grant(requested: str, allowed: Permissions) -> str:
    """The requested scopes the client may have, space-separated (empty: none of them).

    Raises :class:`ScopeError` when a requested scope is not a supported scope at all.
    """
    granted = []
    for s in requested.split():
        if allowed.covers(Permissions((parse_scope(s),))):
            granted.append(s)
    return " ".join(dict.fromkeys(granted))
