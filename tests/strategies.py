"""Hypothesis strategies for valid canonical dossiers and postbox items.

Shared by every round-trip property test (dialects, FHIR, HL7 v2). Texts deliberately contain Dutch
diacritics, characters outside Latin-1/Windows-1252 (``ĳ``, ``ş``, ``€``), multi-line text with CR, LF
and CRLF, and each dialect's delimiters and escape characters (``| \\ < > & " ' ^ ~``); names carry
voorvoegsels and partner names; optionals are often empty.
"""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import strategies as st

from mappings import model as m

AMS = ZoneInfo("Europe/Amsterdam")

_ALPHABET = (
    string.ascii_letters
    + string.digits
    + " .,;:-_/()+*%#@!?='\""
    + "éëèêïíöóòüúûáàäçñÉËÖÜ"
    + "ĳĲşőŁ€"
    + "|\\^~&<>\t"
)
_plain = st.text(alphabet=_ALPHABET, min_size=1, max_size=30).filter(lambda s: s.strip() != "")
_lines = st.lists(_plain, min_size=2, max_size=4).flatmap(
    lambda parts: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda sep: sep.join(parts))
)
text = st.one_of(_plain, _plain, _lines)
"""Any free text: one line or several, with every delimiter our dialects have."""

short = st.text(alphabet=string.ascii_letters + "éëïöüç -'", min_size=1, max_size=20).filter(
    lambda s: s.strip() != ""
)
ids = st.text(alphabet=string.ascii_letters + string.digits + ".-_", min_size=1, max_size=12)


def opt(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | s


def _bsn_from(n: int) -> str:
    digits = [int(c) for c in f"{n:08d}"]
    total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2), strict=True))
    check = total % 11
    return f"{n:08d}{check}" if check < 10 and (total - check) != 0 else ""


bsns = st.integers(10_000_000, 99_999_999).map(_bsn_from).filter(lambda b: b != "" and m.bsn_is_valid(b))
agbs = st.from_regex(r"\A[0-9]{8}\Z", fullmatch=True)
uzis = st.from_regex(r"\A[0-9]{9}\Z", fullmatch=True)
uzovis = st.from_regex(r"\A[0-9]{4}\Z", fullmatch=True)
icpcs = st.from_regex(r"\A[A-Z][0-9]{2}(\.[0-9]{1,2})?\Z", fullmatch=True)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31))
prefixes = st.sampled_from(["van", "van der", "de", "van den", "ter", "in 't", "van 't", "d'"])


def _real_local(t: dt.datetime) -> bool:
    """False for wall-clock times that do not exist in Europe/Amsterdam (the spring-forward gap)."""
    aware = t.replace(tzinfo=AMS)
    return aware.astimezone(dt.UTC).astimezone(AMS).replace(tzinfo=None) == t


moments = (
    st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2030, 12, 31))
    .map(lambda t: t.replace(microsecond=0))
    .filter(_real_local)
)
decimals = st.decimals(
    min_value=Decimal("-99999"), max_value=Decimal("99999"), places=3, allow_nan=False, allow_infinity=False
)

names = st.builds(
    m.PersonName,
    initials=opt(st.sampled_from(["J.", "J.P.", "A.M.C.", "Ĳ."])),
    given=opt(short),
    prefix=opt(prefixes),
    family=short,
    partner_prefix=opt(prefixes),
    partner_family=opt(short),
    usage=opt(st.sampled_from(["NL1", "NL2", "NL3", "NL4"])),
    title=opt(st.sampled_from(["Dr.", "Prof. dr.", "mr."])),
)
addresses = st.builds(
    m.Address,
    street=opt(short),
    house_number=opt(st.sampled_from(["1", "12a", "45-2", "221 bis"])),
    postal_code=opt(st.from_regex(r"\A[1-9][0-9]{3} [A-Z]{2}\Z", fullmatch=True)),
    city=opt(short),
    country=opt(st.sampled_from(["NL", "Nederland", "BE"])),
    use=opt(st.sampled_from(["home", "work", "temp", "postal"])),
)
telecoms = st.builds(
    m.Telecom,
    system=st.sampled_from(["phone", "email", "fax"]),
    value=st.sampled_from(["+31201234567", "020-1234567", "huisarts@example.nl", "06 12345678"]),
    use=opt(st.sampled_from(["home", "work", "mobile", "temp"])),
)
tele_tuple = st.lists(telecoms, max_size=2).map(tuple)


