"""The consult over HL7 v2 (issue 6): a REF^I12 opens a consult, the answer comes back as an RRI^I12 naming
the REF (MSA-2 = its MSH-10, RF1-6 = its consult id); an urgent REF (RF1-2 S) is refused."""

from __future__ import annotations

import base64

from mappings.hl7v2.canonical import RriMessage
from mappings.hl7v2.messages import read_bytes
from tests.test_consult_support import (
    ROOT,
    act,
    hospital_directory,
    install_clock,
    ok,
    param,
    parameters,
    state_of,
)

REF = (ROOT / "tests/golden/hl7v2/ref-i12/e-consult-to-a-vakgroep/message.hl7").read_bytes().decode("utf-8")


def test_ref_opens_and_rri_answers(service):
    install_clock(service)
    d = hospital_directory(service, name="Martini Ziekenhuis")
    r = service.request(
        "POST", "/Task/$send-consult", json=parameters(param("message", REF.replace("|R|Med|", "|S|Med|")))
    )
    assert r.status_code == 422 and "CON-020" in r.text and "RF1-2" in r.text
    bad = REF.replace("Cardiologie^^^Martini", "Tandheelkunde^^^Martini")
    r = service.request("POST", "/Task/$send-consult", json=parameters(param("message", bad)))
    assert r.status_code == 404 and "CON-003" in r.text
    task = ok(service.request("POST", "/Task/$send-consult", json=parameters(param("message", REF))), 201)
    assert (
        state_of(task) == "sent"
        and task["owner"]["reference"] == f"HealthcareService/{d.specialisms['Cardiologie']}"
    )
    sr = ok(service.request("GET", f"/{task['focus']['reference']}", as_="hospital-h"))
    assert sr["note"][0]["text"] == "Graag advies over antistolling bij AF.\nCHA2DS2-VASc 2."
    patient = ok(service.request("GET", f"/{task['for']['reference']}", as_="hospital-h"))
    assert patient["identifier"][0]["value"] == "123456782"
    tid = task["id"]
    ok(act(service, tid, "pickup", specialist="dr. Hart", directory=d))
    ok(
        act(
            service,
            tid,
            "answer",
            specialist="dr. Hart",
            directory=d,
            text="Start een DOAC.\nControle na 3 mnd.",
        )
    )
    comms = ok(service.request("GET", f"/Communication?part-of=Task/{tid}&category=answer"))
    answer = comms["entry"][0]["resource"]
    url = next(p["contentAttachment"]["url"] for p in answer["payload"] if "contentAttachment" in p)
    binary = ok(service.request("GET", f"/{url}"))  # the practice reads the RRI^I12
    rri = read_bytes(base64.b64decode(binary["data"]))
    assert isinstance(rri, RriMessage)
    assert rri.reply.in_reply_to == "REF-0001" and rri.reply.referral_id == "EC-2024-1"
    assert rri.reply.answer == "Start een DOAC.\nControle na 3 mnd."
    assert (
        rri.header.receiving_facility
        and rri.header.receiving_facility.namespace == "Huisartsenpraktijk Jansen"
    )
    assert rri.reply.patient.bsn == "123456782"
