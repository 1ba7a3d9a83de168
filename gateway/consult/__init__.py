"""Digital consultation (digitaal consult) and conversations about a patient: the workflow, its deadlines
and the quarterly declaration (issue 6; ``docs/consult.md``, ``../shared/DOMAIN.md`` §2-§4).

A GP practice sends a specialist or a specialism a question with the professional summary attached; the
consult is a FHIR Task focusing a ServiceRequest, its messages Communications. The modules are listed in
``docs/consult.md``; the HTTP operations are in ``gateway/api/consult.py``.
"""
