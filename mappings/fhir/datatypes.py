"""Data types of nl-core: NameInformation (HumanName), AddressInformation (Address), ContactInformation.

**Name** (nl-core-NameInformation, zib NameInformation 2020): one ``official`` HumanName.

- ``family``: the name as used, assembled by the usage (NL1 own, NL2 partner, NL3 partner-own, NL4
  own-partner), with its parts in the extensions humanname-own-prefix / -own-name / -partner-prefix /
  -partner-name; the usage itself in humanname-assembly-order (codes NL1-NL4);
- ``given``: each first name (voornaam) with iso21090-EN-qualifier ``BR``; initials with ``IN``. When a
  person has both, the initials go into a second official HumanName that holds only them (the nl-core
  example "firstNamesAndInitialsSeparate": they need not match the first names one by one);
- ``prefix``: the title; ``text``: the whole name as written.

First names are split on single spaces and initials after each dot only when that split joins back to
the same text; otherwise the text is one ``given``, so a round trip is exact.

**Address** (nl-core-AddressInformation): ``line`` = street and house number, each also in its ADXP
extension (streetName, houseNumber: the whole number with any addition, ``12a``), ``city``,
``postalCode``, ``country`` (as text), ``use``, and the zib AddressType (ext-AddressInformation.AddressType)
HP / WP / TMP / PST; a postal address is ``type: postal`` (FHIR has no ``use`` for it). An address with no
parts at all is written with only a data-absent-reason extension, so that it reads back as an address.

**Telecom** (nl-core-ContactInformation-TelephoneNumbers / -EmailAddresses): ContactPoint system, value, use.
"""

from __future__ import annotations

import re
from typing import Any

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    EMPTY,
    EMPTY_TEXT,
    ReadContext,
    as_dict,
    as_list,
    as_str,
    coding,
    ext_string,
    ext_text,
    ext_value,
    is_empty_mark,
    put,
    take,
)

_INITIALS_RE = re.compile(r"(?:[^\s.]+\.)+")
_INITIAL_RE = re.compile(r"[^\s.]+\.")
_BR_EXT = {"url": c.EXT_EN_QUALIFIER, "valueCode": "BR"}
_IN_EXT = {"url": c.EXT_EN_QUALIFIER, "valueCode": "IN"}


# --------------------------------------------------------------------------- names


def _first_names(given: str) -> list[str]:
    parts = given.split(" ")
    return parts if all(parts) else [given]


def _initials(initials: str) -> list[str]:
    return _INITIAL_RE.findall(initials) if _INITIALS_RE.fullmatch(initials) else [initials]


def family_as_used(n: m.PersonName) -> str | None:
    """The family name as the person uses it (zib NameUsage NL1-NL4)."""
    own = " ".join(x for x in (n.prefix, n.family) if x)
    partner = " ".join(x for x in (n.partner_prefix, n.partner_family) if x)
    if n.usage == "NL2":
        return partner or own or None
    if n.usage == "NL3" and own and partner:
        return f"{partner}-{own}"
    if n.usage == "NL4" and own and partner:
        return f"{own}-{partner}"
    return own or partner or None


def name_text(n: m.PersonName) -> str:
    """The whole name as written: ``Dr. J.P. van der Berg-de Vries``."""
    return " ".join(x for x in (n.title, n.given or n.initials, family_as_used(n)) if x) or "?"


def _parts(values: list[str], qualifier: dict) -> tuple[list[str | None], list[dict]]:
    """``given`` values and their ``_given`` extensions: the EN qualifier, and the empty mark for ``""``."""
    return (
        [v or None for v in values],
        [{"extension": [qualifier] if v else [qualifier, EMPTY_TEXT]} for v in values],
    )


