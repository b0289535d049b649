"""Finds pickle-format files in a checkpoint folder without ever unpickling them.

Unpickling runs arbitrary code, so egosim's checkpoint loaders (the VLA, the SB3 baseline) refuse a
folder that holds any pickle-based file: a pickle extension, a file that starts like a pickle, or a
zip archive with a `.pkl` member (what `torch.save` and SB3's `.zip` write). Torch-free, so any
policy kind can use it.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
_MAX_SAFETENSORS_HEADER = 100 << 20  # safetensors itself refuses headers over 100 MB


def is_safetensors(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a well-formed safetensors file: a little-endian u64 header length N, then N
    bytes of a JSON object, inside the file.

    Why: a header length of 0x480 (or 0x080 ... 0x580) begins with the bytes of pickle's PROTO opcode
    (0x80 <protocol>), so the two-byte pickle check alone rejects valid safetensors files.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= min(_MAX_SAFETENSORS_HEADER, size - 8):
                return False
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict)


def find_pickle_files(folder: str | os.PathLike[str]) -> list[str]:
    """Files under `folder` in a pickle-based format, each as 'relative/path (reason)'.

    Checked without unpickling: the extension, the first two bytes (pickle protocol >= 2 starts with
    the PROTO opcode 0x80 and the protocol number) unless the file is well-formed safetensors, and
    zip archives holding a `.pkl` member (what `torch.save` writes since torch 1.6).
    """
    root = Path(folder)
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.suffix.lower() in PICKLE_SUFFIXES:
                found.append(f"{rel} (extension {p.suffix})")
                continue
            try:
                with open(p, "rb") as fh:
                    head = fh.read(4)
            except OSError:
                continue
            if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5 and not is_safetensors(p):
                found.append(f"{rel} (starts with pickle header 0x80 0x{head[1]:02x})")
            elif head == b"PK\x03\x04" and _zip_holds_pickle(p):
                found.append(f"{rel} (zip archive with a .pkl member: a torch.save file)")
    return found


def _zip_holds_pickle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith(".pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
