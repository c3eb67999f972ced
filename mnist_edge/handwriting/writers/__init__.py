"""Writers: four hands, each one person's digits, written independently of the rest of the project.

Each module was written from a persona alone (who writes, where they learned to write) by an
author who saw no other hand of the project, no model and no data; each draws all ten digits as
pen strokes with that person's habits (a German 1 with a long up-stroke, a French 7 with a
crossbar, ...) and the way one person's writing varies. They are the project's validation of how
training carries over to a hand it has not seen (``benchmarks/flagged_ones.py``), and may be
trained on (``TrainConfig.writer_hands``). The held-out hands of ``benchmarks/handwriting.py``
are never among them.

Each module has ``DESCRIPTION`` and ``strokes(digit, rng) -> list of (N, 2) arrays`` (x right,
y down, about 1 tall).
"""

from __future__ import annotations

from types import ModuleType

from mnist_edge.handwriting.writers import czech, french, german, swedish_child

WRITERS: dict[str, ModuleType] = {
    "Writer (German office worker)": german,
    "Writer (French teacher)": french,
    "Writer (Czech engineer)": czech,
    "Writer (Swedish child)": swedish_child,
}
