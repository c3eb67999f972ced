"""The docs say what the code does: every command and option they show exists (its ``--help`` names
it), every repository file they name exists, and every table of figures equals its results file."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "runtime" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Command names, and modules run with `python -m`, -> the module whose --help answers.
CLIS = {
    "mnist-edge": "mnist_edge",
    "mnist-edge-runtime": "mnist_edge_runtime",
    "mnist_edge.package": "mnist_edge.package",
    "mnist_edge.packaged": "mnist_edge.packaged",
    "mnist_edge.digest": "mnist_edge.digest",
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
    # Named from the repository root, whatever the page: a reader types them in a checkout.
    assert (ROOT / path).exists(), f"{doc} names {path}, which is not a path from the repository root"


def test_every_table_equals_its_results_file():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- install: a plain `pip install ./runtime` answers ------------------------------------------

RUNTIME_PROJECT = tomllib.loads((ROOT / "runtime" / "pyproject.toml").read_text())["project"]
INTERPRETERS = ("ai-edge-litert", "tflite-runtime")


def _default_requirements(python: str, platform: str, machine: str) -> list[Requirement]:
    environment = {"python_version": python, "python_full_version": f"{python}.0",
                   "sys_platform": platform, "platform_machine": machine, "extra": ""}  # fmt: skip
    requirements = [Requirement(line) for line in RUNTIME_PROJECT["dependencies"]]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]


@pytest.mark.parametrize(
    "python, platform, machine, interpreter",
    [
        ("3.11", "linux", "x86_64", "ai-edge-litert"),
        ("3.13", "linux", "x86_64", "ai-edge-litert"),
        ("3.11", "linux", "aarch64", "ai-edge-litert"),  # Raspberry Pi OS Bookworm 64-bit
        ("3.13", "linux", "aarch64", "ai-edge-litert"),  # Trixie 64-bit
        ("3.11", "linux", "armv7l", "tflite-runtime"),  # Bookworm 32-bit
        ("3.9", "linux", "aarch64", "tflite-runtime"),
        ("3.12", "darwin", "arm64", "ai-edge-litert"),
        ("3.12", "win32", "AMD64", "ai-edge-litert"),
        ("3.13", "linux", "armv7l", None),  # Trixie 32-bit: PyPI has no interpreter for it
        ("3.11", "linux", "armv6l", None),
        ("3.12", "darwin", "x86_64", None),
    ],
)
def test_a_plain_install_brings_the_interpreter_the_runtime_readme_names(
    python, platform, machine, interpreter
):
    found = {r.name for r in _default_requirements(python, platform, machine)}
    assert found & set(INTERPRETERS) == ({interpreter} if interpreter else set())
    assert "pillow" in found  # predict reads picture files without an extra
    # tflite-runtime 2.14 crashes with numpy 2: pinned where it is the interpreter, and only there.
    pins = [str(r.specifier) for r in _default_requirements(python, platform, machine) if r.name == "numpy"]
    assert ("<2" in pins) == (interpreter == "tflite-runtime")


def test_the_device_packages_resolve_what_their_extras_name():
    """The offline packages read the same pyproject.toml: the default dependencies add nothing a
    target's extras did not already bring, so every package holds the same projects as before."""
    from mnist_edge import package

    for target in package.TARGETS.values():
        names = {
            re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0] for line in package.runtime_requirements(target)
        }
        wanted = [
            Requirement(line)
            for extra in target.extras.split(",")
            for line in RUNTIME_PROJECT["optional-dependencies"][extra]
        ]
        from_extras = {r.name for r in wanted} | {"numpy"}
        assert names <= from_extras, (
            f"{target.name}: {names - from_extras} come from the default dependencies only"
        )
        assert len(names & set(INTERPRETERS)) == 1, target.name


def install_hints() -> list[tuple[str, str]]:
    """(file, hint) for every `pip install ...` the runtime's messages suggest."""
    found = []
    for path in sorted((ROOT / "runtime" / "mnist_edge_runtime").glob("*.py")):
        text = path.read_text()
        found += [(path.name, hint) for hint in re.findall(r"pip install [^)\n]+", text)]
    return found


