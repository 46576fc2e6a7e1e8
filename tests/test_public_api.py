"""The public API is `__all__` of `por` and `por.core`, kept complete by these tests.

As encode/httpx keeps its own (tests/test_exported_members.py): every name in `__all__`
imports, and every public name the package binds is in `__all__` — a name added to
`por/__init__.py` without exporting it, or exported without being there, fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import por
import por.core
import por.core.verify
import por.errors

ROOT = Path(__file__).resolve().parents[1]


def public_members(module: ModuleType) -> set[str]:
    """What the package binds under a public name, its submodules aside."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize("module", [por, por.core], ids=lambda m: m.__name__)
def test_all_is_exactly_the_public_members(module: ModuleType) -> None:
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "a name is listed twice"
    assert set(exported) - {"__version__"} == public_members(module)


@pytest.mark.parametrize("module", [por, por.core], ids=lambda m: m.__name__)
def test_every_exported_name_imports(module: ModuleType) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)  # the star import is what is tested
    assert set(module.__all__) <= set(namespace)
    for name in module.__all__:
        assert getattr(module, name) is namespace[name]


def test_por_exports_the_core_and_the_whole_error_tree() -> None:
    assert set(por.core.__all__) <= set(por.__all__)
    assert set(por.errors.__all__) <= set(por.__all__)
    assert set(por.__all__) == {"__version__", *por.core.__all__, *por.errors.__all__}
    for name in por.core.__all__:
        assert getattr(por, name) is getattr(por.core, name)
    # every error class of the tree, drawn in por/errors.py, is exported
    errors = {
        name
        for name, value in vars(por.errors).items()
        if isinstance(value, type) and issubclass(value, por.errors.PorError)
    }
    assert errors <= set(por.__all__)


def test_the_verification_library_is_exported_whole() -> None:
    """What `por check` / `por verify` run is public: an auditor can call it directly."""
    assert set(por.core.verify.__all__) <= set(por.core.__all__)
    for name in ("verify_inclusion", "InclusionProof", "Attestation", "Envelope", "KeySet"):
        assert name in por.__all__


def test_import_por_stays_light() -> None:
    """`import por` (and `from por import *`) loads neither numpy nor the service's libraries."""
    heavy = ["numpy", "web3", "fastapi", "sqlalchemy", "apscheduler", "uvicorn", "httpx"]
    code = (
        "import json, sys\n"
        "import por\n"
        "from por import *\n"
        f"print(json.dumps(sorted({{m.partition('.')[0] for m in sys.modules}} & set({heavy!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == []
