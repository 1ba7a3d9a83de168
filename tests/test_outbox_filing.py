"""Issue 7 acceptance 5: auto-filing decides certain / not certain from a table of match cases, takes the
practice's facts from the FHIR store, and the filed output reads back with each dialect's reader."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random

import pytest

from adapters.base import get_postbox_format
from gateway.db import make_engine, migrate
from gateway.outbox import enqueue
from gateway.outbox.config import parse_routing
from gateway.outbox.filing import EpisodeFact, PatientFacts, auto_file
from gateway.outbox.storefacts import facts_from_store
from gateway.outbox.testkit import make_item, patients
from gateway.outbox.worker import Worker
from gateway.store import Store
from mappings import model as m
from mappings.fhir import codes as c

AGB = "04000001"
P = patients(random.Random(9), 3)
EPISODES = (
    EpisodeFact("E1", "Hypertensie", "K86"),
    EpisodeFact("E2", "Diabetes mellitus", "T90.02"),
    EpisodeFact("E3", "Lage rugpijn", "L03", active=False),
)
CERTAIN = PatientFacts(
    candidates=1, birth_date=P[0].birth_date, sender_references=frozenset({P[0].reference}), episodes=EPISODES
)
PROPOSAL = m.AutoFiling(
    episode_id="E1",
    journal_entry=m.JournalEntry(
        date=dt.datetime(2026, 11, 22, 10, 0),
        episode_id="E1",
        icpc="K86",
        lines=(
            m.SoepLine(type="E", text="Hypertensie, goed ingesteld", icpc="K86"),
            m.SoepLine(type="P", text="Beleid ongewijzigd, controle over 3 maanden"),
        ),
    ),
)


def _item(**patient_changes) -> m.PostboxItem:
    item = make_item("fb-1", AGB, P[0], episode_id="E1")
    if patient_changes:
        item = m.PostboxItem(
            **{
                **{f: getattr(item, f) for f in item.__struct_fields__},
                "patient": m.PatientMatch(
                    **{
                        **{f: getattr(item.patient, f) for f in item.patient.__struct_fields__},
                        **patient_changes,
                    }
                ),
            }
        )
    return item


def _with(item: m.PostboxItem, **changes) -> m.PostboxItem:
    return m.PostboxItem(**{**{f: getattr(item, f) for f in item.__struct_fields__}, **changes})


def _corr(item: m.PostboxItem, **changes) -> m.PostboxItem:
    corr = m.Correspondence(
        **{**{f: getattr(item.correspondence, f) for f in item.correspondence.__struct_fields__}, **changes}
    )
    return _with(item, correspondence=corr)


def _proposal(episode_id: str, icpc: str | None) -> dict:
    return {
        "manual_reason": None,
        "filing": m.AutoFiling(
            episode_id=episode_id,
            journal_entry=m.JournalEntry(
                date=dt.datetime(2026, 11, 22, 10, 0),
                episode_id=episode_id,
                icpc=icpc,
                lines=(m.SoepLine(type="P", text="Beleid ongewijzigd"),),
            ),
        ),
    }


NO_EPISODE = _corr(_item(), episode_id=None)
TWO_K86 = dataclasses.replace(CERTAIN, episodes=EPISODES + (EpisodeFact("E4", "Hypertensie (2)", "K86"),))

# (name, item, facts, expected: episode id of the filing, or the OUT code of the reason for manual filing)
CASES = [
    ("certain: the letter names the episode", _item(), CERTAIN, "E1"),
    (
        "certain: the proposed filing names the episode",
        _with(NO_EPISODE, **_proposal("E2", None)),
        CERTAIN,
        "E2",
    ),
    (
        "certain: sender's own episode id, one active episode with the ICPC",
        _with(NO_EPISODE, **_proposal("H-77", "T90.02")),
        CERTAIN,
        "E2",
    ),
    (
        "BSN mismatch: no patient of the practice has it",
        _item(),
        dataclasses.replace(CERTAIN, candidates=0),
        "OUT-102",
    ),
    ("BSN on two patients of the practice", _item(), dataclasses.replace(CERTAIN, candidates=2), "OUT-102"),
    ("no BSN", _item(bsn=None), CERTAIN, "OUT-101"),
    ("birth date mismatch", _item(birth_date=dt.date(1901, 1, 1)), CERTAIN, "OUT-103"),
    ("birth date missing", _item(birth_date=None), CERTAIN, "OUT-103"),
    ("sender's reference missing", _item(sender_reference=None), CERTAIN, "OUT-104"),
    ("sender's reference not the practice's request", _item(sender_reference="VW-other"), CERTAIN, "OUT-104"),
    ("deceased patient", _item(), dataclasses.replace(CERTAIN, deceased=True), "OUT-105"),
    (
        "moved patient (left the practice)",
        _item(),
        dataclasses.replace(CERTAIN, deregistered=True),
        "OUT-106",
    ),
    ("unknown episode id, no ICPC", _corr(_item(), episode_id="E9"), CERTAIN, "OUT-107"),
    ("no episode named, no ICPC", NO_EPISODE, CERTAIN, "OUT-107"),
    ("ICPC only on a closed episode", _with(NO_EPISODE, **_proposal("H-77", "L03")), CERTAIN, "OUT-107"),
    (
        "two candidate episodes with the ICPC",
        _with(NO_EPISODE, **_proposal("H-77", "K86")),
        TWO_K86,
        "OUT-108",
    ),
    ("no facts about the practice's patient", _item(), None, "OUT-100"),
]


@pytest.mark.parametrize(("item", "facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_table(item, facts, expected):
    out = auto_file(item, facts)
    assert out.correspondence == item.correspondence  # the letter is never altered
    assert out.patient == item.patient and out.id == item.id and out.kind == item.kind
    if expected.startswith("OUT-"):
        assert out.filing is None and out.manual_reason.startswith(expected + ":"), out.manual_reason
    else:
        assert out.manual_reason is None and out.filing.episode_id == expected, out.manual_reason
        assert out.filing.journal_entry.episode_id == expected
        assert out.filing.journal_entry.lines  # a concept entry with SOEP lines


def test_a_proposed_entry_is_kept_under_the_resolved_episode():
    assert auto_file(_with(_item(), filing=PROPOSAL, manual_reason=None), CERTAIN).filing == PROPOSAL
    by_icpc = auto_file(_with(NO_EPISODE, **_proposal("H-77", "T90.02")), CERTAIN).filing
    assert by_icpc.journal_entry.lines == (m.SoepLine(type="P", text="Beleid ongewijzigd"),)


def test_without_a_proposal_the_entry_names_the_episode_and_points_to_the_letter():
    entry = auto_file(_item(), CERTAIN).filing.journal_entry
    assert entry.icpc == "K86" and entry.lines[0] == m.SoepLine(type="E", text="Hypertensie", icpc="K86")
    assert entry.lines[1].type == "P" and "zie brief" in entry.lines[1].text


# --------------------------------------------------------------------------- facts from the FHIR store


def _seed(
    conn,
    practice: str,
    person,
    *,
    deceased: bool = False,
    episodes=(("E1", "K86", "active"),),
    reference: str | None = None,
) -> str:
    store = Store("http://gw")
    orgs = (f"agb:{practice}",)
    org_ref = {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": practice}}
    pat = {
        "resourceType": "Patient",
        "identifier": [{"system": c.BSN, "value": person.bsn}],
        "birthDate": person.birth_date.isoformat(),
        "managingOrganization": org_ref,
    }
    if deceased:
        pat["deceasedDateTime"] = "2026-01-01"
    stored, _ = store.create(conn, orgs, pat)
    subject = {"reference": f"Patient/{stored.rid}"}
    for eid, icpc, status in episodes:
        cond, _ = store.create(
            conn,
            orgs,
            {
                "resourceType": "Condition",
                "subject": subject,
                "code": {"coding": [{"system": c.ICPC, "code": icpc}], "text": eid},
            },
        )
        store.create(
            conn,
            orgs,
            {
                "resourceType": "EpisodeOfCare",
                "status": status,
                "patient": subject,
                "identifier": [{"system": c.LOCAL_ID + "episode", "value": eid}],
                "managingOrganization": org_ref,
                "diagnosis": [{"condition": {"reference": f"Condition/{cond.rid}"}}],
            },
        )
    store.create(
        conn,
        orgs,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "identifier": [{"system": "urn:x", "value": reference or person.reference}],
        },
    )
    return stored.rid


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def test_facts_come_from_the_practices_part_of_the_store(engine):
    with engine.begin() as conn:
        _seed(conn, AGB, P[0], episodes=(("E1", "K86", "active"), ("E2", "T90.02", "finished")))
        _seed(conn, "04000002", P[1])  # another practice's patient: not ours to see
        facts = facts_from_store(conn, make_item("fb-1", AGB, P[0]))
        other = facts_from_store(conn, make_item("fb-2", AGB, P[1]))
    assert facts.candidates == 1 and facts.birth_date == P[0].birth_date and not facts.deceased
    assert P[0].reference in facts.sender_references
    assert {r.split("/")[0] for r in facts.sender_references - {P[0].reference}} == {"ServiceRequest"}
    assert {(e.id, e.icpc, e.active) for e in facts.episodes} == {
        ("E1", "K86", True),
        ("E2", "T90.02", False),
    }
    assert other.candidates == 0


@pytest.mark.parametrize("dialect", ["medicom", "microhis", "omnihis"])
def test_worker_files_certain_matches_ready_and_the_dialect_reads_them_back(engine, tmp_path, dialect):
    drop = tmp_path / "postbus"
    drop.mkdir()
    with engine.begin() as conn:
        _seed(conn, AGB, P[0])
        _seed(conn, AGB, P[1], deceased=True)
        _seed(conn, AGB, P[2], reference="VW-someone-else")
        for i, p in enumerate(P):
            enqueue(conn, item=make_item(f"fb-{i}", AGB, p, episode_id="E1"), source=f"Communication/{i}")
    routing = parse_routing(
        {"practice": {AGB: {"channel": "drop", "dir": str(drop), "dialect": dialect, "auto_filing": True}}}
    )
    Worker(engine, routing).drain()
    fmt = get_postbox_format(dialect)
    ext = {"medicom": ".xml", "microhis": ".txt", "omnihis": ".json"}[dialect]
    filed = {name: fmt.read_postbox((drop / name).read_bytes()) for name in sorted(os.listdir(drop))}
    assert list(filed) == [f"fb-{i}{ext}" for i in range(3)]
    ready = filed[f"fb-0{ext}"]
    assert ready.filing is not None and ready.filing.episode_id == "E1" and ready.manual_reason is None
    assert [line.type for line in ready.filing.journal_entry.lines] == ["E", "P"]
    assert ready.correspondence == make_item("fb-0", AGB, P[0], episode_id="E1").correspondence
    assert filed[f"fb-1{ext}"].manual_reason.startswith("OUT-105")
    assert filed[f"fb-2{ext}"].manual_reason.startswith("OUT-104")


def test_practice_without_opt_in_gets_items_as_enqueued(engine, tmp_path):
    drop = tmp_path / "postbus"
    drop.mkdir()
    with engine.begin() as conn:
        _seed(conn, AGB, P[0])
        enqueue(conn, item=make_item("fb-0", AGB, P[0], episode_id="E1"), source="x")
    Worker(
        engine,
        parse_routing({"practice": {AGB: {"channel": "drop", "dir": str(drop), "dialect": "omnihis"}}}),
    ).drain()
    got = get_postbox_format("omnihis").read_postbox((drop / "fb-0.json").read_bytes())
    assert got == make_item("fb-0", AGB, P[0], episode_id="E1")


def test_filing_reads_back_over_mllp_and_fhir():
    from gateway.outbox.channels import mdm_bytes
    from mappings.fhir.communication import postbox_from_fhir, postbox_to_fhir
    from mappings.hl7v2 import messages

    ready = auto_file(_item(), CERTAIN)
    assert ready.filing is not None
    assert messages.read_bytes(mdm_bytes("fb-1", ready)).item == ready
    assert postbox_from_fhir(postbox_to_fhir(ready)) == ready


def test_a_failing_facts_lookup_means_manual_filing_not_a_stuck_practice(engine, tmp_path):
    drop = tmp_path / "postbus"
    drop.mkdir()
    with engine.begin() as conn:
        enqueue(conn, item=make_item("fb-0", AGB, P[0], episode_id="E1"), source="x")

    def broken(conn, item):
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    routing = parse_routing(
        {"practice": {AGB: {"channel": "drop", "dir": str(drop), "dialect": "omnihis", "auto_filing": True}}}
    )
    Worker(engine, routing, facts=broken).drain()
    got = get_postbox_format("omnihis").read_postbox((drop / "fb-0.json").read_bytes())
    assert got.filing is None and got.manual_reason.startswith("OUT-100")


def test_a_practice_known_by_its_ura_is_found_through_its_organization(engine):
    """The consult module writes as the practice's client, whose tenant key may be its URA: the facts
    come from every key of the Organization that carries the AGB, and the consult's Task is the sender's
    reference."""
    store, ura = Store("http://gw"), "90000777"
    orgs = (f"ura:{ura}",)
    with engine.begin() as conn:
        store.create(
            conn,
            orgs,
            {
                "resourceType": "Organization",
                "name": "Praktijk U",
                "identifier": [
                    {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": AGB},
                    {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": ura},
                ],
            },
        )
        pat, _ = store.create(
            conn,
            orgs,
            {
                "resourceType": "Patient",
                "birthDate": P[0].birth_date.isoformat(),
                "identifier": [{"system": c.BSN, "value": P[0].bsn}],
            },
        )
        subject = {"reference": f"Patient/{pat.rid}"}
        store.create(
            conn,
            orgs,
            {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "patient": subject,
                "identifier": [{"system": c.LOCAL_ID + "episode", "value": "E1"}],
            },
        )
        task, _ = store.create(
            conn, orgs, {"resourceType": "Task", "status": "requested", "intent": "order", "for": subject}
        )
        item = make_item(
            "fb-u", AGB, dataclasses.replace(P[0], reference=f"Task/{task.rid}"), episode_id="E1"
        )
        facts = facts_from_store(conn, item)
    assert facts.candidates == 1 and f"Task/{task.rid}" in facts.sender_references
    assert auto_file(item, facts).filing.episode_id == "E1"
