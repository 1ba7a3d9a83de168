"""PV1[Encounter] (HL7 v2.5 §3.4.3), reduced to the :class:`~mappings.hl7v2.canonical.Visit`.

PV1-2 patient class (required; ``N`` not applicable for registrations without a visit), PV1-3 assigned
patient location (PL), PV1-4 admission type, PV1-6 prior patient location (PL; the ward a transfer came
from), PV1-7 attending, PV1-8 referring, PV1-9 consulting and PV1-17 admitting doctor (XCN, Dutch
identifiers), PV1-10 hospital service, PV1-14 admit source, PV1-5 pre-admit number, PV1-19 visit number,
PV1-50 alternate visit id, PV1-36 discharge disposition, PV1-44 admit and PV1-45 discharge date/time; from
the PV2 after it (§3.4.4) PV2-3 admit reason and PV2-8/-9 expected admit and discharge date/time.
"""

from __future__ import annotations

import msgspec

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import Location, Visit
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 17, 19, 36, 44, 45, 50})
LISTED = frozenset({11, 12, 13, 15, 16, 18, *range(20, 36), *range(37, 44), *range(46, 50), 51, 52, 53, 54})
"""Not mapped by design, listed as information (``HL7-060``): temporary and pending locations,
pre-admit test, re-admission, ambulatory status, VIP, patient type, the financial and account fields
(PV1-20..35, -41, -46..49), discharged-to location, diet, servicing facility, bed status, visit
indicator, other providers. Any other valued field refuses the message (``HL7-053``)."""
PV2_READ = frozenset({3, 8, 9})
PV2_LISTED = frozenset({1, 2, 4, 5, 6, 7, *range(10, 50)})
"""PV2 fields not mapped by design, listed as information (``HL7-060``): prior pending location,
accommodation, transfer reason, valuables, visit description, referral source, signature, billing and
the remaining administrative fields."""
NO_VISIT = Visit(patient_class="N")
"""``PV1|1|N``: the PV1 a message structure requires when there is no visit; read as no visit at all."""


def read_pl(comps: list[list[str]]) -> Location | None:
    """PL: PL.1 point of care, PL.2 room, PL.3 bed, PL.4 facility (HD.1), PL.9 description."""
    loc = Location(
        point_of_care=t.opt(t.comp(comps, 1)),
        room=t.opt(t.comp(comps, 2)),
        bed=t.opt(t.comp(comps, 3)),
        facility=t.opt(t.comp(comps, 4)),
        description=t.opt(t.comp(comps, 9)),
    )
    return None if loc == Location() else loc


def write_pl(loc: Location | None) -> FieldValue:
    if loc is None:
        return None
    return (loc.point_of_care, loc.room, loc.bed, loc.facility, None, None, None, None, loc.description)


def from_segment(seg: Segment, sink: ProblemSink) -> Visit | None:
    """The visit; ``None`` for ``PV1|1|N`` or when PV1-2 is missing (an error)."""
    f = seg.fields
    if len(f) == 3 and seg.simple and f[2] and seg.codec.delims.component not in f[2]:
        # ``PV1|1|O``, what most lab reports carry: only the class (the reading below takes 2.9 us)
        return None if f[2] == "N" else Visit(patient_class=f[2])
    warn_unread(seg, READ, sink, LISTED)
    cls = seg.get(2)
    if not cls:
        sink.error("HL7-010", seg.loc(2), "PV1-2 patient class is required")
        return None
    v = Visit(
        patient_class=cls,
        visit_number=t.opt(seg.get(19)),
        preadmit_number=t.opt(seg.get(5)),
        alternate_visit_id=t.opt(seg.get(50)),
        attending=tuple(t.read_xcn(seg.all_components(7), seg.loc(7), sink)),
        admitted=t.parse_dtm(seg.get(44), seg.loc(44), sink),
        referring=tuple(t.read_xcn(seg.all_components(8), seg.loc(8), sink)),
        consulting=tuple(t.read_xcn(seg.all_components(9), seg.loc(9), sink)),
        admitting=tuple(t.read_xcn(seg.all_components(17), seg.loc(17), sink)),
        location=read_pl(seg.components(3)),
        admission_type=t.opt(seg.get(4)),
        prior_location=read_pl(seg.components(6)),
        hospital_service=t.opt(seg.get(10)),
        admit_source=t.opt(seg.get(14)),
        discharge_disposition=t.opt(seg.get(36)),
        discharged=t.parse_dtm(seg.get(45), seg.loc(45), sink),
    )
    return None if v == NO_VISIT else v


def with_pv2(v: Visit | None, seg: Segment, sink: ProblemSink) -> Visit | None:
    """The visit with what its PV2 adds (a PV2 without a visit: ``PV1|1|N`` then PV2 makes one of class N)."""
    warn_unread(seg, PV2_READ, sink, PV2_LISTED)
    code, text, system = t.read_cwe(seg.components(3))
    extra = {
        "admit_reason": t.opt(code),
        "admit_reason_text": t.opt(text),
        "admit_reason_system": t.opt(system),
        "expected_admit": t.parse_dtm(seg.get(8), seg.loc(8), sink),
        "expected_discharge": t.parse_dtm(seg.get(9), seg.loc(9), sink),
    }
    if not any(extra.values()):
        return v
    return msgspec.structs.replace(v or NO_VISIT, **extra)


def pv2_segment(v: Visit | None) -> tuple[str, list[FieldValue]] | None:
    """The PV2 of a visit, when it has something for one."""
    if v is None or not (v.admit_reason or v.admit_reason_text or v.expected_admit or v.expected_discharge):
        return None
    reason = (v.admit_reason, v.admit_reason_text, v.admit_reason_system)
    return "PV2", [
        None,
        None,
        reason,
        None,
        None,
        None,
        None,
        t.fmt_dtm(v.expected_admit),
        t.fmt_dtm(v.expected_discharge),
    ]


def to_segment(v: Visit | None) -> tuple[str, list[FieldValue]]:
    if v is None:
        return "PV1", ["1", "N"]
    fields: list[FieldValue] = [None] * 45
    fields[0] = "1"  # PV1-1
    fields[1] = v.patient_class  # PV1-2
    fields[2] = write_pl(v.location)  # PV1-3
    fields[3] = v.admission_type  # PV1-4
    fields[4] = v.preadmit_number  # PV1-5
    fields[5] = write_pl(v.prior_location)  # PV1-6
    fields[6] = [r for p in v.attending for r in t.write_xcn(p)]  # PV1-7
    fields[7] = [r for p in v.referring for r in t.write_xcn(p)]  # PV1-8
    fields[8] = [r for p in v.consulting for r in t.write_xcn(p)]  # PV1-9
    fields[16] = [r for p in v.admitting for r in t.write_xcn(p)]  # PV1-17
    fields[9] = v.hospital_service  # PV1-10
    fields[13] = v.admit_source  # PV1-14
    fields[18] = v.visit_number  # PV1-19
    fields[35] = v.discharge_disposition  # PV1-36
    fields[43] = t.fmt_dtm(v.admitted)  # PV1-44
    fields[44] = t.fmt_dtm(v.discharged)  # PV1-45
    if v.alternate_visit_id is not None:
        fields += [None] * 4 + [v.alternate_visit_id]  # PV1-50
    while fields and fields[-1] in (None, [], ""):
        fields.pop()
    return "PV1", fields
