"""Screens start no process, signal none, open no journal and make no driver: the engine does
(:mod:`wizard.engine.deployments`, :mod:`wizard.engine.discover`). The import contract in
``pyproject.toml`` keeps the modules out; this looks for the calls themselves, also those
through a module the contract cannot forbid (``os``, ``asyncio``)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import wizard.tui

FORBIDDEN = re.compile(r"\bos\.(kill|killpg|system|fork|exec\w*|spawn\w*|popen)\(|\bsubprocess\b"
                       r"|\bcreate_subprocess_(exec|shell)\b|\bJournal\.open\(|\bJournal\("
                       r"|\bIpmiDriver\(|\bLab\(|\bsqlite3\.")


def code_lines(source: str) -> dict[int, str]:
    """Each line's code without its strings and comments (a docstring may name a call)."""
    lines: dict[int, list[str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER):
            lines.setdefault(token.start[0], []).append(token.string)
    return {number: re.sub(r" ?([.(]) ?", r"\1", " ".join(words))
            for number, words in lines.items()}


def violations(source: str) -> list[str]:
    return [f"{number}: {line}" for number, line in code_lines(source).items()
            if FORBIDDEN.search(line)]


def test_the_pattern_finds_each_kind_of_call() -> None:
    source = ('"""os.kill(pid) in a docstring is no call"""\n'
              "os.kill(int(who['pid']), signal.SIGINT)  # subprocess\n"
              "await asyncio.create_subprocess_exec(*command)\n"
              "process: asyncio.subprocess.Process\n"
              "journal = Journal.open(path, lock=False)\n"
              "driver = IpmiDriver(timeout=3.0)\n"
              "lab = Lab(lab_directory())\n"
              "except sqlite3.Error: pass\n")
    assert [v.split(":")[0] for v in violations(source)] == [str(n) for n in range(2, 9)]


def test_screens_contain_no_process_signal_journal_or_driver() -> None:
    found = {}
    for path in sorted(Path(wizard.tui.__file__).parent.rglob("*.py")):
        if lines := violations(path.read_text()):
            found[path.name] = lines
    assert found == {}, "screens ask the engine (wizard.engine.deployments, .discover)"
