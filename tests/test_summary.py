"""The professional summary selection rules (mappings/summary.py), table-driven with a fixed reference date.

Every rule of the module docstring has its table here; the dates sit on the edges (exactly 4 months back,
month ends, leap days, the reference date itself).
"""

from __future__ import annotations

import datetime as dt
import timeit
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.ps_hl7v3 import FORMAT as PS
from mappings import model as m
from mappings.problems import InputError, ProblemSink
from mappings.summary import build_summary, months_before
from tests.factories import typical_dossier
from tests.strategies import dossiers

AS_OF = dt.date(2026, 6, 30)  # 4 months back: 28 Feb 2026 (no 30 Feb); 3 months back: 30 Mar 2026
REAL = Path(__file__).parent / "golden" / "ps-hl7v3" / "nictiz-real-instance" / "input.xml"


def ep(eid, *, start=dt.date(2020, 1, 1), end=None, attention=False, shielded=False):
    return m.Episode(
        id=eid, title=eid, icpc="K86", start=start, end=end, attention=attention, shielded=shielded
    )


def dc(episode, text="regel"):
    return m.Deelcontact(episode_id=episode, icpc="K86", lines=(m.SoepLine(type="S", text=text),))


def contact(cid, when, *episodes, shielded=False, author=None):
    return m.Contact(
        id=cid,
        start=when,
        shielded=shielded,
        author_id=author,
        deelcontacten=tuple(dc(e, f"{cid} {e}") for e in (episodes or (None,))),
    )


def med(mid, *, start=dt.date(2026, 1, 1), end=None, status="active", episode=None, prescriber=None):
    return m.Medication(
        id=mid,
        product_name=mid,
        start=start,
        end=end,
        status=status,
        episode_id=episode,
        prescriber_id=prescriber,
    )


def meas(mid, code, when, value):
    return m.Measurement(id=mid, code=code, effective=when, value_quantity=Decimal(value))


def letter(lid, when, episode=None):
    return m.Correspondence(id=lid, date=when, direction="in", text=f"brief {lid}", episode_id=episode)


BASE = m.Dossier(
    practice=m.Organization(id="praktijk", name="Praktijk"),
    patient=m.Patient(bsn="555555914", name=m.PersonName(family="Direnç"), birth_date=dt.date(1950, 5, 20)),
    gp=m.HealthProfessional(id="huisarts", agb="00098765", organization_id="praktijk"),
    professionals=(
        m.HealthProfessional(id="locum-old", agb="01638767", organization_id="amby"),
        m.HealthProfessional(id="locum-new", agb="01999999"),
    ),
    organizations=(m.Organization(id="amby", name="Gezondheidscentrum Amby"),),
    episodes=(
        ep("active"),
        ep("closed", end=dt.date(2024, 1, 1)),
        ep("closed-attention", end=dt.date(2024, 1, 1), attention=True),
        ep("ends-on-as-of", end=AS_OF),
        ep("ends-on-as-of-attention", end=AS_OF, attention=True),
        ep("ends-after-as-of", end=dt.date(2026, 7, 1)),
        ep("starts-after-as-of", start=dt.date(2026, 7, 1)),
        ep("shielded", shielded=True),
        ep("shielded-attention", end=dt.date(2024, 1, 1), attention=True, shielded=True),
    ),
    contacts=(
        contact("in-window", dt.datetime(2026, 6, 29, 10, 0), "active", author="locum-new"),
        contact("on-as-of", dt.datetime(2026, 6, 30, 23, 59), "active"),
        contact("exactly-4-months", dt.datetime(2026, 2, 28, 9, 0), "active"),
        contact("just-inside", dt.datetime(2026, 3, 1, 0, 0), "active"),
        contact("after-as-of", dt.datetime(2026, 7, 1, 9, 0), "active"),
        contact("long-ago", dt.datetime(2025, 6, 30, 9, 0), "active", author="locum-old"),
        contact("about-closed", dt.datetime(2026, 5, 1, 9, 0), "closed"),
        contact("about-shielded", dt.datetime(2026, 5, 1, 9, 0), "shielded"),
        contact("mixed", dt.datetime(2026, 5, 3, 9, 0), "shielded", "active"),
        contact("unlinked", dt.datetime(2026, 5, 4, 9, 0)),
        contact("shielded-contact", dt.datetime(2026, 5, 2, 9, 0), "active", shielded=True),
    ),
    medications=(
        med("current"),
        med("ends-today", end=AS_OF),
        med("ends-tomorrow", end=dt.date(2026, 7, 1)),
        med("stopped-2-months", end=dt.date(2026, 4, 30), status="stopped"),
        med("stopped-exactly-3-months", end=dt.date(2026, 3, 30), status="stopped"),
        med("stopped-just-inside", end=dt.date(2026, 3, 31), status="stopped"),
        med("stopped-long-ago", start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1), status="stopped"),
        med("future", start=dt.date(2026, 8, 1)),
        med("stopped-undated", status="stopped"),
        med("completed-ending-later", end=dt.date(2026, 7, 10), status="completed"),
        med("for-closed", episode="closed"),
        med("for-shielded", episode="shielded"),
        med("by-old-locum", prescriber="locum-old", start=dt.date(2010, 1, 1), end=dt.date(2010, 2, 1)),
    ),
    measurements=(
        meas("t1", "1915", dt.datetime(2026, 1, 1), "37.1"),
        meas("t2", "1915", dt.datetime(2026, 6, 30, 23), "38.2"),
        meas("t3", "1915", dt.datetime(2026, 7, 1), "39.0"),
        meas("g1", "3208", dt.datetime(2010, 1, 1), "5.4"),
        meas("g2", "3208", dt.datetime(2009, 1, 1), "6.0"),
    ),
    contraindications=(
        m.ContraIndication(id="ci-open", text="ASTMA"),
        m.ContraIndication(id="ci-ends-on-as-of", text="tot vandaag", end=AS_OF),
        m.ContraIndication(id="ci-ended", text="oud", end=dt.date(2025, 1, 1)),
        m.ContraIndication(id="ci-later", text="later", start=dt.date(2026, 7, 1)),
    ),
    intolerances=(
        m.Intolerance(id="pen", text="penicilline", code="35"),
        m.Intolerance(id="old", text="oud", status="inactive", start=dt.date(2001, 1, 1)),
        m.Intolerance(id="later", text="later", start=dt.date(2026, 7, 2)),
    ),
    attention_notes=(
        m.AttentionNote(id="att1", text="let op"),
        m.AttentionNote(id="att2", text="eerder", date=AS_OF),
        m.AttentionNote(id="att3", text="later", date=dt.date(2026, 7, 1)),
    ),
    correspondence=(
        letter("l-recent", dt.datetime(2026, 6, 1, 8), "active"),
        letter("l-closed", dt.datetime(2026, 6, 2, 8), "closed"),
        letter("l-shielded", dt.datetime(2026, 6, 3, 8), "shielded"),
        letter("l-old", dt.datetime(2025, 1, 1, 8), "active"),
    ),
)


