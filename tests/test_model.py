"""The canonical model: its checks, and that canonical JSON round-trips every generated dossier."""

import datetime as dt

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from mappings import model as m
from tests.strategies import dossiers, postbox_items


@pytest.mark.parametrize(
    "bsn,ok",
    [
        ("555555914", True),
        ("111222333", True),
        ("123456789", False),
        ("000000000", False),
        ("12345678", False),
        ("55555591a", False),
    ],
)
def test_bsn_eleven_test(bsn, ok):
    assert m.bsn_is_valid(bsn) is ok


def test_invalid_identifiers_are_refused():
    with pytest.raises(ValueError, match="11-test"):
        m.Patient(bsn="123456789", name=m.PersonName(family="Jansen"), birth_date=dt.date(1950, 1, 1))
    with pytest.raises(ValueError, match="AGB"):
        m.Organization(id="p", name="X", agb="123")
    with pytest.raises(ValueError, match="ICPC"):
        m.Episode(id="e", title="x", icpc="K7")


def test_dangling_reference_is_refused():
    with pytest.raises(ValueError, match="unknown episode"):
        m.Dossier(
            practice=m.Organization(id="p", name="P"),
            patient=m.Patient(bsn=None, name=m.PersonName(family="X"), birth_date=dt.date(2000, 1, 1)),
            contacts=(
                m.Contact(
                    id="c", start=dt.datetime(2020, 1, 1), deelcontacten=(m.Deelcontact(episode_id="nope"),)
                ),
            ),
        )


def test_canonical_json_reports_path():
    with pytest.raises(msgspec.ValidationError, match=r"\$\.patient\.birth_date"):
        m.from_json(
            b'{"practice":{"id":"p","name":"P"},"patient":{"bsn":null,"name":{"family":"X"},'
            b'"birth_date":"2000-13-01"}}'
        )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dossiers())
def test_canonical_json_round_trip(d):
    assert m.from_json(m.to_json(d)) == d
    assert m.to_json(m.from_json(m.to_json(d))) == m.to_json(d)


@settings(max_examples=100)
@given(postbox_items())
def test_postbox_json_round_trip(item):
    assert m.postbox_from_json(m.to_json(item)) == item
