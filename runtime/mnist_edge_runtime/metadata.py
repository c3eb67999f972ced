"""What a model file says about its own output, so that a model copied alone still tells the truth.

mnist-edge writes one metadata entry into every model it exports, named ``OUTPUT_METADATA``: JSON
``{"outputs": "logits" | "scores", "activation": "sigmoid" | "softmax" | null}``. The int8 models
output logits (so that a runner-up's confidence is not rounded to 0) and the runtime applies the
activation; the float models output scores already. In a ``.tflite`` file the entry is a TFLite
``Metadata`` table (name + buffer); in an ``.onnx`` file a ``metadata_props`` key.

Reading TFLite metadata needs no TFLite package: the few flatbuffer fields involved are read
here with ``struct``, with every offset checked against the file's size.
"""

from __future__ import annotations

import json
import struct

OUTPUT_METADATA = "mnist_edge.output"
ACTIVATIONS = ("sigmoid", "softmax")

# Field numbers in TFLite's schema.fbs: Model.buffers = 4, Model.metadata = 6;
# Metadata.name = 0, Metadata.buffer = 1; Buffer.data = 0.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6


def parse_output_metadata(text: str | bytes | None) -> dict | None:
    """The entry's JSON, checked; None when absent or not understood."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or value.get("outputs") not in ("logits", "scores"):
        return None
    if value["outputs"] == "logits" and value.get("activation") not in ACTIVATIONS:
        return None
    return value


def tflite_metadata(content: bytes) -> dict[str, bytes]:
    """All ``Metadata`` entries of a TFLite flatbuffer, name -> buffer bytes ({} if none or malformed)."""
    try:
        return dict(_tflite_metadata(content))
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return {}


def _tflite_metadata(content: bytes):
    size = len(content)

    def u32(at: int) -> int:
        if not 0 <= at <= size - 4:
            raise ValueError("offset outside the file")
        return struct.unpack_from("<I", content, at)[0]

    def field(table: int, index: int) -> int | None:
        vtable = table - struct.unpack_from("<i", content, table)[0]
        vtable_size = struct.unpack_from("<H", content, vtable)[0]
        slot = 4 + 2 * index
        if slot + 2 > vtable_size:
            return None
        offset = struct.unpack_from("<H", content, vtable + slot)[0]
        return table + offset if offset else None

    def vector(at: int) -> tuple[int, int]:
        start = at + u32(at)
        length = u32(start)
        if start + 4 + length > size:
            raise ValueError("vector outside the file")
        return start + 4, length

    def table(at: int) -> int:
        return at + u32(at)

    root = u32(0)
    metadata_field, buffers_field = field(root, _MODEL_METADATA), field(root, _MODEL_BUFFERS)
    if metadata_field is None or buffers_field is None:
        return
    buffers_start, buffers = vector(buffers_field)
    start, count = vector(metadata_field)
    for i in range(count):
        entry = table(start + 4 * i)
        name_field, buffer_field = field(entry, 0), field(entry, 1)
        if name_field is None or buffer_field is None:
            continue
        name_start, name_length = vector(name_field)
        index = u32(buffer_field)
        if index >= buffers:
            continue
        data_field = field(table(buffers_start + 4 * index), 0)
        if data_field is None:
            continue
        data_start, data_length = vector(data_field)
        name = content[name_start : name_start + name_length].decode()
        yield name, content[data_start : data_start + data_length]
