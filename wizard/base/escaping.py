"""Values written into rendered files, escaped for each file's own format.

Every jinja environment that renders a file (the PXE tree, the barclamps' Chef objects)
passes each ``{{ expression }}`` through :func:`one_line` (jinja's ``finalize``): no value
can end a line and start a directive of its own, whatever a template does. On top of that
each format has a filter, named for it, that a template puts on every value it writes:

``dnsmasq_value``
    one field of a dnsmasq option (no ``,`` ``#`` ``"`` ``\\``, no surrounding space)
``ipxe_word``, ``ipxe_words``
    one argument (or several) of an iPXE command: no space, quote, backslash or ``$``
    (settings expansion ``${...}``), and not a command separator (``||``, ``&&``, ``;``)
``pxelinux_word``, ``pxelinux_line``
    a pxelinux KERNEL/INITRD path, the rest of an APPEND line
``sh_word``
    one shell word, quoted as needed; also one kickstart argument (pykickstart splits
    lines with ``shlex``)
``debconf_word``, ``debconf_value``
    a preseed line's question and value (the value is the rest of the line, and a trailing
    backslash would join the next line to it)
``ruby_string``
    a double-quoted Ruby string (Chef's client.rb), ``#{...}`` interpolation escaped
``ifupdown_word``
    one word of an ``/etc/network/interfaces`` stanza (options split on white space)
``ini_word``
    one word of an INI-style file: a systemd ``.link`` unit, a NetworkManager keyfile

A filter never guesses: what its format cannot hold raises :class:`EscapeError`. Answers
validation refuses all of it long before (see ``wizard.base.fields``); the filters make sure a
template, or a value from elsewhere (a directory given on the command line), cannot get
it wrong.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from wizard.base.fields import control_character

_DNSMASQ_UNSAFE = re.compile(r'[,#"\\]')
_IPXE_UNSAFE = re.compile(r"[\s\"'\\$]")
_IPXE_SEPARATORS = frozenset({"||", "&&", ";"})


class EscapeError(ValueError):
    """A value its file's format cannot hold."""


def _text(value: Any, form: str) -> str:
    text = str(value)
    problem = control_character(text)
    if problem:
        raise EscapeError(f"{text!r} cannot be written into {form}: it {problem}")
    return text


def one_line(value: Any) -> Any:
    """Any template value: refused if it holds a control character, else unchanged."""
    _text(value, "a rendered file")
    return value


def dnsmasq_value(value: Any) -> str:
    text = _text(value, "a dnsmasq config")
    bad = _DNSMASQ_UNSAFE.search(text)
    if not text or text != text.strip() or bad:
        why = f"{bad.group()!r} is special there" if bad else "it is empty or space-padded"
        raise EscapeError(f"{text!r} cannot be a dnsmasq option value: {why}")
    return text


def ipxe_word(value: Any) -> str:
    text = _text(value, "an iPXE script")
    bad = _IPXE_UNSAFE.search(text)
    if not text or bad or text in _IPXE_SEPARATORS:
        why = (f"{bad.group()!r} is special there" if bad
               else "it separates commands" if text else "it is empty")
        raise EscapeError(f"{text!r} cannot be an iPXE argument: {why}")
    return text


def ipxe_words(value: Any) -> str:
    """Space-separated words (a kernel command line), each an :func:`ipxe_word`."""
    return " ".join(ipxe_word(word) for word in _text(value, "an iPXE script").split(" ")
                    if word)


def _word(value: Any, where: str, what: str) -> str:
    """``value`` as one word of ``where`` (a ``what``): not empty, no space in it."""
    text = _text(value, where)
    if not text or any(char.isspace() for char in text):
        raise EscapeError(f"{text!r} cannot be {what}: it is empty or has spaces")
    return text


def pxelinux_word(value: Any) -> str:
    return _word(value, "a pxelinux config", "a pxelinux path")


def pxelinux_line(value: Any) -> str:
    """The rest of a pxelinux line (APPEND): anything that stays on that line."""
    return _text(value, "a pxelinux config")


def sh_word(value: Any) -> str:
    return shlex.quote(_text(value, "a shell command or kickstart"))


def debconf_word(value: Any) -> str:
    return _word(value, "a preseed", "a preseed question")


def debconf_value(value: Any) -> str:
    text = _text(value, "a preseed")
    if text != text.strip() or text.endswith("\\"):
        raise EscapeError(f"{text!r} cannot be a preseed value: space-padded or ending in '\\'")
    return text


def ifupdown_word(value: Any) -> str:
    return _word(value, "an interfaces file", "an ifupdown word")


def ini_word(value: Any) -> str:
    """One word without a backslash: systemd joins a line ending in one to the next, and
    NetworkManager's keyfiles read one as an escape."""
    text = _word(value, "an INI-style file", "an INI value")
    if "\\" in text:
        raise EscapeError(f"{text!r} cannot be an INI value: it holds a backslash")
    return text


def ruby_string(value: Any) -> str:
    text = _text(value, "a Ruby file")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#")
    return f'"{escaped}"'


FILTERS = {
    function.__name__: function
    for function in (dnsmasq_value, ipxe_word, ipxe_words, pxelinux_word, pxelinux_line,
                     sh_word, debconf_word, debconf_value, ruby_string, ifupdown_word,
                     ini_word)
}
"""The per-format filters, by the name templates use."""
