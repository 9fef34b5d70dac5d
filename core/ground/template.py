"""Plain `{name}` substitution for batch and schedule topics: nothing else is interpreted.

`str.format` would read `{x:>100000000}` (a 100 MB padding), `{x.attr}` and `{x[0]}`; here a
placeholder is only `{` identifier `}`, every placeholder must name a given value, and `{{` /
`}}` stand for literal braces. Anything else in braces is refused (ValueError), so a template
is checked once when it is stored, not each time it fires.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,63})\}|\{|\}")


def placeholders(template: str) -> list[str]:
    """The names `template` uses, in order; ValueError for braces that are not a placeholder."""
    names: list[str] = []
    for m in _TOKEN.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        if m.group(1) is None:
            snippet = template[m.start():m.start() + 40]
            raise ValueError(f"only plain {{name}} placeholders are allowed (use {{{{ and }}}} "
                             f"for literal braces): {snippet!r}")
        names.append(m.group(1))
    return names


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each `{name}` replaced by `values[name]`; ValueError for an unknown name
    or braces that are not a plain placeholder."""
    missing = sorted({n for n in placeholders(template) if n not in values})
    if missing:
        raise ValueError(f"no value for placeholder(s) {', '.join(missing)}")

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values[m.group(1)]

    return _TOKEN.sub(one, template)
