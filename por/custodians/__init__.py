"""Custodian sources: ISO 20022 camt.053/052, MT940, signed JSON API, securities holdings."""
