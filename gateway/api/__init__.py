"""The HTTP side of the gateway: route table, FHIR interactions, Bundles, OpenAPI, SMART configuration."""
