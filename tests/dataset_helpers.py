"""Breaks a copy of a dataset and returns the validator's complaint, for the schema-check tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from egosim.data.format import DatasetError
from egosim.data.validate import validate_dataset


def validator_error(root: Path, tmp_path: Path, edit: Callable[[Path], object]) -> str:
    """Copies `root` into a fresh folder under `tmp_path`, applies `edit` to the copy, and returns the
    message of the `DatasetError` that `validate_dataset` must raise for it."""
    copy = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    shutil.copytree(root, copy)
    edit(copy)
    with pytest.raises(DatasetError) as exc:
        validate_dataset(copy)
    return str(exc.value)
