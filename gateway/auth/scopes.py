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
    """The scopes granted for a request, space-separated (empty: none of them).

    SMART App Launch 2.x "Scopes and Launch Context" lets a server grant fewer scopes than requested: a
    requested scope the client is allowed in full is granted as written; one allowed in part is granted
    as the allowed part (``system/*.cruds`` for a reader: ``system/*.rs``; a wildcard also yields the
    client's allowances on named types); a scope this gateway does not serve at all (``launch/patient``,
    ``patient/...``, ``openid``, a v2 constraint) is left out. The caller refuses an empty grant.
    """
    granted: list[str] = []
    for s in requested.split():
        try:
            rtype, letters = parse_scope(s)
        except ScopeError:
            continue
        if allowed.covers(Permissions(((rtype, letters),))):
            granted.append(s)
            continue
        for t, have in allowed.grants:
            fits = t == rtype or (t == "*" and rtype != AUDIT_TYPE) or (rtype == "*" and t != AUDIT_TYPE)
            common = "".join(x for x in LETTERS if x in letters and x in have)
            if fits and common:
                granted.append(f"system/{rtype if t == '*' else t}.{common}")
    return " ".join(dict.fromkeys(granted))
