"""Deterministic example dossiers: the *typical* dossier of the benchmarks and bulk files.

Codes come from the shipped code-table subsets (mappings/codes), so a typical read raises no CODE-001.

A typical dossier (issue 2, acceptance 8): about 30 episodes, 300 journal lines, 40 medications and
200 measurements, with Dutch names and realistic codes. ``typical_dossier(seed)`` always gives the same
dossier for the same seed; ``small_dossier(seed)`` is a quick one for bulk files of 10,000 patients.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from mappings import model as m

_AMS = ZoneInfo("Europe/Amsterdam")

_ICPC = ["K78", "K86", "T90", "R96", "L86.01", "S74.01", "R21.01", "D02", "L03", "K70", "S13"]
_T45 = [("1915", "Cel", "37.3"), ("1913", "Cel", "37.4"), ("3208", "mmol/L", "5.4"), ("193", "umol/L", "83")]
_FAMILIES = [
    ("van der", "Berg"),
    ("de", "Vries"),
    (None, "Jansen"),
    ("van", "Dijk"),
    (None, "Bakker"),
    ("ter", "Horst"),
    (None, "Smit"),
    ("van den", "Heuvel"),
    (None, "Direnç"),
    (None, "Öztürk"),
]
_GIVEN = ["Jan", "Anna", "Pieter", "Eline", "Sem", "Fleur", "Daan", "Noëlle", "Ĳsbrand", "Zoë"]
_TEXTS = [
    "Voelt zich beter, maar het is nog erg stijf",
    "Geen koorts, niet ziek. Keel: gb.",
    "RR 135/85 | pols 72 reg.",
    "Controle over 3 mnd.\nBij klachten eerder terug.",
    "Pt. vraagt om verwijzing fysiotherapie (c:\\temp\\brief.doc)",
    "Hoesten sinds 2 wk, géén dyspneu",
    "Uitleg leefregels & medicatie-inname <1x per dag>",
    "E: stabiel; P: metoprolol 50 mg 1dd1",
]


def _real(t: dt.datetime) -> dt.datetime:
    """Shift a wall-clock time out of the spring-forward gap (it does not exist in Europe/Amsterdam)."""
    aware = t.replace(tzinfo=_AMS)
    if aware.astimezone(dt.UTC).astimezone(_AMS).replace(tzinfo=None) != t:
        return t + dt.timedelta(hours=1)
    return t


def _bsn(rng: random.Random) -> str:
    while True:
        base = f"{rng.randrange(10_000_000, 99_999_999):08d}"
        total = sum(int(c) * w for c, w in zip(base, (9, 8, 7, 6, 5, 4, 3, 2), strict=True))
        if total % 11 < 10:
            bsn = base + str(total % 11)
            if m.bsn_is_valid(bsn):
                return bsn


def _patient(rng: random.Random) -> m.Patient:
    prefix, family = rng.choice(_FAMILIES)
    pprefix, pfamily = rng.choice(_FAMILIES)
    married = rng.random() < 0.4
    return m.Patient(
        bsn=_bsn(rng),
        name=m.PersonName(
            initials=f"{rng.choice('AJPEMS')}.",
            given=rng.choice(_GIVEN),
            prefix=prefix,
            family=family,
            partner_prefix=pprefix if married else None,
            partner_family=pfamily if married else None,
            usage="NL4" if married else "NL1",
        ),
        birth_date=dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 30000)),
        gender=rng.choice(["male", "female"]),
        address=m.Address(
            street="Fleurop",
            house_number=str(rng.randrange(1, 200)),
            postal_code="1256 DC",
            city="Venlo",
            country="NL",
            use="home",
        ),
        telecom=(m.Telecom(system="phone", value="+31190531770", use="home"),),
        insurance=m.Insurance(
            uzovi="3311", policy_number=f"{rng.randrange(10**8, 10**9)}", insurer_name="CZ"
        ),
    )


def _practice_and_gp() -> tuple[m.Organization, m.HealthProfessional]:
    practice = m.Organization(
        id="praktijk",
        name="Huisartsenpraktijk Valkendael",
        agb="01073652",
        address=m.Address(
            street="Valkendael",
            house_number="45",
            postal_code="6245 HK",
            city="Maastricht",
            country="NL",
            use="work",
        ),
        telecom=(m.Telecom(system="phone", value="+31434073576", use="work"),),
    )
    gp = m.HealthProfessional(
        id="huisarts",
        name=m.PersonName(initials="K.", given="Koos", family="Jansma", title="Dr."),
        agb="01638767",
        uzi="900014719",
        role="01.015",
        organization_id="praktijk",
    )
    return practice, gp


def typical_dossier(
    seed: int = 1,
    episodes: int = 30,
    journal_lines: int = 300,
    medications: int = 40,
    measurements: int = 200,
) -> m.Dossier:
    """The benchmark's typical dossier (deterministic for a seed)."""
    rng = random.Random(seed)
    practice, gp = _practice_and_gp()
    base = dt.datetime(2026, 6, 1, 9, 0)
    eps = []
    for i in range(episodes):
        start = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(0, 4000))
        closed = rng.random() < 0.4
        eps.append(
            m.Episode(
                id=f"ep{i}",
                title=f"{rng.choice(_TEXTS)[:30]} ({i})",
                icpc=rng.choice(_ICPC),
                start=start,
                end=start + dt.timedelta(days=rng.randrange(1, 300)) if closed else None,
                attention=closed and rng.random() < 0.3,
            )
        )
    contacts = []
    lines_left, ci = journal_lines, 0
    while lines_left > 0:
        start = _real(base - dt.timedelta(days=rng.randrange(0, 900), minutes=rng.randrange(0, 600)))
        dcs = []
        for _ in range(rng.choice([1, 1, 2])):
            n = min(lines_left, 4)
            lines_left -= n
            ep = rng.choice(eps) if eps else None
            dcs.append(
                m.Deelcontact(
                    episode_id=ep.id if ep else None,
                    icpc=ep.icpc if ep else None,
                    lines=tuple(
                        m.SoepLine(
                            type="SOEP"[k],
                            text=rng.choice(_TEXTS),
                            icpc=ep.icpc if (ep and "SOEP"[k] == "E") else None,
                        )
                        for k in range(n)
                    ),
                )
            )
            if lines_left <= 0:
                break
        contacts.append(
            m.Contact(
                id=f"c{ci}",
                start=start,
                end=start + dt.timedelta(minutes=10),
                contact_type="03",
                author_id="huisarts",
                deelcontacten=tuple(dcs),
            )
        )
        ci += 1
    meds = [
        m.Medication(
            id=f"med{i}",
            product_name="metoprolol 50 mg tablet",
            product_system="GPK",
            product_code=str(rng.randrange(10000, 99999)),
            atc="C07AB02",
            dosage_text="1 maal per dag 1 tablet",
            start=dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 400)),
            status=rng.choice(["active", "active", "stopped"]),
            prescriber_id="huisarts",
            quantity=Decimal(30),
            quantity_unit="stuk",
        )
        for i in range(medications)
    ]
    meas = []
    for i in range(measurements):
        code, unit, value = rng.choice(_T45)
        meas.append(
            m.Measurement(
                id=f"meas{i}",
                code=code,
                unit=unit,
                effective=base - dt.timedelta(days=rng.randrange(0, 1500)),
                value_quantity=Decimal(value) + Decimal(rng.randrange(0, 20)) / 10,
                reference_low=Decimal("3.5") if code == "3208" else None,
                reference_high=Decimal("6.1") if code == "3208" else None,
            )
        )
    return m.Dossier(
        practice=practice,
        patient=_patient(rng),
        gp=gp,
        episodes=tuple(eps),
        contacts=tuple(contacts),
        medications=tuple(meds),
        measurements=tuple(meas),
        intolerances=(
            m.Intolerance(
                id="int1", text="Forse reactie op penicilline", code="35", start=dt.date(2016, 11, 30)
            ),
        ),
        contraindications=(
            m.ContraIndication(id="ci1", text="ASTMA", code="1347", start=dt.date(2016, 11, 30)),
        ),
        attention_notes=(
            m.AttentionNote(
                id="att1", text="Patiënt onderschat eigen ziek zijn vaak.", date=dt.date(2017, 6, 18)
            ),
        ),
    )


def small_dossier(seed: int) -> m.Dossier:
    """A small dossier (3 episodes, 12 lines, 3 medications, 5 measurements) for bulk files."""
    return typical_dossier(seed, episodes=3, journal_lines=12, medications=3, measurements=5)
