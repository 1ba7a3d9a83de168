"""Edifact MEDVRI (free-text letter) and MEDLAB (lab results) as Dutch HIS postboxes read them.

- :mod:`.syntax` the tokenizer and serializer (UNA, release characters, UNB/UNZ, UNH/UNT, syntax levels,
  the Dutch segment numbering, limits),
- one module per segment group with a ``from_segment``/``to_segment`` pair: :mod:`.pid` (PID, PAD),
  :mod:`.parties` (GGA, GGO, ZKH, ART, AFD), :mod:`.det` (DET), :mod:`.txt` (TXT), :mod:`.bep` (BEP, OPB,
  IDE),
- one module per message (:mod:`.medvri`, :mod:`.medlab`) and their structs in :mod:`.canonical`,
- :mod:`.fhir` (FHIR R4 and HL7 v2 ORU^R01 projections) and :mod:`.format` (the command-line formats).

Specified for users in ``docs/dialects/edifact.md``, ``docs/dialects/medvri.md`` and
``docs/dialects/medlab.md``.
"""