def _organization(oid: str) -> st.SearchStrategy[m.Organization]:
    return st.builds(
        m.Organization,
        id=st.just(oid),
        name=text.map(lambda s: s.replace("\r", "")),
        agb=opt(agbs),
        ura=opt(agbs),
        address=opt(addresses),
        telecom=tele_tuple,
    )


def _professional(pid: str, org_ids: list[str]) -> st.SearchStrategy[m.HealthProfessional]:
    return st.builds(
        m.HealthProfessional,
        id=st.just(pid),
        name=names,
        agb=opt(agbs),
        uzi=opt(uzis),
        big=opt(st.from_regex(r"\A[0-9]{11}\Z", fullmatch=True)),
        role=opt(st.sampled_from(["01.015", "01.018", "30.000"])),
        organization_id=opt(st.sampled_from(org_ids)),
        telecom=tele_tuple,
    )


patients = st.builds(
    m.Patient,
    bsn=opt(bsns),
    name=names,
    birth_date=dates,
    gender=st.sampled_from(["male", "female", "other", "unknown"]),
    address=opt(addresses),
    telecom=tele_tuple,
    insurance=opt(
        st.builds(
            m.Insurance,
            uzovi=uzovis,
            policy_number=opt(st.from_regex(r"\A[0-9A-Z]{6,12}\Z", fullmatch=True)),
            insurer_name=opt(short),
        )
    ),
    deceased_date=opt(dates),
    deregistered_date=opt(dates),
)


# Strategies are built once at import, not inside the composite functions: building one (a regex parsed,
# a struct's signature read) cost more than drawing from it, and made the 500-example round trips slow.
_oid_roots = st.from_regex(
    r"\A2\.16\.840\.1\.113883\.2\.4\.6\.6\.[1-9][0-9]{0,7}(\.[1-9][0-9]?){0,3}\Z", fullmatch=True
)
_codes_1_4 = st.from_regex(r"\A[0-9]{1,4}\Z", fullmatch=True)
_codes_1_5 = st.from_regex(r"\A[0-9]{1,5}\Z", fullmatch=True)
_codes_3_8 = st.from_regex(r"\A[0-9]{3,8}\Z", fullmatch=True)
_atcs = st.from_regex(r"\A[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}\Z", fullmatch=True)
_video = st.builds(
    m.VideoDetails,
    application=opt(short),
    connection_quality=opt(st.sampled_from(["good", "moderate", "poor"])),
    patient_device=opt(short),
    identity_verified=st.booleans(),
)
_timing_periods = st.one_of(
    st.just({}),
    st.builds(
        lambda p, u: {"timing_period": p, "timing_unit": u},
        st.sampled_from([Decimal(1), Decimal("0.5"), Decimal(8), Decimal("1.25")]),
        st.sampled_from(["h", "d", "wk", "mo"]),
    ),
)


@st.composite
def _source(draw) -> dict:
    """The HIS's own id of an item (issue 20): an OID root and an extension, or none."""
    if not draw(st.booleans()):
        return {}
    root = draw(_oid_roots)
    return {"source_root": root, "source_ext": draw(ids)}


concept_lines = st.builds(m.SoepLine, type=st.sampled_from(["S", "O", "E", "P"]), text=text, icpc=opt(icpcs))
"""Lines of a concept journal entry (a postbox filing): not yet in the HIS, so without its ids."""
soep_lines = st.builds(
    lambda src, **kw: m.SoepLine(**kw, **src),
    _source(),
    type=st.sampled_from(["S", "O", "E", "P"]),
    text=text,
    icpc=opt(icpcs),
)


@st.composite
def _episode(draw, eid: str) -> m.Episode:
    start = draw(opt(dates))
    end = draw(opt(dates))
    if start and end and end < start:
        start, end = end, start
    return m.Episode(
        id=eid,
        title=draw(text),
        icpc=draw(opt(icpcs)),
        start=start,
        end=end,
        attention=draw(st.booleans()),
        shielded=draw(st.booleans()),
        **draw(_source()),
    )


