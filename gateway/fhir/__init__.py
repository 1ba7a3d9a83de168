"""FHIR R4 server-side pieces: served types and search parameters, index rows, search, validation,
OperationOutcome, CapabilityStatement."""
