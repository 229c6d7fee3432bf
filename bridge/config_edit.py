"""Set keys of one table in a TOML config's text, keeping everything else as it was.

`set_table_keys(text, "telegram", {"chat_id": -100…})` replaces the lines of those keys in
the `[telegram]` table (a multi-line array included), adds the missing ones after the table's
last key, or appends the table at the end. Comments, order and every other table stay byte for
byte. The result is proven before it is returned: parsed, it must be the old document with
exactly these values set, or `ConfigEditError` says which lines to add by hand (a table
written as an inline table or with dotted keys is not rewritten).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.errors import ConfigError

TomlValue = str | int | bool | Sequence[str] | Sequence[int]

_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?")


class ConfigEditError(ConfigError):
    """The text cannot be changed safely; the message shows the lines to add by hand."""


def toml_value(value: TomlValue) -> str:
    """`value` as TOML: JSON's strings and numbers are TOML's too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(toml_value(item) for item in value) + "]"


def set_table_keys(text: str, table: str, values: Mapping[str, TomlValue]) -> str:
    """`text` with `values` set in `[table]` (see the module's docstring)."""
    lines = {key: f"{key} = {toml_value(value)}" for key, value in values.items()}
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigEditError("", f"the config is not valid TOML ({e}); fix it first") from e
    rows = text.splitlines(keepends=True)
    if rows and not rows[-1].endswith("\n"):
        rows[-1] += "\n"
    span = _table_span(rows, table)
    if span is None:
        gap = "\n" if rows and rows[-1].strip() else ""
        rows += [gap, f"[{table}]\n", *(line + "\n" for line in lines.values())]
    else:
        start, end = span
        last_key = start  # the header's index: keys go after it when the table has none
        i = start + 1
        while i < end:
            key = _key_of(rows[i])
            if key is None:
                i += 1
                continue
            stop = _value_end(rows, i, end)
            if key in lines:
                rows[i:stop + 1] = [lines.pop(key) + "\n"]
                end -= stop - i
                stop = i
            last_key = stop
            i = stop + 1
        rows[last_key + 1:last_key + 1] = [line + "\n" for line in lines.values()]
    result = "".join(rows)
    _prove(before, result, table, values)
    return result


def _table_span(rows: list[str], table: str) -> tuple[int, int] | None:
    """(header index, index after the table's last line) of `[table]`, or None."""
    start = None
    for i, row in enumerate(rows):
        header = _HEADER.fullmatch(row.rstrip("\n"))
        if header is None:
            continue
        if start is not None:
            return start, i
        if not row.lstrip().startswith("[[") and _unquote(header.group(1)) == table:
            start = i
    return None if start is None else (start, len(rows))


def _unquote(name: str) -> str:
    return name.strip().strip('"').strip("'")


def _key_of(row: str) -> str | None:
    stripped = row.strip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None
    return _unquote(stripped.split("=", 1)[0])


def _value_end(rows: list[str], i: int, end: int) -> int:
    """The index of the last line of the value that starts on line `i` (arrays may span
    lines; brackets inside strings are not counted: the proof catches what that misses)."""
    depth = 0
    j = i
    while j < end:
        code = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', '""', rows[j]).split("#", 1)[0]
        if j == i:
            code = code.split("=", 1)[1]
        depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
        if depth <= 0:
            return j
        j += 1
    return end - 1


def _prove(before: dict[str, Any], text: str, table: str, values: Mapping[str, TomlValue]) -> None:
    expected = copy.deepcopy(before)
    section = expected.setdefault(table, {})
    by_hand = "\n".join([f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in values.items())])
    if not isinstance(section, dict):
        raise ConfigEditError(table, f"is not a table; set it by hand:\n{by_hand}")
    section.update({k: list(v) if isinstance(v, list | tuple) else v for k, v in values.items()})
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise ConfigEditError(table, "the file writes this table in a way this tool does not "
                                     f"rewrite (dotted keys or an inline table); set by hand:\n"
                                     f"{by_hand}")
