"""An API over a temp SQLite store holding three real signed attestations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, RateLimit, create_app
from por.store import Store
from tests.store.factory import Built, World, keyset

ADMIN_TOKEN = "s3cret-admin-token"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    client: TestClient
    store: Store
    world: World
    built: list[Built]
    clock: FakeClock
    deps: ApiDeps


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = Store.open(
        None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
    )
    world = World()
    built = [world.record(store) for _ in range(3)]
    clock = FakeClock()

    def trigger() -> int:
        b = world.record(store)
        built.append(b)
        return b.attestation.sequence

    deps = ApiDeps(
        store=store,
        keys=keyset().to_dict(),
        admin_token=ADMIN_TOKEN,
        trigger=trigger,
        proof_rate_limit=RateLimit(burst=3, per_second=0.5),
        clock=clock,
    )
    with TestClient(create_app(deps)) as client:
        yield Api(client=client, store=store, world=world, built=built, clock=clock, deps=deps)
    store.close()
