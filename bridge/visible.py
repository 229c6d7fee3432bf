"""Text an approval card shows as the person must read it: what runs, not what it looks
like. A long run of blanks (`ls -la`, three thousand spaces, then the real work) is shown by
its size, so what follows stays on the card; an invisible character (a bidi override that
reverses `rm -rf ~`, a zero-width space) by its code point. Indentation is left alone."""

from __future__ import annotations

import re

# long runs of blanks in a command: what follows them must not fall off the card (`ls -la`,
# three thousand spaces, then the real work); indentation stays as it is
_BLANK_LINES = re.compile(r"(?:[ \t]*\n){5,}")
_BLANKS = re.compile(r"[ \t]{40,}")
# format characters (Cf: bidi overrides and isolates, zero-width ones) and controls but the
# line break and the tab
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")


def shown_plainly(command: str) -> str:
    """`command` with each long run of blank lines or blanks shown by its size, and each
    invisible character (bidi overrides, zero-width spaces, controls) by its code point: a
    card must not read differently from what runs."""
    command = _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", command)
    command = _BLANK_LINES.sub(lambda m: f"\n⟨{m.group().count(chr(10)) - 1} blank lines⟩\n",
                               command)
    return _BLANKS.sub(lambda m: f" ⟨{len(m.group())} blanks⟩ ", command)
