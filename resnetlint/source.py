"""Reading a Python file as Python does: encoding cookie, BOM, newlines."""
from __future__ import annotations

import io
import os
import tokenize
from dataclasses import dataclass

MAX_FILE_BYTES = 20 * 1024 * 1024  # generated files beyond this are skipped with a message


class SourceError(Exception):
    """The file cannot be read as Python source; the message says why."""


@dataclass
class SourceFile:
    path: str
    text: str  # decoded, BOM removed
    encoding: str  # as declared or detected ("utf-8", "latin-1", ...)
    bom: bool
    newline: str  # the first line ending found ("\n" if none)
    raw: bytes

    @property
    def mtime_ns(self) -> int:
        return 0


def decode_source(raw: bytes, path: str) -> SourceFile:
    """Decode bytes with the file's own encoding declaration."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(f"cannot read the encoding declaration: {exc.msg}") from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    body = raw[3:] if bom else raw
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise SourceError(f"line {line}: bytes that are not valid {codec} ({exc.reason})") from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}") from None
    return SourceFile(path, text, codec, bom, _first_newline(text), raw)


def read_source(path: str) -> SourceFile:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SourceError(_os_message(exc)) from None
    if size > MAX_FILE_BYTES:
        raise SourceError(f"file is {size / 1024 / 1024:.0f} MB, larger than the {MAX_FILE_BYTES // 1024 // 1024} MB resnetlint reads")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise SourceError(_os_message(exc)) from None
    return decode_source(raw, path)


def _first_newline(text: str) -> str:
    for index, ch in enumerate(text):
        if ch == "\n":
            return "\n"
        if ch == "\r":
            return "\r\n" if text[index + 1:index + 2] == "\n" else "\r"
    return "\n"


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot read: {reason.lower()}"
