"""`por attest --as-of TIME`: a point-in-time attestation through the configuration, the
wiring and the store (chains in memory: their snapshots are the ones regular runs
recorded); a time in the future is refused with the reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from por.cli.main import main
from tests.service.conftest import World


def test_attest_as_of_a_past_time(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(world.config)
    assert main(["attest", "--config", cfg, "--no-publish"]) == 0
    time.sleep(1.1)  # whole seconds: the as-of below is after the first run's snapshots
    between = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    assert main(["attest", "--config", cfg, "--no-publish"]) == 0
    capsys.readouterr()
    when = between.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["attest", "--config", cfg, "--as-of", when]) == 0
    out = capsys.readouterr().out
    assert f"attestation 3 point-in-time as of {when}" in out
    assert "from recorded-snapshot" in out
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["attest", "--config", cfg, "--as-of", future]) == 1
    assert "is in the future" in capsys.readouterr().err
    assert main(["attest", "--config", cfg, "--as-of", "yesterday"]) == 1
    assert "RFC 3339" in capsys.readouterr().err