@pytest.mark.parametrize("file, hint", install_hints())
def test_every_install_hint_uses_the_docs_spelling(file, hint):
    extras = re.findall(r'"\./runtime\[([a-z,]+)\]"', hint)
    assert extras, f'{file}: {hint!r} is not spelled as the docs spell it (pip install "./runtime[EXTRA]")'
    for extra in ",".join(extras).split(","):
        assert extra in RUNTIME_PROJECT["optional-dependencies"], f"{file}: no extra {extra!r}"
    readme = (ROOT / "runtime" / "README.md").read_text()
    install = readme[readme.index("## Install") :].split("\n## ", 1)[0]
    for extra in ",".join(extras).split(","):
        assert f"`{extra}`" in install or f'"./runtime[{extra}]"' in install, (
            f"the runtime README's Install lacks {extra}"
        )


def test_install_hints_are_found_at_all():
    assert {"backends.py", "serve.py"} <= {file for file, _ in install_hints()}


# --- the README's first screen works on the computer in front of you ---------------------------


def test_the_readmes_first_commands_are_local():
    first = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "pip install" in first and "mnist-edge-runtime serve" in first
    assert not re.search(r"scp|raspberrypi|~/mnist-edge|mnist_edge.package", first)


def test_the_sample_pictures_are_answered_with_the_digit_their_names_carry():
    examples = sorted(p for p in (ROOT / "runtime" / "examples").iterdir() if p.suffix in (".png", ".jpg"))
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "predict", "runtime/examples/", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [Path(row["file"]).name for row in rows] == [p.name for p in examples] and len(rows) >= 3
    for row in rows:
        assert row["digit"] == int(re.search(r"-(\d)\.", row["file"]).group(1)), row
        assert row["sure"], row


