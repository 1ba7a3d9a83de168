"""Patient data masked in captured exchanges before any report holds them (DOMAIN.md §10: patient data
never in technical output in clear).

Masked: in FHIR JSON a Patient's (or RelatedPerson's) name, birth date, address, telecom, contact and
photo, and the value of every BSN identifier anywhere; in HL7 v2 the PID and NK1 fields that identify a
person (PID-3, -5, -6, -7, -11, -13, -14, -19; NK1-2 .. -5); in any text a nine-digit number that passes the
BSN 11-test; credentials (bearer tokens, client assertions, access tokens). The structure stays, so a
tester still sees which element was sent.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MASK = "***"
BSN_SYSTEMS = ("http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3")
PERSON_TYPES = ("Patient", "RelatedPerson")
PERSON_ELEMENTS = ("name", "birthDate", "address", "telecom", "contact", "photo")
SECRET_KEYS = ("access_token", "client_assertion", "refresh_token", "id_token")
PID_FIELDS = {"PID": (3, 5, 6, 7, 11, 13, 14, 19), "NK1": (2, 3, 4, 5)}
_NINE = re.compile(r"(?<!\d)\d{9}(?!\d)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_ASSERTION = re.compile(r"(client_assertion=)[^&\s]+")


def passes_11_test(digits: str) -> bool:
    """The BSN 11-test: sum of digit*weight (9..2, last -1) divisible by 11 (and not all zeros)."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0


def mask_text(text: str) -> str:
    """Credentials and BSN-like numbers in free text (URLs, headers, messages)."""
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _ASSERTION.sub(lambda m: m.group(1) + MASK, text)
    return _NINE.sub(lambda m: MASK if passes_11_test(m.group(0)) else m.group(0), text)


def mask_json(value: Any) -> Any:
    """A copy of a JSON value with patient data masked."""
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    person = value.get("resourceType") in PERSON_TYPES
    bsn = value.get("system") in BSN_SYSTEMS
    for k, v in value.items():
        if (person and k in PERSON_ELEMENTS) or (bsn and k == "value") or k in SECRET_KEYS:
            out[k] = MASK
        else:
            out[k] = mask_json(v)
    return out


def mask_er7(text: str) -> str:
    """An HL7 v2 message (segments split on CR or LF) with the person fields masked."""
    lines = re.split(r"(\r\n|\r|\n)", text)
    out = []
    for part in lines:
        name = part[:3]
        if name in PID_FIELDS and len(part) > 3:
            sep = part[3]
            fields = part.split(sep)
            for i in PID_FIELDS[name]:
                if i < len(fields) and fields[i]:
                    fields[i] = MASK
            part = sep.join(fields)
        out.append(part)
    return mask_text("".join(out))


def mask_body(body: bytes, content_type: str = "") -> str:
    """A captured body as masked text (JSON masked structurally, HL7 v2 by segment, else as text)."""
    if not body:
        return ""
    text = body[:65536].decode("utf-8", "replace")
    cut = "" if len(body) <= 65536 else f"\n... ({len(body):,} bytes, cut)"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return orjson.dumps(mask_json(orjson.loads(body)), option=orjson.OPT_INDENT_2).decode() + cut
        except orjson.JSONDecodeError:
            pass
    if stripped.startswith(("MSH", "FHS", "BHS")) or "\rPID" in text:
        return mask_er7(text) + cut
    if "x-www-form-urlencoded" in content_type:
        return mask_text(text) + cut
    return mask_text(text) + cut
