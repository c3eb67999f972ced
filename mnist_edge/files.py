"""Writing files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnist_edge.errors import UserError


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise a UserError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{path}: output folder is not writable ({exc.strerror})") from None
    return path


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict:
    """A JSON file this tool wrote (run record, checkpoint state), or a UserError saying it is damaged.

    ``required`` keys must be present: a record that parses but lacks them is damaged too.
    """
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); delete it or choose another folder") from None
    if not isinstance(payload, dict):
        raise UserError(f"{path}: not a JSON object; delete it or choose another folder")
    missing = [key for key in required if key not in payload]
    if missing:
        raise UserError(f"{path}: damaged (no {', '.join(missing)}); delete it or choose another folder")
    return payload


def write_json_atomically(path: Path, payload: dict) -> None:
    write_bytes_atomically(path, (json.dumps(payload, indent=2) + "\n").encode())