def test_the_readmes_predict_sample_is_what_predict_prints():
    # The scores move with every retraining; the README shows the committed bundle's. They hold on
    # every CPU class: litert's int8 outputs and the reading are bit-identical on each (docs/parity.md).
    shown = re.search(r"```\n(file +predicted.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "predict", "runtime/examples/"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == shown.split(), done.stdout


# --- every --help: a whole description, no markup ------------------------------------------------

SUBCOMMANDS = {
    "mnist-edge": ["", "train", "qat", "export", "report", "pipeline", "package"],
    "mnist-edge-runtime": ["", "predict", "eval", "bench", "serve"],
    "mnist_edge.package": [""],
    "mnist_edge.packaged": [""],
    "mnist_edge.digest": [""],
}
SCRIPTS = sorted(
    str(p.relative_to(ROOT))
    for folder in ("benchmarks", "tests/emulation", "runtime/examples")
    for p in (ROOT / folder).glob("*.py")
    if "parse_args(" in p.read_text()
)


def _script_help(script: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _description(text: str) -> str:
    """argparse's description: the paragraph after the usage lines."""
    paragraphs = text.strip().split("\n\n")
    return " ".join(paragraphs[1].split()) if len(paragraphs) > 1 else ""


@pytest.mark.parametrize(
    "cli, sub",
    [(cli, sub) for cli, subs in SUBCOMMANDS.items() for sub in subs] + [(s, None) for s in SCRIPTS],
)
def test_every_help_is_whole_and_plain(cli, sub):
    code, text = help_text(cli, sub) if sub is not None else _script_help(cli)
    assert code == 0, text[-300:]
    assert "`" not in text, [line for line in text.splitlines() if "`" in line]
    if cli != "mnist-edge":  # argparse: the description is a whole sentence, not a cut first line
        description = _description(text)
        assert description.endswith((".", ")", "?")), (
            f"{cli} {sub or ''}: description ends mid-sentence: {description!r}"
        )


def test_scripts_are_found():
    assert {"benchmarks/int8_vs_float.py", "runtime/examples/make.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_refuses_a_bad_option_in_one_line(script):
    done = subprocess.run(
        [sys.executable, script, "--no-such-option"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-300:]
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], done.stderr[-300:]


# --- what the runtime README says of pictures, checked through the command ----------------------

RUNTIME_README = ROOT / "runtime" / "README.md"


def _predict_json(*files: Path) -> tuple[int, list[dict], str]:
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", "predict", "--json", *map(str, files)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.stdout else [], done.stderr


def test_the_decoding_limit_is_the_one_the_runtime_readme_gives(tmp_path):
    from PIL import Image

    text = " ".join(RUNTIME_README.read_text().split())
    assert "decoding would take more than 200 MB (64 MB in `serve`)" in text
    answered = {
        "7500x7500 grayscale PNG": ("gray.png", Image.new("L", (7500, 7500), 255), {}),
        "48-megapixel baseline JPEG photo": (
            "photo.jpg",
            Image.new("RGB", (8000, 6000), "white"),
            {"quality": 80},
        ),
    }
    refused = {
        "6000x6000 RGB PNG": ("rgb.png", Image.new("RGB", (6000, 6000), "white"), {}),
        "5000x5000 transparent one": ("rgba.png", Image.new("RGBA", (5000, 5000), (0, 0, 0, 0)), {}),
        "48-megapixel progressive JPEG": (
            "progressive.jpg", Image.new("RGB", (8000, 6000), "white"), {"quality": 80, "progressive": True},
        ),
    }  # fmt: skip
    for words, (name, image, options) in {**answered, **refused}.items():
        assert words in text, words
        image.save(tmp_path / name, **options)
        image.close()
    code, rows, _ = _predict_json(
        *(tmp_path / name for name, _, _ in (*answered.values(), *refused.values()))
    )
    by_name = {Path(row["file"]).name: row for row in rows}
    assert code == 1  # some file could not be read
    for name, _, _ in answered.values():
        assert "error" not in by_name[name], by_name[name]
    for name, _, _ in refused.values():
        assert "over the 200 MB limit" in by_name[name]["error"], by_name[name]


def test_a_blank_picture_answers_what_the_runtime_readme_shows(tmp_path):
    from PIL import Image

    shown = re.search(
        r"A blank picture runs no model and answers `(\{.*?\})`", RUNTIME_README.read_text(), re.S
    )
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    code, rows, _ = _predict_json(tmp_path / "blank.png")
    assert code == 0
    assert {k: v for k, v in rows[0].items() if k != "file"} == json.loads(" ".join(shown.group(1).split()))


def test_the_runtime_readme_says_how_many_images_ci_checks_the_packages_on():
    ci = (ROOT / ".ci" / "run").read_text()
    images = int(re.search(r"install_package\.py --images (\d+)", ci).group(1))
    text = " ".join(RUNTIME_README.read_text().split())
    assert f"CI runs it on the first {images:,} test images (`--images {images}`)" in text


def test_the_not_sure_rule_the_runtime_readme_gives_is_the_runtimes():
    from mnist_edge_runtime import verdict

    text = " ".join(RUNTIME_README.read_text().split())
    low, high = verdict.INK_SHARE
    for words in (
        f"ink (pixels > {verdict.INK_LEVEL}) covering less than {low:.0%} or more than {high:.0%}",
        f"in more than {verdict.MAX_PIECES} separate pieces",
        f"under {verdict.MIN_INK_SIDE} pixels along its longer side",
        f"the best score under {verdict.MIN_CONFIDENCE};",
        f"`ambiguous`: the second best {verdict.MAX_RUNNER_UP} or more",
    ):
        assert words in text, words


# --- benchmarks/all.sh runs what the docs say ---------------------------------------------------

ALL_SH = ROOT / "benchmarks" / "all.sh"
NOT_BENCHMARKS = {"tables.py", "baseline.py"}  # the docs' table filler and a helper module


def _committed(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` git tracks (a file being written in a working tree is not yet part
    of the repository); every match where git is not at hand."""
    try:
        done = subprocess.run(["git", "ls-files", pattern], cwd=folder, capture_output=True, text=True)
    except FileNotFoundError:
        done = None
    if done is None or done.returncode != 0:
        return sorted(folder.glob(pattern))
    return [folder / name for name in done.stdout.split()]


def test_all_sh_runs_every_benchmark_script():
    runs = set(re.findall(r"benchmarks/(\w+\.py)", ALL_SH.read_text()))
    scripts = {
        p.name
        for p in _committed(ROOT / "benchmarks", "*.py")
        if p.name not in NOT_BENCHMARKS and '__name__ == "__main__"' in p.read_text()
    }
    assert scripts - runs == set(), "benchmarks/all.sh does not run these"


def test_all_sh_runs_the_commands_behind_the_committed_results():
    commands = set()
    for results in (ROOT / "benchmarks" / "results").rglob("*.md"):
        commands |= set(re.findall(r"with `python (benchmarks/[^`]+)`", results.read_text()))
    lines = [" ".join(line.split("#")[0].split()[1:]) for line in ALL_SH.read_text().splitlines()]
    assert commands and all(command in lines for command in commands), commands


def test_every_page_gives_all_sh_the_same_time():
    said = set()
    for text in [ALL_SH.read_text(), *(doc.read_text() for doc in DOCS)]:
        text = " ".join(text.replace("#", " ").split())
        for mention in re.finditer(r"all\.sh.{0,400}?(\w+ than \d+|about \d+) minutes", text):
            said.add(mention.group(1))
    assert len(said) == 1, said


def test_the_speed_pages_cpu_table_names_the_cpu_of_every_results_file():
    results = ROOT / "benchmarks" / "results"
    text = (ROOT / "docs" / "speed.md").read_text()
    table = text[text.index("| name used below |") :].split("\n\n", 1)[0].splitlines()[2:]
    claimed: dict[Path, str] = {}
    for row in table:
        cpu, files = [cell.strip() for cell in row.strip("|").split("|")][1:3]
        model = "AMD EPYC" if "AMD EPYC" in cpu else "Intel(R) Xeon(R) Processor"
        for name in re.findall(r"`([^`]+)`", files):
            if "ending in" in files and name.startswith("-"):
                found = [
                    p for p in results.iterdir() if p.stem.endswith(name) and p.suffix in (".md", ".json")
                ]
            elif name.endswith("/"):
                found = sorted((results / name).iterdir())
            else:
                found = [p for p in (results / f"{name}.md", results / f"{name}.json") if p.exists()]
            assert found, f"docs/speed.md names {name}, which is no results file"
            claimed |= dict.fromkeys(found, model)
    for path, model in claimed.items():
        twin = path.with_suffix(
            ".json" if path.suffix == ".md" else ".md"
        )  # a table may leave the CPU to its JSON
        recorded = path.read_text() + (twin.read_text() if twin.exists() else "")
        assert model in recorded, f"{path.relative_to(ROOT)} was not measured on the {model} its row says"
    measured = [p for p in results.iterdir() if p.suffix == ".md"]
    assert [p.name for p in measured if p not in claimed] == []


def test_results_named_by_cpu_cannot_collide_between_two_cpus():
    from mnist_edge_runtime.machine import cpu_slug, parse_cpuinfo

    xeon = "model name\t: Intel(R) Xeon(R) Processor\ncpu family\t: 6\nmodel\t: 207\nstepping\t: 2\nflags\t: sse4_2 avx2 avx512_vnni\n"
    same = cpu_slug(parse_cpuinfo(xeon), 2)
    assert same == cpu_slug(parse_cpuinfo(xeon), 2) and same.startswith(
        "intel-r-xeon-r-processor-6-207-2-2cpu-"
    )
    others = [
        cpu_slug(parse_cpuinfo(xeon), 16),  # the same VM model with more cores
        cpu_slug(parse_cpuinfo(xeon.replace("207", "143")), 2),  # another generation, same name
        cpu_slug(parse_cpuinfo(xeon.replace(" avx512_vnni", "")), 2),  # VNNI hidden by the hypervisor
    ]
    assert len({same, *others}) == 4
    script = (ROOT / "benchmarks" / "int8_vs_float.py").read_text()
    assert "slug = cpu_slug()" in script and 'f"int8_vs_float-{slug}.json"' in script


def test_the_readmes_layout_names_every_module():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout") :].split("\n## ", 1)[0]
    modules = [
        p.name
        for folder in (ROOT / "mnist_edge", ROOT / "runtime" / "mnist_edge_runtime")
        for p in _committed(folder, "*.py")
        if not p.name.startswith("__")
    ]
    assert modules and [m for m in modules if not re.search(rf"(?<![\w/]){re.escape(m)}", layout)] == []


# --- results tables a person reads: legends, whole words ------------------------------------------


def test_the_hostile_load_table_says_what_each_status_means():
    text = (ROOT / "benchmarks" / "results" / "serve_hostile.md").read_text()
    bodies = text[text.index("| body |") :].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|")[2:] for line in bodies.splitlines()[2:]]  # the status columns
    statuses = set(re.findall(r"\b[2-5]\d\d\b", " ".join(cell for row in rows for cell in row)))
    legend = text.split("\n\n")[-2]
    assert statuses and [s for s in statuses if f"{s}:" not in legend] == []
    assert "`200, 503`" in legend  # the pair a reader asks about


def test_no_results_table_cell_is_cut_off():
    cut = []
    for results in (ROOT / "benchmarks" / "results").rglob("*.md"):
        for line in results.read_text().splitlines():
            if line.startswith("|"):
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                cut += [
                    f"{results.name}: {c}" for c in cells if re.search(r"\b(the|of|this|a|an|to|and)$", c)
                ]
    assert cut == []
