"""MEDLAB (laboratory results) <-> :class:`MedlabMessage` (``docs/dialects/medlab.md``).

Read and written::

    UNH+<ref>+MEDLAB:1'
    ZKH+<laboratory>'                        the laboratory (parties.py)
    [TXT:n+<line>']                          free text about the whole message
    PID+...'  [PAD+...']                      the patient (pid.py)
    [ART+H+<AGB>+<name>']                    the requester
    [AFD+<department>']
    per report r:  DET:r+<date>+<time>'  [IDE:r+J|N+<lab number>']
                   per result n: BEP:r:1:n+...'  [OPB:r:1:n:k+<comment line>']
    UNT+<count>+<ref>'

KOP, SEC, NUB and COM are MEDLAB segments the gateway does not keep (``EDI-014``); any other tag is
``EDI-018``. A position number (``BEP:1:1:3``) other than the one the writer would give is read with
warning ``EDI-027`` (the output renumbers). Measurement ids are ``<UNH-1>-<r>-<n>``.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from mappings import model as m
from mappings.codetables import code_tables
from mappings.edifact import bep, det, parties, pid, txt
from mappings.edifact.canonical import Envelope, LabReport, LabResult, MedlabMessage
from mappings.edifact.envelope import chars_of
from mappings.edifact.syntax import Message, Segment, Writer
from mappings.problems import ProblemSink

TYPE = "MEDLAB"
VERSION = "1"
NOT_KEPT = frozenset({"KOP", "SEC", "NUB", "COM"})
HEAD = ("ZKH", "TXT", "PID", "PAD", "ART", "AFD")
_STAND_IN = dt.datetime(1900, 1, 1)


class _Report:
    __slots__ = ("observed", "lab_number", "complete", "results", "comments")

    def __init__(self, observed: dt.datetime | None) -> None:
        self.observed = observed
        self.lab_number: str | None = None
        self.complete = True
        self.results: list[LabResult] = []
        self.comments: list[list[str]] = []


def _numbering(seg: Segment, expected: tuple[int, ...], sink: ProblemSink) -> None:
    if len(seg.numbers) != len(expected) or any(
        a != str(b) for a, b in zip(seg.numbers, expected, strict=True)
    ):
        want = ":".join((seg.tag, *map(str, expected)))
        sink.warning("EDI-027", seg.loc(), f"numbered {seg.label}; the gateway numbers it {want}")


def read(msg: Message, env: Envelope, sink: ProblemSink) -> MedlabMessage | None:
    decimal = chars_of(env).decimal
    tables = code_tables()
    lab: str | None = None
    data: pid.PidData | None = None
    address: m.Address | None = None
    telecom: tuple[m.Telecom, ...] = ()
    requester: m.HealthProfessional | None = None
    department: str | None = None
    lines: list[str] = []
    reports: list[_Report] = []
    seen: set[str] = set()
    for seg in msg.body:
        tag = seg.tag
        if tag in NOT_KEPT:
            sink.warning("EDI-014", seg.loc(), f"segment {tag} is not kept")
            continue
        if tag in HEAD and tag in seen and tag != "TXT":
            sink.error("EDI-019", seg.loc(), f"a second {tag} in one MEDLAB")
            continue
        if tag in HEAD and reports:
            sink.warning("EDI-017", seg.loc(), f"segment {tag} after the first DET")
        seen.add(tag)
        if tag == "BEP":
            if not reports:
                sink.error("EDI-024", seg.loc(), "a result before any DET")
                continue
            rep = reports[-1]
            r, n = len(reports), len(rep.results) + 1
            _numbering(seg, (r, 1, n), sink)
            res = bep.from_segment(
                seg,
                sink,
                # a DET that did not read is its own error: its results are checked with a stand-in time
                effective=rep.observed if rep.observed is not None else _STAND_IN,
                mid=f"{msg.reference}-{r}-{n}",
                decimal=decimal,
                tables=tables,
            )
            if res is not None:
                rep.results.append(res)
                rep.comments.append([])
        elif tag == "OPB":
            if not reports or not reports[-1].results:
                sink.error("EDI-024", seg.loc(), "a comment (OPB) before any result (BEP)")
                continue
            rep = reports[-1]
            _numbering(seg, (len(reports), 1, len(rep.results), len(rep.comments[-1]) + 1), sink)
            rep.comments[-1].append(txt.from_segment(seg, sink))
        elif tag == "DET":
            reports.append(_Report(det.from_segment(seg, sink)))
            _numbering(seg, (len(reports),), sink)
        elif tag == "IDE":
            if not reports:
                sink.error("EDI-024", seg.loc(), "IDE before any DET")
                continue
            _numbering(seg, (len(reports),), sink)
            reports[-1].complete, reports[-1].lab_number = bep.ide_from_segment(seg, sink)
        elif tag == "ZKH":
            lab = parties.zkh_from_segment(seg, sink)
        elif tag == "TXT":
            _numbering(seg, (len(lines) + 1,), sink)
            lines.append(txt.from_segment(seg, sink))
        elif tag == "PID":
            data = pid.from_segment(seg, sink)
        elif tag == "PAD":
            address, telecom = pid.address_from_segment(seg, sink)
        elif tag == "ART":
            requester = parties.art_from_segment(seg, sink)
        elif tag == "AFD":
            department = parties.afd_from_segment(seg, sink)
        else:
            sink.error("EDI-018", seg.loc(), f"segment {tag} is not part of a MEDLAB")
    if not lab:
        sink.error("EDI-026", msg.unh.loc(), "a MEDLAB needs a ZKH segment naming the laboratory")
    if data is None:
        sink.error("EDI-026", msg.unh.loc(), "a MEDLAB needs a PID segment")
    elif data.name is None or data.birth_date is None:
        sink.error("EDI-026", msg.unh.loc(), "the patient (PID) needs a name and a birth date")
    if not reports:
        sink.error("EDI-026", msg.unh.loc(), "a MEDLAB needs at least one DET with results")
    if sink.has_errors or data is None or data.name is None or data.birth_date is None or not lab:
        return None
    try:
        patient = m.Patient(
            bsn=data.bsn,
            name=data.name,
            birth_date=data.birth_date,
            gender=data.gender or "unknown",
            address=address,
            telecom=telecom,
        )
    except ValueError as exc:
        sink.error("EDI-026", msg.unh.loc(), str(exc))
        return None
    if data.reference:
        sink.warning("EDI-014", msg.unh.loc(), "PID-4 (the sender's patient reference) is not kept in MEDLAB")
    return MedlabMessage(
        envelope=env,
        reference=msg.reference,
        laboratory=lab,
        patient=patient,
        requester=requester,
        department=department,
        text="\n".join(lines) if lines else None,
        reports=tuple(
            LabReport(
                observed=r.observed,
                lab_number=r.lab_number,
                complete=r.complete,
                results=tuple(
                    msgspec.structs.replace(x, comments=tuple(c)) if c else x
                    for x, c in zip(r.results, r.comments, strict=True)
                ),
            )
            for r in reports
        ),
    )


def write(x: MedlabMessage) -> tuple[str, str, str, list[str]]:
    """(reference, type, version, body segments) for :func:`mappings.edifact.syntax.write_interchange`."""
    chars = chars_of(x.envelope)
    w = Writer(chars)
    body = [parties.zkh_to_segment(w, x.laboratory)]
    if x.text is not None:
        body += txt.to_segments(w, x.text)
    p = x.patient
    gender = None if p.gender == "unknown" else p.gender
    body.append(
        pid.to_segment(w, birth_date=p.birth_date, gender=gender, name=p.name, reference=None, bsn=p.bsn)
    )
    pad = pid.address_to_segment(w, p.address, p.telecom)
    if pad is not None:
        body.append(pad)
    if x.requester is not None:
        body.append(parties.art_to_segment(w, x.requester))
    if x.department is not None:
        body.append(parties.afd_to_segment(w, x.department))
    for r, rep in enumerate(x.reports, 1):
        if rep.observed is not None:
            body.append(det.to_segment(w, rep.observed, r))
        if rep.lab_number is not None or not rep.complete:
            body.append(bep.ide_to_segment(w, r, rep.complete, rep.lab_number))
        for n, res in enumerate(rep.results, 1):
            body.append(bep.to_segment(w, res, (str(r), "1", str(n)), chars.decimal))
            for k, line in enumerate(c for comment in res.comments for c in txt.lines_of(comment)):
                body.append(w.segment("OPB", line, numbers=(str(r), "1", str(n), str(k + 1))))
    return x.reference, TYPE, VERSION, body
