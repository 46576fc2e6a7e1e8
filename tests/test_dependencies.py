"""`pip install por` stays the light verifier; the service and the builder are extras.

An auditor or a holder installs por to run `por verify` and `por check`; each extra
dependency there is code they must trust and a wheel they must be able to build. The
base list is pinned here by name, so adding to it is a decision someone has to make.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERIFIER = {"pycryptodome", "rfc8785"}


def names(requirements: list[str]) -> set[str]:
    """Distribution names (PEP 503 normalised) of PEP 508 requirement strings."""
    out = set()
    for r in requirements:
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r)
        assert m, r
        out.add(re.sub(r"[-_.]+", "-", m.group(0)).lower())
    return out


def test_base_install_is_only_the_verifier() -> None:
    assert names(PYPROJECT["project"]["dependencies"]) == VERIFIER


def test_extras_bring_the_builder_and_the_service() -> None:
    extras = {k: names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    assert extras["builder"] == {"numpy"}
    # the service builds trees too, and its API and configuration models are pydantic
    assert {"numpy", "web3", "fastapi", "sqlalchemy", "pydantic"} <= extras["service"]
    assert not (extras["service"] | extras["builder"]) & VERIFIER  # no duplicate pins
    # the distributed tree build: Dask's scheduler and workers, Parquet for sharded input
    assert extras["dask"] == {"numpy", "dask", "pyarrow"}


def test_dev_installs_everything_readme_needs() -> None:
    dev = (ROOT / "dev").read_text()
    assert 'pip install -q -e ".[service,s3,dask,dev]"' in dev
