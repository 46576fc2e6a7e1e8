"""The translations of the public pages: every key in every language, same placeholders.

The dashboard, the holder page (JS) and the reports (Python) read the same data files,
por/api/static/i18n/<lang>.json. Beyond completeness: every key the pages name
(data-i18n attributes, t("…") calls in the scripts, t(lang, "…") in por/report) exists,
and no translation is left in English by mistake.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from por.report.i18n import I18N_DIR, LANGUAGES, placeholders

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "por" / "api" / "static"


def _load(lang: str) -> dict[str, str]:
    data = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict) and all(isinstance(v, str) and v for v in data.values())
    return data


def test_the_three_languages_are_the_files() -> None:
    assert LANGUAGES == ("en", "zh-HK", "zh-CN")
    assert sorted(p.stem for p in I18N_DIR.glob("*.json")) == sorted(LANGUAGES)


@pytest.mark.parametrize("lang", ["zh-HK", "zh-CN"])
def test_every_key_in_every_language_with_the_same_placeholders(lang: str) -> None:
    en, other = _load("en"), _load(lang)
    assert sorted(set(en) - set(other)) == [], f"{lang} lacks these keys"
    assert sorted(set(other) - set(en)) == [], f"{lang} has keys English lacks"
    for key, text in en.items():
        assert placeholders(other[key]) == placeholders(text), (lang, key)


def test_chinese_texts_are_translated_and_in_their_own_script() -> None:
    en, hk, cn = _load("en"), _load("zh-HK"), _load("zh-CN")
    same_ok = {"nav.api", "report.csv", "report.pdf", "report.sha256"}
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for key, text in en.items():
        if key in same_ok:
            continue
        for lang, other in (("zh-HK", hk), ("zh-CN", cn)):
            assert cjk.search(other[key]), (lang, key, other[key])
    # a few characters that differ between the scripts, in the texts people read first
    assert "儲備" in hk["brand"] and "储备" in cn["brand"]
    assert "驗證失敗" in hk["holder.failed"] and "验证失败" in cn["holder.failed"]


def _keys_named_in_pages() -> set[str]:
    keys: set[str] = set()
    for html in STATIC.glob("*.html"):
        keys |= set(re.findall(r'data-i18n(?:-[a-z]+)?="([a-z0-9_.]+)"', html.read_text()))
    for js in STATIC.glob("*.js"):
        keys |= set(re.findall(r'\bt\("([a-z0-9_]+\.[a-z0-9_.]+)"', js.read_text()))
    for py in (ROOT / "por" / "report").glob("*.py"):
        keys |= set(
            re.findall(r'\bt\(\s*(?:lang|code),\s*"([a-z0-9_]+\.[a-z0-9_.]+)"', py.read_text())
        )
    return keys


def test_every_key_the_pages_use_exists() -> None:
    named = _keys_named_in_pages()
    assert len(named) > 100  # the scan sees the pages
    assert sorted(named - set(_load("en"))) == []
