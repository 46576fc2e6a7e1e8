"""Logging for `por run|serve|attest|demo`: human lines on a terminal, JSON lines otherwise.

`setup_logging(fmt)` configures the root logger once per process: `fmt="auto"` gives
human-readable lines when stderr is a terminal and JSON lines (one object per line:
time, level, logger, message, and `exc` for a traceback) when it is not (a service
manager, a container, a pipe). Third-party loggers are quieted to WARNING.

Secrets never reach a log line: every secret the service reads (admin token, key
passphrase, HSM PIN, publisher and attestor keys, webhook keys) is registered with
`register_secret`, and the one formatter replaces any occurrence in the finished line,
traceback included, with `[redacted]`. Private keys in PEM form are cut the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "text", "json"]
REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words
_PEM_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | bytes | None) -> None:
    """Never log `value` (nor its hex form, nor without a 0x prefix)."""
    if not value:
        return
    text = value.hex() if isinstance(value, bytes) else value
    forms = {text, text.removeprefix("0x"), text.lower(), text.lower().removeprefix("0x")}
    with _secrets_lock:
        _secrets.update(f for f in forms if len(f) >= _MIN_SECRET_LENGTH)


def redact(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leaks
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return _PEM_RE.sub(REDACTED, text)


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return (
            datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "por", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler por installs (a second setup replaces it). Without a given stream it
    writes to whatever `sys.stderr` is at the time of each record, not the object that
    was there at setup (test harnesses and daemonizers swap it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._fixed: TextIO | None = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        if self._fixed is not None:
            self._fixed = value

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own handleError prints the record's raw arguments: they may hold a
        # secret the formatter would have redacted. Say only that a line was lost.
        with contextlib.suppress(Exception):
            sys.__stderr__.write(f"por: a log line of {record.name} could not be written\n")  # type: ignore[union-attr]


def setup_logging(
    fmt: LogFormat = "auto", *, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not (stream or sys.stderr).isatty())
    handler = _Handler(stream)
    handler.setFormatter(_JsonFormatter() if use_json else _TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _Handler):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in (
        "apscheduler",
        "uvicorn",
        "uvicorn.error",
        "httpx",
        "httpcore",
        "web3",
        "urllib3",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def add_log_arguments(parser: object) -> None:
    """`--log-format auto|text|json` and `--log-level` for a service command."""
    add = parser.add_argument  # type: ignore[attr-defined]
    add(
        "--log-format",
        choices=("auto", "text", "json"),
        default="auto",
        help="auto (default): text on a terminal, JSON lines otherwise",
    )
    add("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
