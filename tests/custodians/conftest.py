"""Shared helpers for the custodian tests: sample files under tests/custodians/data."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
HT = "Harbour Trust Bank (Hong Kong) Limited"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()