@st.composite
def _contact(draw, cid: str, episode_ids: list[str], author_ids: list[str]) -> m.Contact:
    start = draw(moments)
    end = draw(opt(st.integers(0, 7200).map(lambda s: start + dt.timedelta(seconds=s)).filter(_real_local)))
    dcs = draw(
        st.lists(
            st.builds(
                m.Deelcontact,
                episode_id=opt(st.sampled_from(episode_ids)) if episode_ids else st.none(),
                icpc=opt(icpcs),
                lines=st.lists(soep_lines, max_size=4).map(tuple),
            ),
            max_size=3,
        )
    )
    return m.Contact(
        id=cid,
        start=start,
        end=end,
        contact_type=draw(opt(st.sampled_from(["01", "02", "03", "04", "09", "11"]))),
        author_id=draw(opt(st.sampled_from(author_ids))) if author_ids else None,
        deelcontacten=tuple(dcs),
        video=draw(opt(_video)),
        shielded=draw(st.booleans()),
        **draw(_source()),
    )


@st.composite
def _medication(draw, mid: str, episode_ids: list[str], author_ids: list[str]) -> m.Medication:
    system = draw(opt(st.sampled_from(["GPK", "HPK", "PRK", "ZI"])))
    start, end = draw(opt(dates)), draw(opt(dates))
    if start and end and end < start:
        start, end = end, start
    quantity = draw(opt(decimals))
    return m.Medication(
        id=mid,
        product_name=draw(text),
        product_system=system,
        product_code=draw(_codes_3_8) if system else None,
        atc=draw(opt(_atcs)),
        dosage_text=draw(opt(text)),
        dosage_code=draw(opt(_codes_1_4)),
        start=start,
        end=end,
        status=draw(st.sampled_from(["active", "stopped", "completed"])),
        prescribed_on=draw(opt(dates)),
        prescriber_id=draw(opt(st.sampled_from(author_ids))) if author_ids else None,
        quantity=quantity,
        quantity_unit=draw(opt(st.sampled_from(["stuk", "ml", "g"]))) if quantity is not None else None,
        episode_id=draw(opt(st.sampled_from(episode_ids))) if episode_ids else None,
        shielded=draw(st.booleans()),
        timing_frequency=draw(opt(st.integers(1, 24))),
        **draw(_timing_periods),
        **draw(_source()),
    )


@st.composite
def _record_of(draw, x, episode_ids: list[str]):
    """An item about the patient as a whole, with what issue 20 adds: its episode, shielding, its HIS id."""
    return msgspec.structs.replace(
        x,
        episode_id=draw(opt(st.sampled_from(episode_ids))) if episode_ids else None,
        shielded=draw(st.booleans()),
        **draw(_source()),
    )


@st.composite
def _dossier_measurement(draw, mid: str, episode_ids: list[str]) -> m.Measurement:
    x = draw(_measurement(mid))
    if draw(st.booleans()):
        x = msgspec.structs.replace(
            x, effective=dt.datetime.combine(x.effective.date(), dt.time(0)), date_only=True
        )
    return draw(_record_of(x, episode_ids))


@st.composite
def _measurement(draw, mid: str) -> m.Measurement:
    kind = draw(st.sampled_from(["number", "text", "none"]))
    return m.Measurement(
        id=mid,
        code=draw(_codes_1_4),
        effective=draw(moments),
        value_quantity=draw(decimals) if kind == "number" else None,
        value_text=draw(text) if kind == "text" else None,
        unit=draw(opt(st.sampled_from(["mmol/L", "Cel", "kg", "mm[Hg]", "umol/L", "%"]))),
        reference_low=draw(opt(decimals)),
        reference_high=draw(opt(decimals)),
        interpretation=draw(opt(st.sampled_from(["L", "H", "N", "A", "LL", "HH"]))),
    )