@pytest.fixture(scope="module")
def summary():
    return build_summary(BASE, as_of=AS_OF)


def ids(items):
    return [x.id for x in items]


@pytest.mark.parametrize(
    "eid,included",
    [
        ("active", True),
        ("closed", False),
        ("closed-attention", True),
        ("ends-on-as-of", False),
        ("ends-on-as-of-attention", True),
        ("ends-after-as-of", True),
        ("starts-after-as-of", False),
        ("shielded", False),
        ("shielded-attention", False),
    ],
)
def test_episodes_active_on_as_of_and_closed_with_attention(summary, eid, included):
    assert (eid in ids(summary.episodes)) is included


@pytest.mark.parametrize(
    "cid,included",
    [
        ("in-window", True),
        ("on-as-of", True),
        ("exactly-4-months", False),
        ("just-inside", True),
        ("after-as-of", False),
        ("long-ago", False),
        ("about-closed", True),
        ("about-shielded", False),
        ("mixed", True),
        ("unlinked", True),
        ("shielded-contact", False),
    ],
)
def test_journal_window_and_shielding(summary, cid, included):
    assert (cid in ids(summary.contacts)) is included


def test_deelcontact_of_a_shielded_episode_is_removed_the_rest_stays(summary):
    mixed = next(c for c in summary.contacts if c.id == "mixed")
    assert [x.episode_id for x in mixed.deelcontacten] == ["active"]


def test_link_to_episode_outside_summary_is_cleared_icpc_and_lines_kept(summary):
    c = next(c for c in summary.contacts if c.id == "about-closed")
    assert c.deelcontacten[0] == m.Deelcontact(
        episode_id=None, icpc="K86", lines=(m.SoepLine(type="S", text="about-closed closed"),)
    )


@pytest.mark.parametrize(
    "as_of,day,included",
    [
        (dt.date(2026, 3, 31), dt.date(2025, 11, 30), False),  # 31 March - 4 months = 30 November (month end)
        (dt.date(2026, 3, 31), dt.date(2025, 12, 1), True),
        (dt.date(2024, 6, 30), dt.date(2024, 2, 29), False),  # leap year: 30 June - 4 months = 29 February
        (dt.date(2024, 6, 30), dt.date(2024, 3, 1), True),
        (dt.date(2024, 2, 29), dt.date(2023, 10, 29), False),
        (dt.date(2024, 2, 29), dt.date(2023, 10, 30), True),
        (dt.date(2026, 1, 15), dt.date(2025, 9, 15), False),  # across the year
        (dt.date(2026, 1, 15), dt.date(2026, 1, 15), True),
    ],
)
def test_journal_window_edges(as_of, day, included):
    d = m.Dossier(
        practice=BASE.practice,
        patient=BASE.patient,
        episodes=(ep("active"),),
        contacts=(contact("c", dt.datetime.combine(day, dt.time(12, 0)), "active"),),
    )
    assert bool(build_summary(d, as_of=as_of).contacts) is included


