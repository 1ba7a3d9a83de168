"""PV1[Encounter] (HL7 v2.5 §3.4.3), reduced to the :class:`~mappings.hl7v2.canonical.Visit`.

PV1-2 patient class (required; ``N`` not applicable for registrations without a visit), PV1-7 attending
doctor (XCN, Dutch identifiers), PV1-19 visit number, PV1-44 admit date/time.
"""

from __future__ import annotations

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import Visit
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 7, 19, 44})
NO_VISIT = Visit(patient_class="N")
"""``PV1|1|N``: the PV1 a message structure requires when there is no visit; read as no visit at all."""


def from_segment(seg: Segment, sink: ProblemSink) -> Visit | None:
    """The visit; ``None`` for ``PV1|1|N`` or when PV1-2 is missing (an error)."""
    f = seg.fields
    if len(f) == 3 and seg.simple and f[2] and seg.codec.delims.component not in f[2]:
        # ``PV1|1|O``, what most lab reports carry: only the class (the reading below takes 2.9 us)
        return None if f[2] == "N" else Visit(patient_class=f[2])
    warn_unread(seg, READ, sink)
    cls = seg.get(2)
    if not cls:
        sink.error("HL7-010", seg.loc(2), "PV1-2 patient class is required")
        return None
    v = Visit(
        patient_class=cls,
        visit_number=t.opt(seg.get(19)),
        attending=tuple(t.read_xcn(seg.all_components(7), seg.loc(7), sink)),
        admitted=t.parse_dtm(seg.get(44), seg.loc(44), sink),
    )
    return None if v == NO_VISIT else v


def to_segment(v: Visit | None) -> tuple[str, list[FieldValue]]:
    if v is None:
        return "PV1", ["1", "N"]
    fields: list[FieldValue] = [
        "1",
        v.patient_class,
        None,
        None,
        None,
        None,
        [r for p in v.attending for r in t.write_xcn(p)],
    ]
    if v.visit_number or v.admitted:
        fields += [None] * 11 + [v.visit_number] + [None] * 24 + [t.fmt_dtm(v.admitted)]
    return "PV1", fields
