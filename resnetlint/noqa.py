"""Suppression comments.

Three forms, all case-insensitive:

``# noqa`` / ``# noqa: RL101, RL201``
    on the line a finding is reported at: suppresses every resnetlint finding
    on that line (bare) or those codes.
``class Block(nn.Module):  # noqa: RL201``
    codes on a ``class`` line suppress those codes for the whole class (a bare
    ``# noqa`` there only covers the class line itself, because flake8 users
    put bare ``noqa`` on class lines for their own reasons).
``# resnetlint: noqa`` / ``# resnetlint: noqa: RL301``
    a comment on a line of its own, anywhere in the file (usually at the top):
    suppresses everything in the file, or those codes.

Codes are matched exactly or by prefix (``RL2`` covers ``RL201``..).  Codes of
other tools (``E501``, ``F401``) in the same comment are left alone.  Syntax
errors (``RL000``) and internal errors (``RL999``) cannot be suppressed.

Only comments are considered: ``noqa`` inside a string does nothing.  Files
without the text ``noqa`` (in any case) are not tokenized at all, so this
costs nothing on most files.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .findings import Finding

UNSUPPRESSIBLE = ("RL000", "RL999")
CODE = r"[A-Z]+[0-9]+"
# ``# noqa`` optionally followed by ``:`` and a list of codes.
LINE_DIRECTIVE = re.compile(rf"#\s*noqa(?::\s*(?P<codes>{CODE}(?:[,\s]+{CODE})*))?", re.IGNORECASE)
FILE_DIRECTIVE = re.compile(rf"#\s*resnetlint\s*:\s*noqa(?::\s*(?P<codes>{CODE}(?:[,\s]+{CODE})*))?", re.IGNORECASE)
CLASS_LINE = re.compile(r"^\s*class\s+(?P<name>[A-Za-z_]\w*)")
OUR_CODE = re.compile(r"^RL[0-9]+$")
# A directive naming one of our codes has ``noqa:`` and then ``RL<digit>`` on
# its line.  A superset (it ignores comments vs strings), cheap to search.
MAY_NAME_OUR_CODES = re.compile(r"noqa\s*:[^\r\n]*?rl[0-9]")  # searched in the lower-cased text


def may_name_our_codes(text: str) -> bool:
    """False when no suppression comment in ``text`` can name a resnetlint
    code: a file with no findings then has nothing for RL100 to judge, and is
    not tokenized."""
    # Lower-casing the text and searching it plainly is ~5x faster than an
    # IGNORECASE search, which cannot skip ahead to a literal.
    lowered = text.lower()
    return "noqa" in lowered and MAY_NAME_OUR_CODES.search(lowered) is not None


@dataclass
class Directive:
    kind: str  # "line", "class" or "file"
    line: int  # 1-based
    start: int  # 0-based column of the directive's ``#`` in the line
    end: int  # 0-based column just past the directive
    codes: Optional[List[str]]  # None: bare (everything)
    own_line: bool  # nothing but the comment on its line
    comment_start: int  # 0-based column of the comment token
    comment_end: int
    class_name: str = ""
    used: Set[str] = field(default_factory=set)  # the codes (or "*") that suppressed something

    def covers(self, code: str) -> Optional[str]:
        """The directive code that covers ``code`` ("*" for a bare one)."""
        if self.codes is None:
            return "*"
        for written in self.codes:
            if code == written or (code.startswith(written) and OUR_CODE.match(written)):
                return written
        return None

    def our_codes(self) -> List[str]:
        return [code for code in (self.codes or []) if OUR_CODE.match(code)]


def directives(text: str) -> List[Directive]:
    """Every suppression comment in ``text`` (empty when it has none or does
    not tokenize)."""
    if "noqa" not in text.lower():  # most files: no tokenizing (faster than an IGNORECASE search)
        return []
    lines = text.splitlines(True)
    found: List[Directive] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.COMMENT or "noqa" not in token.string.lower():
                continue
            found.extend(_parse_comment(token, lines))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return found
    return found


def _parse_comment(token: tokenize.TokenInfo, lines: Sequence[str]) -> Iterable[Directive]:
    line_no, column = token.start
    line = lines[line_no - 1] if line_no - 1 < len(lines) else ""
    own_line = not line[:column].strip()
    file_match = FILE_DIRECTIVE.search(token.string)
    if file_match is not None:
        if own_line:
            yield _directive("file", token, file_match, own_line)
        return
    match = LINE_DIRECTIVE.search(token.string)
    if match is None:
        return
    class_match = CLASS_LINE.match(line)
    if class_match is not None and match.group("codes"):
        yield _directive("class", token, match, own_line, class_match.group("name"))
    else:
        yield _directive("line", token, match, own_line)


def _directive(kind: str, token: tokenize.TokenInfo, match: "re.Match[str]", own_line: bool,
               class_name: str = "") -> Directive:
    line_no, column = token.start
    codes = match.group("codes")
    parsed = [c.upper() for c in re.split(r"[,\s]+", codes) if c] if codes else None
    return Directive(kind, line_no, column + match.start(), column + match.end(), parsed, own_line,
                     column, column + len(token.string), class_name)


@dataclass
class Suppressed:
    kept: List[Finding]
    suppressed: int
    directives: List[Directive]


def apply(findings: List[Finding], text: str, found: Optional[List[Directive]] = None) -> Suppressed:
    """Drop suppressed findings, recording which directive codes were used
    (``found``: the file's directives when already parsed)."""
    found = directives(text) if found is None else found
    if not found:
        return Suppressed(findings, 0, found)
    by_line: Dict[int, List[Directive]] = {}
    by_class: Dict[str, List[Directive]] = {}
    for directive in found:
        if directive.kind == "class":
            by_class.setdefault(directive.class_name, []).append(directive)
        by_line.setdefault(directive.line, []).append(directive)
    whole_file = [d for d in found if d.kind == "file"]
    kept = []
    for finding in findings:
        if finding.code in UNSUPPRESSIBLE:
            kept.append(finding)
            continue
        candidates = whole_file + by_line.get(finding.line, []) + by_class.get(_class_name(finding.symbol), [])
        if not _suppress(finding.code, candidates):
            kept.append(finding)
    return Suppressed(kept, len(findings) - len(kept), found)


def _class_name(symbol: str) -> str:
    return symbol.rsplit(".", 1)[-1]


def _suppress(code: str, candidates: Iterable[Directive]) -> bool:
    hit = False
    for directive in candidates:
        written = directive.covers(code)
        if written is not None:
            directive.used.add(written)
            hit = True
    return hit


def unused_codes(directive: Directive, enabled: Set[str]) -> Tuple[List[str], List[str]]:
    """(unused, kept) resnetlint codes of a directive with codes.  A code is
    unused when it is enabled in this run (or is a prefix of an enabled code)
    and suppressed nothing; codes of rules that did not run are kept, since
    we cannot tell."""
    unused, kept = [], []
    for code in directive.our_codes():
        ran = any(e == code or e.startswith(code) for e in enabled)
        if ran and code not in directive.used:
            unused.append(code)
        else:
            kept.append(code)
    return unused, kept


def add_noqa(text: str, findings: Sequence[Finding]) -> Tuple[str, int]:
    """``text`` with ``# noqa: CODES`` appended to every line with findings
    (merged into an existing ``# noqa: ...`` there); returns the new text and
    the number of lines changed.  A code the line's directive names but
    that suppresses nothing (an RL100 finding) is replaced, not kept beside
    the new one, and RL100 itself is never added.  Lines whose end lies
    inside a multi-line string are left alone (a comment there would change
    the string)."""
    wanted: Dict[int, Set[str]] = {}
    unused: Dict[int, Finding] = {}
    for finding in findings:
        if finding.code == UNUSED_NOQA:
            unused[finding.line] = finding
        elif finding.code not in UNSUPPRESSIBLE:
            wanted.setdefault(finding.line, set()).add(finding.code)
    if not wanted and not unused:
        return text, 0
    lines = text.splitlines(True)
    in_string = _lines_ending_in_strings(text)
    existing = {d.line: d for d in directives(text) if d.kind in ("line", "class")}
    changed = 0
    for line_no in sorted(set(wanted) | set(unused)):
        if line_no - 1 >= len(lines) or line_no in in_string:
            continue
        directive = existing.get(line_no)
        if directive is None or directive.codes is None:
            if directive is None and wanted.get(line_no):  # a bare noqa already covers everything
                lines[line_no - 1] = _with_comment(lines[line_no - 1], sorted(wanted[line_no]))
                changed += 1
            continue
        kept = _still_used(directive, unused.get(line_no))
        new = sorted(c for c in wanted.get(line_no, ()) if not any(_covers(k, c) for k in kept))
        if kept + new == list(directive.codes):
            continue
        lines[line_no - 1] = _with_directive(lines[line_no - 1], directive, kept + new)
        changed += 1
    return "".join(lines), changed


UNUSED_NOQA = "RL100"


def _still_used(directive: Directive, unused_noqa: Optional[Finding]) -> List[str]:
    """The directive's codes minus those RL100 reported as suppressing
    nothing: its fix rewrites the directive to what should remain."""
    if unused_noqa is None or unused_noqa.fix is None or not unused_noqa.fix.edits:
        return list(directive.codes or [])
    match = LINE_DIRECTIVE.search(unused_noqa.fix.edits[0].text)
    remaining = {c.upper() for c in re.split(r"[,\s]+", match.group("codes") or "") if c} if match else set()
    return [code for code in directive.codes or [] if code in remaining]


def _covers(written: str, code: str) -> bool:
    return code == written or (code.startswith(written) and OUR_CODE.match(written) is not None)


def _with_comment(line: str, codes: List[str]) -> str:
    body = line.rstrip("\r\n")
    return body.rstrip() + "  # noqa: " + ", ".join(codes) + line[len(body):]


def _with_directive(line: str, directive: Directive, codes: List[str]) -> str:
    """The line with its directive's codes replaced (the whole comment gone
    when no code is left)."""
    body = line.rstrip("\r\n")
    ending = line[len(body):]
    if codes:
        return body[:directive.start] + "# noqa: " + ", ".join(codes) + body[directive.end:] + ending
    rest = body[directive.end:]
    if body[directive.comment_start:directive.start].strip() or rest.strip():
        return body[:directive.start].rstrip() + rest + ending  # other text in the comment stays
    return body[:directive.comment_start].rstrip() + ending


def _lines_ending_in_strings(text: str) -> Set[int]:
    """Lines (1-based) whose line break is inside a string token."""
    inside: Set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0], token.end[0]))
            elif getattr(tokenize, "FSTRING_START", None) is not None and token.type == tokenize.FSTRING_MIDDLE \
                    and token.end[0] > token.start[0]:
                inside.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return inside
