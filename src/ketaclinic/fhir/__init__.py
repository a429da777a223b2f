"""FHIR R4 read endpoints for instruments and stored scale responses (docs/fhir.md)."""
