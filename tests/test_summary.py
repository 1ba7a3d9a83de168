"""The professional summary selection rules (issue 2), table-driven with a controlled reference date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.ps_hl7v3 import FORMAT as PS
from mappings import model as m
from mappings.problems import InputError
from mappings.summary import build_summary, months_before
from tests.strategies import dossiers

AS_OF = dt.date(2026, 6, 30)
REAL = (Path(__file__).resolve().parents[2] / "shared" / "external" / "nictiz-huisartswaarneming"
        / "QUPC_IN990002NL_01.hl7v3.xml")


def ep(eid, *, end=None, attention=False, shielded=False):
    return m.Episode(id=eid, title=eid, icpc="K86", start=dt.date(2020, 1, 1), end=end, attention=attention,
                     shielded=shielded)


def contact(cid, when, episode=None, shielded=False):
    return m.Contact(id=cid, start=when, shielded=shielded,
                     deelcontacten=(m.Deelcontact(episode_id=episode, icpc="K86",
                                                  lines=(m.SoepLine(type="S", text=f"regel {cid}"),)),))


def med(mid, *, start=dt.date(2026, 1, 1), end=None, episode=None):
    return m.Medication(id=mid, product_name=mid, start=start, end=end, episode_id=episode)


def meas(mid, code, when, value):
    return m.Measurement(id=mid, code=code, effective=when, value_quantity=Decimal(value))


BASE = m.Dossier(
    practice=m.Organization(id="praktijk", name="Praktijk"),
    patient=m.Patient(bsn="555555914", name=m.PersonName(family="Direnç"), birth_date=dt.date(1950, 5, 20)),
    episodes=(ep("active"), ep("closed", end=dt.date(2024, 1, 1)),
              ep("closed-attention", end=dt.date(2024, 1, 1), attention=True),
              ep("shielded", shielded=True)),
    contacts=(contact("in-window", dt.datetime(2026, 6, 29, 10, 0), "active"),
              contact("on-as-of", dt.datetime(2026, 6, 30, 23, 59), "active"),
              contact("exactly-4-months", dt.datetime(2026, 2, 28, 9, 0), "active"),  # 30 Jun - 4 mo = 28 Feb
              contact("just-inside", dt.datetime(2026, 3, 1, 9, 0), "active"),
              contact("after-as-of", dt.datetime(2026, 7, 1, 9, 0), "active"),
              contact("about-closed", dt.datetime(2026, 5, 1, 9, 0), "closed"),
              contact("about-shielded", dt.datetime(2026, 5, 1, 9, 0), "shielded"),
              contact("shielded-contact", dt.datetime(2026, 5, 2, 9, 0), None, shielded=True)),
    medications=(med("current"), med("ends-today", end=AS_OF), med("stopped-2-months", end=dt.date(2026, 4, 30)),
                 med("stopped-long-ago", start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1)), med("future", start=dt.date(2026, 8, 1)),
                 med("for-closed", episode="closed")),
    measurements=(meas("t1", "1915", dt.datetime(2026, 1, 1), "37.1"), meas("t2", "1915", dt.datetime(2026, 6, 1), "38.2"),
                  meas("t3", "1915", dt.datetime(2026, 7, 1), "39.0"), meas("g1", "3208", dt.datetime(2020, 1, 1), "5.4")),
    contraindications=(m.ContraIndication(id="ci-open", text="ASTMA"),
                       m.ContraIndication(id="ci-ended", text="oud", end=dt.date(2025, 1, 1))),
    intolerances=(m.Intolerance(id="pen", text="penicilline", code="35"),),
    attention_notes=(m.AttentionNote(id="att1", text="let op"),),
)


@pytest.fixture(scope="module")
def summary():
    return build_summary(BASE, as_of=AS_OF)


def test_episodes_active_and_closed_with_attention(summary):
    assert [e.id for e in summary.episodes] == ["active", "closed-attention"]


@pytest.mark.parametrize("cid,included", [
    ("in-window", True), ("on-as-of", True), ("exactly-4-months", False), ("just-inside", True),
    ("after-as-of", False), ("about-closed", True), ("about-shielded", False), ("shielded-contact", False)])
def test_journal_window_and_shielding(summary, cid, included):
    assert (cid in {c.id for c in summary.contacts}) is included


def test_link_to_episode_outside_summary_is_cleared_icpc_kept(summary):
    c = next(c for c in summary.contacts if c.id == "about-closed")
    assert c.deelcontacten[0].episode_id is None and c.deelcontacten[0].icpc == "K86"


@pytest.mark.parametrize("mid,included", [
    ("current", True), ("ends-today", True), ("stopped-2-months", True), ("stopped-long-ago", False),
    ("future", False), ("for-closed", True)])
def test_medication(summary, mid, included):
    assert (mid in {x.id for x in summary.medications}) is included


def test_stopped_window_is_configurable():
    narrow = build_summary(BASE, as_of=AS_OF, stopped_window_months=1)
    assert "stopped-2-months" not in {x.id for x in narrow.medications}


def test_latest_measurement_per_code_up_to_as_of(summary):
    assert sorted(x.id for x in summary.measurements) == ["g1", "t2"]


def test_contraindications_intolerances_attention(summary):
    assert [c.id for c in summary.contraindications] == ["ci-open"]
    assert [i.id for i in summary.intolerances] == ["pen"] and [a.id for a in summary.attention_notes] == ["att1"]


def test_narrowed_to_chosen_episodes():
    s = build_summary(BASE, as_of=AS_OF, episode_ids=["closed"])
    assert [e.id for e in s.episodes] == ["closed"]
    assert [c.id for c in s.contacts] == ["about-closed"] and s.contacts[0].deelcontacten[0].episode_id == "closed"
    assert [x.id for x in s.medications] == ["for-closed"]
    assert [i.id for i in s.intolerances] == ["pen"]  # patient-wide facts stay


@pytest.mark.parametrize("ids,code", [(["nope"], "SUM-001"), (["shielded"], "SUM-002")])
def test_bad_episode_choice(ids, code):
    with pytest.raises(InputError) as info:
        build_summary(BASE, as_of=AS_OF, episode_ids=ids)
    assert info.value.problems[0].code == code


@pytest.mark.parametrize("day,months,expected", [
    (dt.date(2026, 6, 30), 4, dt.date(2026, 2, 28)), (dt.date(2024, 6, 30), 4, dt.date(2024, 2, 29)),
    (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)), (dt.date(2026, 1, 15), 4, dt.date(2025, 9, 15))])
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


def test_real_ps_summary():
    d = PS.read(REAL.read_bytes(), source="ps.xml")
    s = build_summary(d, as_of=dt.date(2017, 6, 21))
    assert len(s.episodes) == 6  # all six are active
    assert {c.id for c in s.contacts} == {c.id for c in d.contacts if dt.date(2017, 2, 21) < c.start.date() <= dt.date(2017, 6, 21)}
    assert len(s.contacts) < len(d.contacts)
    assert {x.code for x in s.measurements} == {x.code for x in d.measurements}
    assert sum(x.code == "1915" for x in s.measurements) == 1  # latest temperature only
    assert s.medications == ()  # both prescriptions ended in 2004


@settings(max_examples=200, deadline=None)
@given(dossiers(), st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)))
def test_summary_is_always_a_valid_dossier(d, as_of):
    s = build_summary(d, as_of=as_of)
    assert m.from_json(m.to_json(s)) == s  # decoding re-runs every check, references included
    assert not any(e.shielded for e in s.episodes) and not any(c.shielded for c in s.contacts)