def human_names(n: m.PersonName) -> list[dict]:
    """The nl-core NameInformation HumanName(s) of a canonical name."""
    name: dict = {}
    if n.usage is not None:
        name["extension"] = [{"url": c.EXT_ASSEMBLY_ORDER, "valueCode": n.usage}]  # usage
    name["use"] = "official"
    name["text"] = name_text(n)
    family = family_as_used(n)
    parts = [
        ext_string(url, v)
        for url, v in (
            (c.EXT_OWN_PREFIX, n.prefix),  # prefix
            (c.EXT_OWN_NAME, n.family),  # family
            (c.EXT_PARTNER_PREFIX, n.partner_prefix),  # partner_prefix
            (c.EXT_PARTNER_NAME, n.partner_family),  # partner_family
        )
        if v is not None
    ]
    if family:
        name["family"] = family  # the name as used (usage)
    if parts:
        name["_family"] = {"extension": parts}
    first = _first_names(n.given) if n.given is not None else []
    initials = _initials(n.initials) if n.initials is not None else []
    if first:
        name["given"], name["_given"] = _parts(first, _BR_EXT)  # given
    elif initials:
        name["given"], name["_given"] = _parts(initials, _IN_EXT)  # initials (no first names known)
    if n.title:
        name["prefix"] = [n.title]  # title
    elif n.title is not None:
        name["prefix"], name["_prefix"] = [None], [EMPTY]
    if first and initials:
        second: dict = {"use": "official"}
        second["given"], second["_given"] = _parts(initials, _IN_EXT)  # initials
        return [name, second]
    return [name]


def _qualifier(ext: object) -> str | None:
    return as_str(ext_value(as_dict(ext), c.EXT_EN_QUALIFIER, "valueCode"))


def _items(obj: dict, key: str) -> list[tuple[str, object]]:
    """The values of a repeating string element with their extensions (``""`` where marked empty)."""
    values = as_list(obj.get(key))
    exts = as_list(obj.get("_" + key))
    out = []
    for k in range(max(len(values), len(exts))):
        v = values[k] if k < len(values) else None
        e = exts[k] if k < len(exts) else None
        if isinstance(v, str):
            out.append((v, e))
        elif v is None and is_empty_mark(e):
            out.append(("", e))
    return out


def person_name(names: object, where: str, ctx: ReadContext) -> m.PersonName | None:
    """The canonical name from a list of HumanNames (the first official one, or the first one)."""
    items = [(i, x) for i, x in enumerate(as_list(names)) if isinstance(x, dict)]
    if not items:
        return None
    official = [(i, x) for i, x in items if x.get("use") == "official"] or items[:1]
    i0, main = official[0]
    given: list[str] = []
    initials: list[str] = []
    for _, name in official:
        for g, ext in _items(name, "given"):
            q = _qualifier(ext)
            if q == "IN":
                initials.append(g)
            elif name is main and q in (None, "BR"):
                given.append(g)
    fam_ext = as_dict(main.get("_family"))
    own_prefix, own, partner_prefix, partner = (
        ext_text(fam_ext, url)
        for url in (c.EXT_OWN_PREFIX, c.EXT_OWN_NAME, c.EXT_PARTNER_PREFIX, c.EXT_PARTNER_NAME)
    )
    if own_prefix is None and own is None and partner_prefix is None and partner is None:
        own = as_str(main.get("family"))  # a name without nl-core parts: the family name as given
    usage: Any = as_str(ext_value(main, c.EXT_ASSEMBLY_ORDER, "valueCode"))
    if usage not in (None, "NL1", "NL2", "NL3", "NL4"):
        ctx.warning("FHIR-024", f"{where}[{i0}].extension", f"name usage {usage!r} is not NL1-NL4; not kept")
        usage = None
    prefixes = [p for p, _ in _items(main, "prefix")]
    try:
        return m.PersonName(
            initials="".join(initials) if initials else None,
            given=" ".join(given) if given else None,
            prefix=own_prefix,
            family=own,
            partner_prefix=partner_prefix,
            partner_family=partner,
            usage=usage,
            title=" ".join(prefixes) if prefixes else None,
        )
    except ValueError as exc:
        ctx.error("FHIR-030", f"{where}[{i0}]", f"not a usable name: {exc}")
        return None


