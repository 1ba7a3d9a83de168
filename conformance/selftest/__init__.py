"""Deliberately broken targets that prove the suites catch what they aim at (issue 8, acceptance 2).

Each breaks one contract and is run by ``tests/test_conformance_*.py``, which asserts that exactly the
tests aimed at that breakage fail and nothing else: :mod:`.broken_fhir` (a FHIR server answering wrong
status codes or bare errors), :mod:`.receivers` (MLLP and postbox receivers that acknowledge before
storing or file a repeat twice, beside correct ones).
"""
