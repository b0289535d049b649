"""Finds model files inside the installed package (never relative to the working directory)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from egosim.errors import AssetError


def asset_root() -> Path:
    """The folder of the installed `egosim.assets` package (the repo's `assets/`)."""
    return Path(str(resources.files("egosim.assets")))


def asset_path(*parts: str) -> Path:
    """Path of a file under the assets folder; raises `AssetError` naming what is there instead."""
    path = asset_root().joinpath(*parts)
    if not path.exists():
        parent = path.parent
        have = sorted(p.name for p in parent.iterdir()) if parent.is_dir() else []
        raise AssetError(f"asset {'/'.join(parts)!r} not found under {asset_root()}; {parent.name}/ has: {have}")
    return path
