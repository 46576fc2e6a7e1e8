"""Translations of the public pages and reports: the JSON files in por/api/static/i18n/.

One flat file per language (`en`, `zh-HK`, `zh-CN`), keys like `report.summary`, values
with `{name}` placeholders. The browser pages load the same files (static/common.js),
so the dashboard, the holder page and the reports say the same thing in each language;
tests/test_i18n.py keeps every key in every language with the same placeholders.

Also the number and date conventions the reports use per language. Reads the package's
own data files only.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from por.errors import InputError

I18N_DIR = Path(__file__).resolve().parents[1] / "api" / "static" / "i18n"
LANGUAGES = ("en", "zh-HK", "zh-CN")
DEFAULT_LANGUAGE = "en"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def check_language(lang: str, *, where: str = "lang") -> str:
    if lang not in LANGUAGES:
        raise InputError(
            f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}", where=where
        )
    return lang


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """Every message of one language (read once)."""
    check_language(lang)
    data = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InputError("must be an object of strings", where=str(I18N_DIR / f"{lang}.json"))
    return data


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def t(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang` with its placeholders filled (a missing key is a bug)."""
    text = messages(lang)[key]
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), text)


def group(lang: str, whole: int) -> str:
    """Thousands grouping: en, zh-HK and zh-CN all group by three with a comma."""
    check_language(lang)
    return f"{whole:,}"


def amount(lang: str, value: int, decimals: int) -> str:
    """Exact, all `decimals` places, grouped: 1234560000, 6 -> 1,234.560000 (minus sign
    for a negative figure such as a shortfall)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    if decimals == 0:
        return f"{sign}{group(lang, whole)}"
    return f"{sign}{group(lang, whole)}.{str(frac).rjust(decimals, '0')}"


def day(lang: str, d: date) -> str:
    """A calendar date: 5 Jan 2026 / 2026年1月5日."""
    if lang == "en":
        return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"
    check_language(lang)
    return f"{d.year}年{d.month}月{d.day}日"


def instant(lang: str, t_: datetime, offset: timedelta) -> str:
    """An instant at the report's offset, with the offset written out."""
    local = t_.astimezone(UTC) + offset
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{day(lang, local.date())} {local:%H:%M:%S} (UTC{sign}{h:02d}:{m:02d})"


__all__ = [
    "DEFAULT_LANGUAGE",
    "I18N_DIR",
    "LANGUAGES",
    "amount",
    "check_language",
    "day",
    "group",
    "instant",
    "messages",
    "placeholders",
    "t",
]
