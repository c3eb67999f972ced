"""What a model file says about its own output, so that a model copied alone still tells the truth.

mnist-edge writes one metadata entry into every model it exports, named ``OUTPUT_METADATA``: JSON
``{"outputs": "logits" | "scores", "activation": "sigmoid" | "softmax" | null}``. The int8 models
output logits (so that a runner-up's confidence is not rounded to 0) and the runtime applies the
activation; the float models output scores already. In a ``.tflite`` file the entry is a TFLite
``Metadata`` table (name + buffer); in an ``.onnx`` file a ``metadata_props`` key.

Reading TFLite metadata needs no TFLite package: the few flatbuffer fields involved are read
here with ``struct``, with every offset checked against the file's size.

Every model mnist-edge exports also carries its own SHA-256 in a second entry, ``DIGEST_METADATA``,
so that a file copied alone still notices damage: the value is ``mnist_edge.sha256:<64 hex>``,
the SHA-256 of the whole file with those 64 hex digits read as zeros (``seal_digest`` writes it,
``digest_problem`` checks it). Every other byte is covered: weights, graph and all metadata, this
entry's name included. The check needs no parser, TFLite or ONNX: the value is found by its
prefix in the raw bytes. Since the entry's name is the prefix of its value, the file holds that
name twice, and no single damaged byte can make a sealed file look like one that was never
sealed (older exports and foreign models, which still load unchecked).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct

OUTPUT_METADATA = "mnist_edge.output"
ACTIVATIONS = ("sigmoid", "softmax")
DIGEST_METADATA = "mnist_edge.sha256"
_DIGEST_PREFIX = f"{DIGEST_METADATA}:".encode()
_DIGEST_HEX = 64
# What a digest reads as while it is hashed (and what an exporter writes before ``seal_digest``).
DIGEST_PLACEHOLDER = f"{DIGEST_METADATA}:{'0' * _DIGEST_HEX}"
_DIGEST_VALUE = re.compile(rb"[0-9a-f]{64}")

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


def digest_problem(content: bytes) -> str | None:
    """Why ``content`` is refused by the digest it carries; None if it matches or carries none."""
    if DIGEST_METADATA.encode() not in content:
        return None  # never sealed: an older export or a foreign model
    places = _digest_places(content)
    if len(places) != 1:
        return "its digest entry is damaged" if not places else "it carries more than one digest"
    start = places[0]
    written = bytes(content[start : start + _DIGEST_HEX])
    if not _DIGEST_VALUE.fullmatch(written):
        return "its digest entry is damaged"
    if _masked_sha256(content, start) != written.decode():
        return "its SHA-256 does not match the digest it carries"
    return None


def seal_digest(content: bytes) -> bytes:
    """``content`` with its one digest entry (``DIGEST_PLACEHOLDER`` or an old value) set to its SHA-256.

    The value keeps its length, so no offset in the file moves: the bytes hashed are the bytes
    written, apart from the 64 hex digits themselves.
    """
    places = _digest_places(content)
    if len(places) != 1:
        raise ValueError(f"expected one {DIGEST_METADATA} entry to seal, found {len(places)}")
    start = places[0]
    sealed = bytearray(content)
    sealed[start : start + _DIGEST_HEX] = _masked_sha256(content, start).encode()
    return bytes(sealed)


def _digest_places(content: bytes) -> list[int]:
    """Where the 64 hex digits of each ``mnist_edge.sha256:`` value start (as many as it holds)."""
    places, at = [], content.find(_DIGEST_PREFIX)
    while at >= 0:
        start = at + len(_DIGEST_PREFIX)
        if start + _DIGEST_HEX <= len(content):
            places.append(start)
        at = content.find(_DIGEST_PREFIX, at + 1)
    return places


def _masked_sha256(content: bytes, start: int) -> str:
    view = memoryview(content)
    digest = hashlib.sha256(view[:start])
    digest.update(b"0" * _DIGEST_HEX)
    digest.update(view[start + _DIGEST_HEX :])
    return digest.hexdigest()
