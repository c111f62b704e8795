"""Text from outside (a BMC's FRU fields, a problem reason, a server's error message) put
into markup: it must show as written, never style the screen or break its markup."""

from __future__ import annotations

import re

from rich.markup import escape

_TAG = re.compile(r"(\\*)(\[[a-z#/@$][^[]*?])")
"""Rich's tag pattern, plus Textual's ``[$variable]`` styles, which Rich's escape keeps."""


def literal(text: str) -> str:
    """``text`` escaped for Rich and Textual markup alike."""
    return escape(text, _escape=_TAG.sub)
