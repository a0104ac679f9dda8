"""Reading a Python file as Python does: encoding cookie, BOM, newlines.

Every way a file can fail to be Python source text becomes a
:class:`SourceError` whose message is one line, with the position where there
is one (``line 3, column 7: bytes that are not valid utf-8 ...``); the caller
reports it against the file and the run goes on.

Size: files larger than :data:`MAX_FILE_BYTES` (10 MB) are skipped with a
message, without being read.  Hand-written model code is far smaller (the
largest file of the five reference packages is 230 KB, of the standard
library 760 KB); what is larger is generated code or embedded data, which
costs about 1.5 s and 80 MB of memory per MB to parse and model (a 19 MB
generated file took 26 s and 1.6 GB), once per worker process.
"""
from __future__ import annotations

import codecs
import io
import os
import re
import tokenize
from dataclasses import dataclass

MAX_FILE_BYTES = 10 * 1024 * 1024  # larger files are skipped with a message (see above)


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


def content_digest(raw: bytes) -> str:
    """The hash recorded for a module another file's analysis read (see
    :mod:`resnetlint.model.project` and the result cache)."""
    try:  # without importing OpenSSL's _hashlib (a few ms at start-up)
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - other Python implementations
        from hashlib import blake2b
    return blake2b(raw, digest_size=16).hexdigest()


def decode_source(raw: bytes, path: str) -> SourceFile:
    """Decode bytes with the file's own encoding declaration."""
    bom = raw.startswith(b"\xef\xbb\xbf")
    body = raw[3:] if bom else raw
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(_encoding_problem(body, bom, exc.msg)) from None
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise SourceError(_undecodable(body, codec, exc)) from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}") from None
    return SourceFile(path, text, codec, bom, _first_newline(text), raw)


def read_source(path: str) -> SourceFile:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SourceError(_os_message(exc)) from None
    if size > MAX_FILE_BYTES:
        raise SourceError(_too_large(size))
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # it may have grown since
    except OSError as exc:
        raise SourceError(_os_message(exc)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(_too_large(len(raw)))
    return decode_source(raw, path)


def _too_large(size: int) -> str:
    limit = MAX_FILE_BYTES // 1024 // 1024
    return f"file is {size / 1024 / 1024:.1f} MB, larger than the {limit} MB resnetlint reads (generated code?); skipped"


def _encoding_problem(body: bytes, bom: bool, reason: str) -> str:
    """``tokenize.detect_encoding``'s complaint, with the line it is about."""
    lines = body.split(b"\n", 2)[:2]
    cookie = next(((number, match.group(1).decode("ascii", "replace")) for number, line in enumerate(lines, 1)
                   for match in [_COOKIE.match(line)] if match), None)
    if cookie is not None:
        number, name = cookie
        try:
            codecs.lookup(name)
        except LookupError:
            return f"line {number}: unknown encoding {name!r} in the coding declaration"
        if bom:  # even "utf8": after a byte order mark Python accepts only the spelling "utf-8"
            return f"line {number}: the file starts with a UTF-8 byte order mark but declares the encoding {name!r}"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = "the file declares no encoding, so it must be utf-8" if cookie is None else \
            "the line of the coding declaration must itself be utf-8"
        return f"{_undecodable(body, 'utf-8', exc)}; {why}"
    return f"cannot read the encoding declaration: {reason}"


def _undecodable(body: bytes, codec: str, exc: UnicodeDecodeError) -> str:
    start = body.rfind(b"\n", 0, exc.start) + 1
    line = body.count(b"\n", 0, exc.start) + 1
    column = len(body[start:exc.start].decode(codec, "replace")) + 1
    return f"line {line}, column {column}: bytes that are not valid {codec} ({exc.reason})"


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


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
