"""An untrained VLA checkpoint plays pen_in_bin through `egosim eval policy=vla checkpoint=...` (rendered cameras)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import vla_fixtures  # noqa: F401  (one torch thread)

from egosim.cli import main
from egosim.policies.vla.checkpoint import save_checkpoint
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.model import VLAModel


def test_untrained_vla_evaluates(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "vla", VLAModel(VLAConfig()), {})
    rc = main(["eval", "tasks=[pen_in_bin]", "policy=vla", f"checkpoint={ckpt}", "episodes=1", "max_steps=20",
               "workers=1", f"output_dir={tmp_path / 'out'}"])
    assert rc == 0, capsys.readouterr().err
    episodes = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    assert sorted(e["embodiment"] for e in episodes) == ["sharpa_wave", "unitree_dex3"]
    for e in episodes:
        assert e["policy"] == "vla" and e["steps"] == 20 and not e["sim_unstable"]


def test_eval_rejects_missing_checkpoint(tmp_path: Path, capsys) -> None:
    rc = main(["eval", "tasks=[pen_in_bin]", "embodiments=[unitree_dex3]", "policy=vla",
               f"checkpoint={tmp_path / 'nope'}", "episodes=1", "max_steps=2", "workers=1",
               f"output_dir={tmp_path / 'out'}"])
    assert rc != 0
    assert "does not exist" in capsys.readouterr().err
