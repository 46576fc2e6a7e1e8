"""The dependency direction between por's packages, read from the source.

    cli, demo ──> service, api ──> store, oracle, chains, custodians ──> core
                                                                         (+ errors, fileio)

Two rules, checked on every import statement of every module — also the ones inside
functions and under `if TYPE_CHECKING:`, which a test that only imports the modules
would miss:

1. The demo world (por.demo: fakes, simulators, sample files, `por demo`) sits on top.
   The real readers, stores and publishers never import it, so a reader of chains/ or
   custodians/ sees only what runs in production. The one tool that is not run time,
   oracle/compile.py, is left out. Elsewhere in the product (service, api) por.demo may
   only be imported inside a function: the `kind = "fake"` chain factory loads it when a
   configuration asks for it, never at import time.
2. por.core is pure: it imports nothing from the adapters, the service, the API or the CLI.

Nothing is imported here; the files are parsed with `ast`.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

POR = Path(__file__).resolve().parents[1] / "por"

# rule 1: packages of the product that never import the demo world
NO_DEMO = ("chains", "custodians", "core", "store", "oracle", "ledger")
NO_DEMO_EXCEPT = {"oracle/compile.py"}  # a tool (solcjs), never imported at run time
# rule 1, second half: these may import por.demo lazily (inside a function) only
DEMO_LAZY_ONLY = ("service", "api")
# rule 2: what por.core must not import
CORE_FORBIDS = ("chains", "custodians", "store", "oracle", "service", "api", "cli", "demo")


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # absolute dotted name
    line: int
    top_level: bool  # False: inside a function (a lazy import)


def _module_name(path: Path) -> str:
    parts = path.relative_to(POR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, path: Path) -> Iterator[Import]:
    """Every module `source` imports: `import a.b`, `from a import b` (yields a and a.b,
    since b may be a module), relative imports resolved, and importlib.import_module /
    __import__ calls with a literal name."""

    def walk(node: ast.AST, top_level: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, child.lineno, top_level)
            elif isinstance(child, ast.ImportFrom):
                module = _resolve(child, path)
                yield Import(module, child.lineno, top_level)
                for alias in child.names:
                    yield Import(f"{module}.{alias.name}", child.lineno, top_level)
            elif isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = child.args[0] if child.args else None
                if (
                    name in {"import_module", "__import__"}
                    and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                ):
                    yield Import(first.value, child.lineno, top_level)
            inner = top_level and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            yield from walk(child, inner)

    yield from walk(ast.parse(source, filename=str(path)), True)


def _files(package: str) -> list[Path]:
    files = sorted((POR / package).rglob("*.py"))
    assert files, f"no modules under por/{package}"
    return files


def _is_under(module: str, package: str) -> bool:
    return module == f"por.{package}" or module.startswith(f"por.{package}.")


def _violations(
    packages: Collection[str],
    forbidden: Collection[str],
    *,
    skip: Collection[str] = (),
    lazy_ok: bool = False,
) -> list[str]:
    found = []
    for package in packages:
        for path in _files(package):
            rel = path.relative_to(POR).as_posix()
            if rel in skip:
                continue
            for imp in imports_of(path.read_text(encoding="utf-8"), path):
                if lazy_ok and not imp.top_level:
                    continue
                if any(_is_under(imp.module, f) for f in forbidden):
                    found.append(f"por/{rel}:{imp.line} imports {imp.module}")
    return sorted(set(found))


def test_the_product_does_not_import_the_demo_world() -> None:
    assert _violations(NO_DEMO, ("demo",), skip=NO_DEMO_EXCEPT) == []


def test_service_and_api_load_the_demo_world_only_lazily() -> None:
    assert _violations(DEMO_LAZY_ONLY, ("demo",), lazy_ok=True) == []


def test_core_imports_no_adapter_service_api_or_cli() -> None:
    assert _violations(("core",), CORE_FORBIDS) == []


# The walker itself: a rule that sees no imports would pass for nothing.

SAMPLE = """
import por.demo.anvil
from por.chains import evm
from . import sibling
from ..demo.fake_chain import FakeChainReader
import importlib

def factory():
    from por.demo import statements
    importlib.import_module("por.demo.world")
    class Inner:
        import por.api
"""


def test_the_walker_sees_every_kind_of_import() -> None:
    path = POR / "service" / "wiring.py"
    got = {(i.module, i.top_level) for i in imports_of(SAMPLE, path)}
    assert {
        ("por.demo.anvil", True),
        ("por.chains", True),
        ("por.chains.evm", True),
        ("por.service", True),
        ("por.service.sibling", True),
        ("por.demo.fake_chain", True),
        ("por.demo.fake_chain.FakeChainReader", True),
        ("por.demo", False),
        ("por.demo.statements", False),
        ("por.demo.world", False),
        ("por.api", False),
    } <= got