@st.composite
def dossiers(draw, max_items: int = 4) -> m.Dossier:
    """A valid dossier: every reference resolves, every identifier passes its check."""
    n_orgs = draw(st.integers(0, 2))
    practice = draw(_organization("praktijk"))
    orgs = [draw(_organization(f"org{i}")) for i in range(n_orgs)]
    org_ids = [practice.id] + [o.id for o in orgs]
    gp = draw(opt(_professional("huisarts", org_ids)))
    pros = [draw(_professional(f"prof{i}", org_ids)) for i in range(draw(st.integers(0, 2)))]
    author_ids = ([gp.id] if gp else []) + [p.id for p in pros]
    episodes = [draw(_episode(f"ep{i}")) for i in range(draw(st.integers(0, max_items)))]
    eids = [e.id for e in episodes]
    n = st.integers(0, max_items)
    return m.Dossier(
        practice=practice,
        patient=draw(patients),
        gp=gp,
        professionals=tuple(pros),
        organizations=tuple(orgs),
        episodes=tuple(episodes),
        contacts=tuple(draw(_contact(f"c{i}", eids, author_ids)) for i in range(draw(n))),
        medications=tuple(draw(_medication(f"med{i}", eids, author_ids)) for i in range(draw(n))),
        measurements=tuple(draw(_dossier_measurement(f"meas{i}", eids)) for i in range(draw(n))),
        intolerances=tuple(
            draw(
                _record_of(
                    m.Intolerance(
                        id=f"int{i}",
                        text=draw(text),
                        code=draw(opt(_codes_1_5)),
                        start=draw(opt(dates)),
                        status=draw(st.sampled_from(["active", "inactive"])),
                    ),
                    eids,
                )
            )
            for i in range(draw(st.integers(0, 2)))
        ),
        contraindications=tuple(
            draw(
                _record_of(
                    m.ContraIndication(
                        id=f"ci{i}",
                        text=draw(text),
                        code=draw(opt(_codes_1_5)),
                        start=draw(opt(dates)),
                        end=None,
                    ),
                    eids,
                )
            )
            for i in range(draw(st.integers(0, 2)))
        ),
        attention_notes=tuple(
            draw(_record_of(m.AttentionNote(id=f"att{i}", text=draw(text), date=draw(opt(dates))), eids))
            for i in range(draw(st.integers(0, 2)))
        ),
        correspondence=tuple(draw(correspondences(f"corr{i}", eids)) for i in range(draw(st.integers(0, 2)))),
    )


@st.composite
def correspondences(draw, cid: str, episode_ids: list[str], record: bool = True) -> m.Correspondence:
    """A letter; ``record``: as it sits in the HIS record (shielding and the HIS's own id may be set)."""
    extra = {"shielded": draw(st.booleans()), **draw(_source())} if record else {}
    return m.Correspondence(
        id=cid,
        date=draw(moments),
        direction=draw(st.sampled_from(["in", "out"])),
        text=draw(text),
        kind=draw(opt(st.sampled_from(["1", "2", "3", "10"]))),
        subject=draw(opt(_plain)),
        sender_name=draw(opt(short)),
        sender_discipline=draw(opt(st.sampled_from(["cardiologie", "wijkteam", "fysiotherapie"]))),
        addressee_name=draw(opt(short)),
        episode_id=draw(opt(st.sampled_from(episode_ids))) if episode_ids else None,
        sender_reference=draw(opt(ids)),
        **extra,
    )


@st.composite
def postbox_items(draw) -> m.PostboxItem:
    """A postbox item: about half carry a ready filing, the rest a reason for manual filing."""
    corr = draw(correspondences("letter", ["ep1"], record=False))
    filed = draw(st.booleans())
    filing = None
    if filed:
        filing = m.AutoFiling(
            episode_id="ep1",
            journal_entry=m.JournalEntry(
                date=draw(moments),
                episode_id="ep1",
                icpc=draw(opt(icpcs)),
                lines=tuple(draw(st.lists(concept_lines, min_size=1, max_size=3))),
                contact_type=draw(opt(st.sampled_from(["06", "09"]))),
            ),
        )
    return m.PostboxItem(
        id=draw(ids),
        kind=draw(st.sampled_from(["feedback", "consult-answer", "letter", "result"])),
        created=draw(moments),
        practice_agb=draw(agbs),
        patient=draw(
            st.builds(
                m.PatientMatch,
                bsn=opt(bsns),
                birth_date=opt(dates),
                name=opt(names),
                sender_reference=opt(ids),
            )
        ),
        correspondence=corr
        if filed
        else m.Correspondence(
            **{**{f: getattr(corr, f) for f in corr.__struct_fields__}, "episode_id": None}
        ),
        sender_organization=draw(opt(short)),
        filing=filing,
        manual_reason=None
        if filed
        else draw(st.sampled_from(["BSN does not match", "episode unknown", "two candidate episodes"])),
    )
