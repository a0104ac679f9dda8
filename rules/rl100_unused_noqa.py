"""
## What it does
Finds `# noqa: RLxxx` comments (on a line, on a `class` line, or a
file-level `# resnetlint: noqa: RLxxx`) whose resnetlint codes suppressed
nothing in this run.

Only codes of rules that ran are judged: `# noqa: RL303` is left alone when
RL303 is not selected, and codes of other tools (`E501`, `F401`) are never
touched. A bare `# noqa` is never reported, since it may be there for
another linter; neither is a bare file-level `# resnetlint: noqa`, which is
how a file is opted out.

## Why is this bad?
A suppression outlives the bug it was written for: once the code is
corrected (or moved), the stale comment silently hides the next real
problem on that line or in that class.

## Example
```python
out = self.conv2(out)  # noqa: RL101
```

## Use instead
```python
out = self.conv2(out)
```

## Fix safety
The fix removes the unused codes (the whole comment when none remain; other
tools' codes are kept). It is safe: comments do not change what the code
computes.

## References
- [flake8: selecting and ignoring violations](https://flake8.pycqa.org/en/latest/user/violations.html)
"""
from __future__ import annotations

from typing import Iterator, List, Sequence, Set

from resnetlint.findings import Edit, Finding, FixInfo
from resnetlint.noqa import Directive, unused_codes
from resnetlint.rule import Invalid, Rule, Valid

SAFE = "safe"


class UnusedNoqa(Rule):
    code = "RL100"
    name = "unused-noqa"
    summary = "A `# noqa: RLxxx` that suppresses nothing"
    severity = "warning"
    fix_availability = "always"
    fix_safety = SAFE
    file_level = True  # judged once per file from the suppression comments, not per block
    examples_need_all_rules = True  # a noqa can only be judged against the rules it names

    VALID = (
        Valid("""
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                    self.conv2 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.conv1(x)
                    out = self.conv2(x)  # noqa: RL101
                    return out + x
        """, note="the suppression is used"),
        Valid("""
            import os  # noqa: F401
            y = 1  # noqa
        """, note="other tools' codes and bare noqa are not ours to judge"),
        Valid("""
            # resnetlint: noqa
            x = 1
        """, note="a bare file-level directive opts the file out"),
    )
    INVALID = (
        Invalid("""
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.conv1(x)  # noqa: RL101
                    return out + x
        """, expect=((7, 30),), note="nothing to suppress", fixed="""
            class Block(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    out = self.conv1(x)
                    return out + x
        """),
        Invalid("""
            class Block(nn.Module):  # noqa: RL201, N801
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    return self.conv1(x) + x
        """, expect=((1, 26),), note="class-level codes that matched nothing; N801 is kept", fixed="""
            class Block(nn.Module):  # noqa: N801
                def __init__(self, c):
                    super().__init__()
                    self.conv1 = nn.Conv2d(c, c, 3, padding=1)

                def forward(self, x):
                    return self.conv1(x) + x
        """),
    )

    def check(self, block, analysis) -> Iterator:
        return iter(())  # file-level: see ``report``

    def report(self, found: Sequence[Directive], enabled: Set[str], path: str, lines: List[str]) -> List[Finding]:
        out = []
        for directive in found:
            if directive.codes is None:
                continue
            unused, _ = unused_codes(directive, enabled)
            if unused:
                out.append(self._finding(directive, unused, path, lines))
        return out

    def _finding(self, directive: Directive, unused: List[str], path: str, lines: List[str]) -> Finding:
        what = ", ".join(unused)
        place = {"file": "file-level ", "class": "class-level "}.get(directive.kind, "")
        finding = Finding(self.code, self.name, self.severity, path, directive.line, directive.start + 1,
                          directive.line, directive.end + 1, directive.class_name,
                          f"Unused {place}`noqa` directive (nothing to suppress for {what})",
                          "remove it, or the codes that no longer apply")
        finding.fix = FixInfo(SAFE, f"Remove unused `noqa` code{'s' if len(unused) > 1 else ''} {what}",
                              edits=[_removal(directive, unused, lines)])
        return finding


def _removal(directive: Directive, unused: List[str], lines: List[str]) -> Edit:
    """The edit that drops ``unused`` from the directive (all of it when no
    code, ours or another tool's, is left)."""
    line = lines[directive.line - 1].rstrip("\r\n")
    remaining = [code for code in directive.codes or [] if code not in unused]
    row = directive.line
    if remaining:
        keyword = "# resnetlint: noqa: " if directive.kind == "file" else "# noqa: "
        return Edit(row, directive.start + 1, row, directive.end + 1, keyword + ", ".join(remaining))
    whole_comment = line[directive.comment_start:].rstrip() == line[directive.start:directive.end].rstrip()
    if whole_comment and directive.own_line:
        if row < len(lines):
            return Edit(row, 1, row + 1, 1, "")  # the comment was the whole line
        return Edit(row, 1, row, len(line) + 1, "")
    start = directive.comment_start if whole_comment else directive.start
    start = len(line[:start].rstrip())  # with the spaces before it
    end = len(line) if whole_comment else directive.end
    return Edit(row, start + 1, row, end + 1, "")
