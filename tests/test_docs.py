"""The docs say what the code does: every command and option they show exists (its ``--help`` names
it), every repository file they name exists, and every table of figures equals its results file."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "runtime" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Command names, and modules run with `python -m`, -> the module whose --help answers.
CLIS = {
    "mnist-edge": "mnist_edge",
    "mnist-edge-runtime": "mnist_edge_runtime",
    "mnist_edge.package": "mnist_edge.package",
}
# Folders and files of the repository a doc may name; runs/, reports/ and the like are outputs.
COMMITTED = ("benchmarks/", "tests/", "runtime/", "mnist_edge/", "export/", "docs/", ".ci/")


def _code(doc: Path) -> list[str]:
    """Fenced code lines and inline code spans."""
    text = doc.read_text()
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    lines = [line for block in fenced for line in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))


def shown_commands() -> set[tuple[str, str, str]]:
    """(cli, subcommand, option) for every ``mnist-edge[-runtime] SUB --option`` in the docs."""
    found = set()
    for doc in DOCS:
        for line in _code(doc):
            line = line.split("#", 1)[0].split("|", 1)[0]
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            for i, word in enumerate(words):
                cli, rest = Path(word).name, words[i + 1 :]
                if word == "-m" and rest:
                    cli, rest = rest[0], rest[1:]
                if cli not in CLIS:
                    continue
                sub = rest[0] if rest and not rest[0].startswith("-") else ""
                options = [w.split("=")[0] for w in rest if w.startswith("--")]
                found |= {(cli, sub, option) for option in options} | {(cli, sub, "")}
    return found


@functools.cache
def help_text(cli: str, sub: str) -> tuple[int, str]:
    command = [sys.executable, "-m", CLIS[cli], *([sub] if sub else []), "--help"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""}
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("cli, sub, option", sorted(shown_commands()))
def test_every_command_and_option_the_docs_show_exists(cli, sub, option):
    code, text = help_text(cli, sub)
    assert code == 0, f"{cli} {sub} --help failed: {text[-300:]}"
    if option:
        assert re.search(rf"{re.escape(option)}\b", text), f"{cli} {sub}: --help does not name {option}"


def test_the_docs_show_commands_at_all():
    shown = shown_commands()
    assert {("mnist-edge", "pipeline", ""), ("mnist-edge-runtime", "serve", "")} <= shown


def named_paths() -> set[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        for span in _code(doc):
            for word in span.split():
                word = word.strip("`'\",;:()").split("#")[0]
                if any(c in word for c in "<>*$~{}[]") or "://" in word:
                    continue
                if word.startswith(COMMITTED) or word in ("README.md", "CHANGELOG.md", "pyproject.toml"):
                    found.add((str(doc.relative_to(ROOT)), word))
    return found


@pytest.mark.parametrize("doc, path", sorted(named_paths()))
def test_every_file_the_docs_name_exists(doc, path):
    assert (ROOT / path).exists() or (ROOT / doc).parent.joinpath(path).exists(), f"{doc} names {path}"


def test_every_table_equals_its_results_file():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
