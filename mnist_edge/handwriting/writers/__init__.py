"""Writers: four hands, each one person's digits, written independently of the rest of the project.

Each module was written from a persona alone (who writes, where they learned to write) by an
author who saw no other hand of the project, no model and no data; each draws all ten digits as
pen strokes with that person's habits (a German 1 with a long up-stroke, a French 7 with a
crossbar, ...) and the way one person's writing varies. They are the project's validation of how
training carries over to a hand it has not seen (``benchmarks/flagged_ones.py``), and may be
trained on (``TrainConfig.writer_hands``). The held-out hands of ``benchmarks/handwriting.py``
are never among them.

Each module has ``DESCRIPTION`` and ``strokes(digit, rng) -> list of (N, 2) arrays`` (x right,
y down, about 1 tall). The modules are kept as their authors wrote them (renamed for the linter
only): each is its own hand, so their helpers are not shared, and a digest test pins what they
draw, since a change to one changes a validation set.
"""

from __future__ import annotations

import zlib
from types import ModuleType

from mnist_edge.handwriting.writers import czech, french, german, swedish_child

WRITERS: dict[str, ModuleType] = {
    "Writer (German office worker)": german,
    "Writer (French teacher)": french,
    "Writer (Czech engineer)": czech,
    "Writer (Swedish child)": swedish_child,
}


def writer_seed(writer: str, base: int, digit: int) -> int:
    """A seed for drawings of ``digit`` by ``writer`` that depends on the name, not on the order of
    ``WRITERS``: adding a writer leaves the others' pictures as they were."""
    return base + 10 * (zlib.crc32(writer.encode()) % 100_000) + digit
