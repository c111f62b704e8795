"""Whole-file problems (empty, binary, huge, not a mapping) and the fuzzed loader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.base_answers import BASE
from wizard.answers import AnswersError, from_document, load
from wizard.base.yamlfile import parse_document


def _only_problem(path: Path) -> str:
    with pytest.raises(AnswersError) as caught:
        load(path)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert str(problem).startswith(f"{path}:{problem.line}:{problem.column}: ")
    return str(problem)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "1:1: (file): file is empty"),
        (b"  \n\n\t\n", "1:1: (file): file is empty"),
        (b"# only a comment\n", "the document is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text (byte 0 is 0x89)"),
        (b"site: lab\x00\n", "contains a NUL byte"),
        (b"- a\n- b\n", "the document is a list; expected a mapping of keys"),
        (b"just text\n", "the document is a string"),
        (b"a: [" * 5000, "YAML"),
        (b"a: &a [x, x, x, x, x, x, x, x, x]\n"
         + b"".join(b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n"
                    % ((ord("b") + i,) * 2 + (ord("a") + i,) * 9) for i in range(8)),
         "document expands to more than 1,000,000 values"),
        (b"x:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 80)), "nested"),
    ],
    ids=["empty", "whitespace", "comment-only", "binary", "nul", "list", "scalar", "unclosed",
         "alias-bomb", "deep"],
)
def test_unusable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    assert expected in _only_problem(path)


def test_fifty_megabyte_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    assert "file is 50.0 MiB; answers files are limited to 16 MiB" in _only_problem(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "cannot read file: No such file or directory" in _only_problem(tmp_path / "nope.yaml")
    assert "cannot read file: Is a directory" in _only_problem(tmp_path)


def test_syntax_error_never_shows_the_line_with_an_inline_secret(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(BASE.replace("password: env:CROWBAR_BMC_PASSWORD",
                                 "password: s3cr3t-pass: [unclosed"))
    assert "s3cr3t" not in _only_problem(path)


def test_long_inline_password_is_reported_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    secret = "TopSecretPassword123456"
    path.write_text(BASE.replace("env:CROWBAR_BMC_PASSWORD", secret))
    message = _only_problem(path)
    assert "bmc.password: IPMI 2.0 passwords are at most 20 bytes" in message
    assert secret not in message


def test_many_problems_are_reported_together_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(BASE.replace("router: 192.168.124.1\n", "router: 192.168.124.30\n")
                    .replace("bmc_address: 192.168.124.163", "bmc_address: 192.168.124.162"))
    with pytest.raises(AnswersError) as caught:
        load(path)
    paths = [p.path for p in caught.value.problems]
    assert paths == ["networks.admin.router", "nodes[1].bmc_address"]
    lines = [p.line for p in caught.value.problems]
    assert lines == sorted(lines)


LAB = (Path(__file__).parents[2] / "answers" / "examples" / "lab-small.yaml").read_text()
SOURCES = [BASE.splitlines(keepends=True), LAB.splitlines(keepends=True)]


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """BASE or the lab example with a few random edits: lines dropped, duplicated or swapped,
    bytes spliced in."""
    lines = list(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "swap", "splice", "indent", "truncate"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "splice":
            junk = draw(st.text(st.sampled_from(list(":-[]{}&*!|>'\"%@`#, \t\nax1.\x00é")),
                                max_size=6))
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 5)) + lines[i].lstrip(" ")
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    data = "".join(lines).encode("utf-8")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
    return data


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_yaml_only_ever_raises_answers_error(data: bytes) -> None:
    try:
        answers = from_document(parse_document(data, "fuzz.yaml"))
    except AnswersError as exc:
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message
    else:
        assert answers.schema_version == 1


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_arbitrary_bytes_only_ever_raise_answers_error(data: bytes) -> None:
    with pytest.raises(AnswersError):
        from_document(parse_document(data, "junk.yaml"))


def test_type_errors_and_rule_breaks_in_other_sections_come_together(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(BASE.replace("timezone: UTC", "timezone: Mars/Olympus")
                    .replace("router: 192.168.124.1\n", "router: 192.168.124.30\n")
                    .replace("username: root", "username: [root]"))
    with pytest.raises(AnswersError) as caught:
        load(path)
    # bmc is broken, so the rules reading it wait; the network rules still run
    assert [p.path for p in caught.value.problems] == [
        "site.timezone", "networks.admin.router", "bmc.username"
    ]
