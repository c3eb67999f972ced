"""Copy the tables of figures from ``benchmarks/results/*.md`` into the docs that show them.

A doc marks where a results table goes:

    <!-- table: benchmarks/results/serve_hostile.md -->
    ...replaced by the file's content...
    <!-- end table -->

    python benchmarks/tables.py           # rewrite every marked region
    python benchmarks/tables.py --check   # exit 1 when a doc differs from its results file (CI)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from script_parser import script_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "runtime/README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
]
REGION = re.compile(r"(<!-- table: (?P<source>[^ ]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def nested(table: str) -> str:
    """A results file as part of a page: its own title dropped (the page introduces it), its other
    headings two levels down, so that they sit under the page's own."""
    lines = table.splitlines(keepends=True)
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    return "".join("##" + line if line.startswith("#") else line for line in lines)


def filled(text: str) -> str:
    def fill(match: re.Match) -> str:
        source = ROOT / match["source"]
        if not source.is_file():
            raise SystemExit(f"tables.py: {match['source']}: no such results file")
        return match.group(1) + nested(source.read_text()) + match.group(4)

    return REGION.sub(fill, text)


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a doc is out of date")
    args = parser.parse_args()
    stale = []
    for name in DOCS:
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_text()
        new = filled(text)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    for name in stale:
        print(f"{name}: {'differs from its results files' if args.check else 'tables updated'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