@pytest.mark.parametrize(
    "mid,included",
    [
        ("current", True),
        ("ends-today", True),
        ("ends-tomorrow", True),
        ("stopped-2-months", True),
        ("stopped-exactly-3-months", False),
        ("stopped-just-inside", True),
        ("stopped-long-ago", False),
        ("future", False),
        ("stopped-undated", False),
        ("completed-ending-later", True),
        ("for-closed", True),
        ("for-shielded", False),
        ("by-old-locum", False),
    ],
)
def test_medication(summary, mid, included):
    assert (mid in ids(summary.medications)) is included


def test_medication_link_to_episode_outside_summary_is_cleared(summary):
    assert next(x for x in summary.medications if x.id == "for-closed").episode_id is None


@pytest.mark.parametrize(
    "months,mid,included",
    [
        (1, "stopped-2-months", False),
        (2, "stopped-2-months", False),
        (3, "stopped-2-months", True),
        (3, "stopped-just-inside", True),
        (6, "stopped-long-ago", False),
        (18, "stopped-long-ago", True),
        (0, "stopped-2-months", False),
        (0, "ends-today", True),
    ],
)
def test_stopped_window_is_configurable(months, mid, included):
    s = build_summary(BASE, as_of=AS_OF, stopped_window_months=months)
    assert (mid in ids(s.medications)) is included


def test_latest_measurement_per_code_up_to_as_of(summary):
    assert ids(summary.measurements) == ["t2", "g1"]  # t3 is after as_of; g1 is old but the latest 3208


@pytest.mark.parametrize(
    "kind,item,included",
    [
        ("contraindications", "ci-open", True),
        ("contraindications", "ci-ends-on-as-of", True),
        ("contraindications", "ci-ended", False),
        ("contraindications", "ci-later", False),
        ("intolerances", "pen", True),
        ("intolerances", "old", True),
        ("intolerances", "later", False),
        ("attention_notes", "att1", True),
        ("attention_notes", "att2", True),
        ("attention_notes", "att3", False),
        ("correspondence", "l-recent", True),
        ("correspondence", "l-closed", True),
        ("correspondence", "l-shielded", False),
        ("correspondence", "l-old", False),
    ],
)
def test_patient_wide_items(summary, kind, item, included):
    assert (item in ids(getattr(summary, kind))) is included


def test_only_referenced_professionals_and_organisations_stay(summary):
    assert ids(summary.professionals) == ["locum-new"] and summary.organizations == ()
    assert summary.gp == BASE.gp and summary.practice == BASE.practice and summary.patient == BASE.patient


def test_narrowed_to_chosen_episodes():
    s = build_summary(BASE, as_of=AS_OF, episode_ids=["closed"])
    assert ids(s.episodes) == ["closed"]  # closed and without attention, but chosen
    assert ids(s.contacts) == ["about-closed"] and s.contacts[0].deelcontacten[0].episode_id == "closed"
    assert ids(s.medications) == ["for-closed"] and s.medications[0].episode_id == "closed"
    assert ids(s.correspondence) == ["l-closed"]
    # patient-wide facts stay whatever the choice
    assert ids(s.intolerances) == ["pen", "old"] and ids(s.contraindications) == [
        "ci-open",
        "ci-ends-on-as-of",
    ]
    assert ids(s.measurements) == ["t2", "g1"] and ids(s.attention_notes) == ["att1", "att2"]


def test_narrowed_keeps_dossier_order_once_and_drops_the_rest_of_a_mixed_contact():
    s = build_summary(BASE, as_of=AS_OF, episode_ids=["active", "closed", "active"])
    assert ids(s.episodes) == ["active", "closed"]
    mixed = next(c for c in s.contacts if c.id == "mixed")
    assert [x.episode_id for x in mixed.deelcontacten] == ["active"]
    assert "unlinked" not in ids(s.contacts) and "current" not in ids(s.medications)


def test_narrowed_to_nothing():
    s = build_summary(BASE, as_of=AS_OF, episode_ids=[])
    assert (s.episodes, s.contacts, s.medications, s.correspondence) == ((), (), (), ())
    assert ids(s.intolerances) == ["pen", "old"]


