"""The demo and test world: simulated chains, sample custodians, and `por demo`.

Nothing here is part of the product's path from a chain or a custodian to a signed
attestation. These are the stand-ins that tests, benchmarks and `por demo` run the real
readers, publishers and service against:

- `world`: `por demo` — builds the local world below and runs the real service on it
- `anvil`: a local anvil node plus contract deploy and bulk mint/transfer helpers
- `solana_sim`: a loopback Solana JSON-RPC server backed by LiteSVM
- `fake_chain`: `FakeChainReader`, an in-memory ChainReader (`kind = "fake"` chains)
- `fake_custodian`: `InMemorySource`, an in-memory CustodianSource
- `samples`: the packaged Harbour Trust sample statements (`samples/`), re-dated on demand

Dependency direction: por.demo imports the product (chains, custodians, oracle, service);
the product never imports por.demo, except the lazy `kind = "fake"` chain factory in
por.service.wiring and the `por demo` command (tests/test_layers.py keeps it so).
Importing this package loads nothing; each module pulls in only what it needs.
"""