# --------------------------------------------------------------------------- addresses


def address(a: m.Address) -> dict:
    """The nl-core AddressInformation Address of a canonical address."""
    out: dict = {}
    if a.use is not None:
        code, disp = c.ADDRESS_TYPE[a.use]
        out["extension"] = [
            {
                "url": c.EXT_ADDRESS_TYPE,
                "valueCodeableConcept": {"coding": [coding(c.V3_ADDRESS_USE, code, disp)]},
            }
        ]  # use
        if a.use == "postal":
            out["type"] = "postal"
        else:
            out["use"] = a.use
    if a.street is not None or a.house_number is not None:
        line = " ".join(x for x in (a.street, a.house_number) if x)
        parts = [
            ext_string(url, v)
            for url, v in ((c.EXT_STREET, a.street), (c.EXT_HOUSE_NUMBER, a.house_number))
            if v is not None
        ]
        out["line"] = [line or None]  # street, house_number
        out["_line"] = [{"extension": parts if line else [*parts, EMPTY_TEXT]}]
    put(out, "city", a.city)  # city
    put(out, "postalCode", a.postal_code)  # postal_code
    put(out, "country", a.country)  # country
    if not out:
        out["extension"] = [{"url": c.EXT_DATA_ABSENT, "valueCode": "unknown"}]  # an address without parts
    return out


def canonical_address(a: object, where: str, ctx: ReadContext) -> m.Address:
    """The canonical address of a FHIR Address."""
    a = as_dict(a)
    use: Any = None
    type_code = None
    cc = as_dict(ext_value(a, c.EXT_ADDRESS_TYPE, "valueCodeableConcept"))
    for cd in as_list(cc.get("coding")):
        if isinstance(cd, dict) and isinstance(cd.get("code"), str) and cd["code"] in c.ADDRESS_FROM_TYPE:
            type_code = cd["code"]
            break
    if type_code is not None:
        use = c.ADDRESS_FROM_TYPE[type_code]
    elif a.get("type") == "postal":
        use = "postal"
    elif a.get("use") in ("home", "work", "temp"):
        use = a["use"]
    street = number = None
    lines = _items(a, "line")
    if lines:
        ext = as_dict(lines[0][1])
        street, number = ext_text(ext, c.EXT_STREET), ext_text(ext, c.EXT_HOUSE_NUMBER)
        if street is None and number is None:
            street = ", ".join(x for x, _ in lines)  # lines without ADXP parts: the whole line is the street
    return m.Address(
        street=street,
        house_number=number,
        postal_code=take(a, "postalCode"),
        city=take(a, "city"),
        country=take(a, "country"),
        use=use,
    )


# --------------------------------------------------------------------------- telecom


def contact_point(t: m.Telecom) -> dict:
    """A ContactPoint: system, value, use."""
    if t.use is None:
        return {"system": t.system, "value": t.value}
    return {"system": t.system, "value": t.value, "use": t.use}


def telecoms(points: object, where: str, ctx: ReadContext) -> tuple[m.Telecom, ...]:
    """The canonical telecoms of ContactPoints; a system or use the model has no room for is a warning."""
    out = []
    for i, p in enumerate(as_list(points)):
        p = as_dict(p)
        system, value, use = p.get("system"), p.get("value"), p.get("use")
        if system not in ("phone", "email", "fax") or not isinstance(value, str) or not value.strip():
            ctx.warning(
                "FHIR-024",
                f"{where}[{i}]",
                f"contact point of system {system!r} not kept (phone, email and fax with a value are)",
            )
            continue
        if use not in (None, "home", "work", "mobile", "temp"):
            ctx.warning("FHIR-024", f"{where}[{i}].use", f"contact point use {use!r} not kept")
            use = None
        out.append(m.Telecom(system=system, value=value, use=use))
    return tuple(out)