@pytest.mark.parametrize(
    "chosen,codes",
    [
        (["nope"], ["SUM-001"]),
        (["shielded"], ["SUM-002"]),
        (["nope", "active", "shielded"], ["SUM-001", "SUM-002"]),
    ],
)
def test_bad_episode_choice_reports_every_id(chosen, codes):
    with pytest.raises(InputError) as info:
        build_summary(BASE, as_of=AS_OF, episode_ids=chosen, source="dossier.json")
    assert [p.code for p in info.value.problems] == codes
    assert info.value.problems[0].location == f"dossier.json --episode {chosen[0]}"


def test_bad_episode_choice_strict_stops_at_first():
    with pytest.raises(InputError) as info:
        build_summary(BASE, as_of=AS_OF, episode_ids=["nope", "shielded"], sink=ProblemSink(strict=True))
    assert [p.code for p in info.value.problems] == ["SUM-001"]


@pytest.mark.parametrize(
    "day,months,expected",
    [
        (dt.date(2026, 6, 30), 4, dt.date(2026, 2, 28)),
        (dt.date(2024, 6, 30), 4, dt.date(2024, 2, 29)),
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2026, 1, 15), 4, dt.date(2025, 9, 15)),
        (dt.date(2026, 5, 31), 3, dt.date(2026, 2, 28)),
        (dt.date(2026, 1, 31), 0, dt.date(2026, 1, 31)),
        (dt.date(2026, 12, 31), 12, dt.date(2025, 12, 31)),
    ],
)
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


# -- the real professional summary ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    return PS.read(REAL.read_bytes(), source="ps.xml")


def test_real_ps_summary_on_2017_06_21(real):
    s = build_summary(real, as_of=dt.date(2017, 6, 21))
    assert ids(s.episodes) == ["525", "528", "529", "530", "531", "532"]  # all six are active
    # window (21 Feb 2017, 21 Jun 2017]: 5847 of 21 Feb 12:04 is exactly 4 months back, 101 is from 2004
    assert ids(s.contacts) == [
        "5837",
        "5838",
        "5839",
        "5840",
        "5841",
        "5842",
        "5843",
        "5844",
        "5845",
        "5846",
        "5888",
    ]
    assert sum(len(x.lines) for c in s.contacts for x in c.deelcontacten) == 42 - 2 - 3
    assert {x.code: x.id for x in s.measurements} == {
        "1334": "5331",
        "1915": "5332",
        "3208": "5333",
        "2283": "5334",
        "1913": "5335",
        "193": "0076895252",
    }
    assert s.medications == ()  # both prescriptions ended in 2004
    assert ids(s.contraindications) == ["43284", "43293"] and ids(s.intolerances) == ["72"]
    assert ids(s.attention_notes) == ["att1"]
    assert s.professionals == () and s.organizations == ()  # the 2004 locum is no longer referred to
    assert m.from_json(m.to_json(s)) == s


def test_real_ps_narrowed_to_the_back_problem(real):
    s = build_summary(real, as_of=dt.date(2017, 6, 21), episode_ids=["532"])
    assert ids(s.episodes) == ["532"]
    assert ids(s.contacts) == ["5837", "5839", "5840", "5841", "5845"]
    assert {x.episode_id for c in s.contacts for x in c.deelcontacten} == {"532"}


def test_real_ps_a_day_later_drops_a_contact(real):
    before = build_summary(real, as_of=dt.date(2017, 6, 25))
    after = build_summary(real, as_of=dt.date(2017, 6, 26))  # 26 Feb (5846) is then exactly 4 months back
    assert "5846" in ids(before.contacts) and "5846" not in ids(after.contacts)


# -- always a valid dossier, and fast ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(dossiers(), st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)), st.booleans())
def test_summary_is_always_a_valid_dossier(d, as_of, narrow):
    chosen = [e.id for e in d.episodes if not e.shielded][:2] if narrow else None
    s = build_summary(d, as_of=as_of, episode_ids=chosen)
    assert m.from_json(m.to_json(s)) == s  # decoding re-runs every check, references included
    assert not any(e.shielded for e in s.episodes) and not any(c.shielded for c in s.contacts)
    shielded = {e.id for e in d.episodes if e.shielded}
    assert not any(x.episode_id in shielded for c in s.contacts for x in c.deelcontacten)
    assert not any(x.episode_id in shielded for x in s.medications)


def test_summary_of_a_typical_dossier_is_fast():
    d = typical_dossier(1)
    per_call = (
        min(timeit.repeat(lambda: build_summary(d, as_of=dt.date(2026, 6, 30)), number=20, repeat=3)) / 20
    )
    assert per_call < 0.005  # measured about 0.1 ms; the budget of a whole read is 5 ms
