"""The VLA training loop on synthetic in-memory batches: it learns, resumes exactly, freezes by stage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from vla_fixtures import STATS, TINY, batches, synthetic_batch

from egosim.errors import ConfigError, InvalidChoiceError
from egosim.policies.vla.checkpoint import load_checkpoint
from egosim.policies.vla.train import StageConfig, default_freeze, latest_checkpoint, train

def test_loss_goes_down_on_tiny_overfit(tmp_path: Path) -> None:
    one = synthetic_batch(TINY, ["unitree_dex3"], seed=3)
    fixed = {k: (v if isinstance(v, list) else {c: x.expand(8, -1, -1, -1) for c, x in v.items()} if isinstance(v, dict)
                 else v.expand(8, *v.shape[1:])) for k, v in one.items()}
    fixed["embodiment"], fixed["instruction"] = ["unitree_dex3"] * 8, one["instruction"] * 8
    res = train(tmp_path / "run", StageConfig("pretrain", steps=120, lr=1e-2, warmup_steps=5, save_every=120),
                lambda step: fixed, statistics=STATS, model_config=TINY, seed=0)
    first, last = np.mean(res.losses[:20]), np.mean(res.losses[-20:])
    assert last < 0.8 * first, (first, last)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 121)) and rows[0]["stage"] == "pretrain"
    assert set(rows[0]) == {"step", "stage", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s"}


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_state(tmp_path: Path) -> None:
    stage = StageConfig("pretrain", steps=6, save_every=3, warmup_steps=2, keep_last=1)
    whole = train(tmp_path / "a", stage, batches, statistics=STATS, model_config=TINY, seed=5)

    def dies_at_step_4(step: int):
        if step == 4:
            raise Killed  # between the step-3 checkpoint and the next one
        return batches(step)

    with pytest.raises(Killed):
        train(tmp_path / "b", stage, dies_at_step_4, statistics=STATS, model_config=TINY, seed=5)
    assert latest_checkpoint(tmp_path / "b").name == "step_00000003"
    again = train(tmp_path / "b", stage, batches, statistics=STATS, model_config=TINY, seed=5)
    assert again.resumed_from == 3 and again.step == whole.step == 6
    assert whole.checkpoint.name == again.checkpoint.name == "step_00000006"
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_00000006"]  # keep_last=1
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(str(whole.checkpoint / name)), load_file(str(again.checkpoint / name))
        assert a.keys() == b.keys() and len(a) > 0
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    assert {k.split("::")[1] for k in load_file(str(again.checkpoint / "optimizer.safetensors"))} == \
        {"step", "exp_avg", "exp_avg_sq"}
    assert json.loads((again.checkpoint / "trainer_state.json").read_text())["step"] == 6
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "b" / "metrics.csv"))]
    assert steps == [1, 2, 3, 4, 5, 6]
    # a finished run restarted is a no-op that points at its last checkpoint
    done = train(tmp_path / "b", stage, batches, statistics=STATS, model_config=TINY, seed=5)
    assert done.resumed_from == 6 and done.losses == [] and done.checkpoint == again.checkpoint


def test_stages_freeze_and_record_provenance(tmp_path: Path) -> None:
    assert default_freeze("pretrain", []) == ()
    assert default_freeze("midtrain", ["pretrain"]) == ("text_encoder",)
    assert default_freeze("finetune", ["pretrain", "midtrain"]) == ("text_encoder", "image_encoder")
    assert default_freeze("finetune", ["pretrain"]) == ("text_encoder",)
    assert default_freeze("finetune", []) == ()  # from scratch: nothing frozen

    pre = train(tmp_path / "pre", StageConfig("pretrain", steps=2, save_every=2), batches, statistics=STATS,
                model_config=TINY, data_hours={"human_sim": 1.0})
    mid = train(tmp_path / "mid", StageConfig("midtrain", steps=2, save_every=2, mixture={"human": 0.5, "robot": 0.5}),
                batches, init_checkpoint=pre.checkpoint, data_hours={"human_sim": 0.5, "robot_demos": 0.1})
    fin = train(tmp_path / "fin", StageConfig("finetune", steps=2, save_every=2), batches, init_checkpoint=mid.checkpoint)
    a, b, c = (load_checkpoint(r.checkpoint).model.state_dict() for r in (pre, mid, fin))
    text = [k for k in a if k.startswith("text_encoder.")]
    image = [k for k in a if k.startswith("image_encoder.")]
    assert text and image
    assert all(torch.equal(a[k], b[k]) for k in text)  # midtrain froze the instruction encoder
    assert not all(torch.equal(a[k], b[k]) for k in image)  # ... and trained the vision encoder
    assert all(torch.equal(b[k], c[k]) for k in text + image)  # finetune after midtrain froze both
    assert not torch.equal(b["action_pos"], c["action_pos"])
    prov = load_checkpoint(fin.checkpoint).provenance
    assert [s["stage"] for s in prov.stages] == ["pretrain", "midtrain", "finetune"]
    assert prov.stages[1]["freeze"] == ["text_encoder"] and prov.stages[1]["mixture"] == {"human": 0.5, "robot": 0.5}
    assert prov.stages[2]["steps_done"] == 2
    assert prov.data_hours == {"human_sim": 1.5, "robot_demos": 0.1}


def test_stage_config_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidChoiceError, match="'posttrain'.*finetune, midtrain, pretrain"):
        StageConfig("posttrain", steps=1)
    with pytest.raises(InvalidChoiceError, match="'llm'.*adapters, image_encoder, text_encoder"):
        StageConfig("finetune", steps=1, freeze=("llm",))
    bad = synthetic_batch(TINY, ["sharpa_wave"])
    bad["action"] = bad["action"][:, :2]
    with pytest.raises(ConfigError, match="batch action has shape \\(1, 2, 62\\); expected \\(1, 4, 62\\)"):
        train(tmp_path / "x", StageConfig("pretrain", steps=1), lambda s: bad, statistics=STATS, model_config=TINY)


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from vla_fixtures import STATS, TINY, batches
from egosim.policies.vla.train import StageConfig, train

def slow(step):
    time.sleep(0.05)  # so the parent's SIGKILL lands mid-run
    return batches(step)

train(sys.argv[1], StageConfig("pretrain", steps=30, save_every=4, warmup_steps=3), slow, statistics=STATS,
      model_config=TINY, seed=2)
"""


@pytest.mark.slow
def test_sigkill_resume_matches_uninterrupted(tmp_path: Path) -> None:
    """A training process killed with SIGKILL mid-run, restarted, ends where an unkilled one does."""
    import subprocess
    import sys
    import time

    stage = StageConfig("pretrain", steps=30, save_every=4, warmup_steps=3)
    ref = train(tmp_path / "ref", stage, batches, statistics=STATS, model_config=TINY, seed=2)
    run = tmp_path / "killed"
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(run), str(Path(__file__).parent)]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 120
    while (latest_checkpoint(run) is None or latest_checkpoint(run).name < "step_00000010") and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()  # SIGKILL
    proc.wait()
    killed_at = latest_checkpoint(run)
    assert killed_at is not None and killed_at.name < "step_00000030"
    assert subprocess.run(cmd, timeout=300).returncode == 0
    end = latest_checkpoint(run)
    assert end.name == ref.checkpoint.name == "step_00000030"
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(str(ref.checkpoint / name)), load_file(str(end / name))
        assert all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()
    steps = [int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv"))]
    assert steps == list(range(1, 31))


def test_action_chunk_targets_round_trip() -> None:
    """Targets built from per-step actions turn back into the same steps with the env's chunk utility."""
    from egosim.actions import chunk_to_step_actions
    from egosim.geometry import matrix_to_rot6d
    from egosim.policies.vla.train import action_chunk_at

    rng = np.random.default_rng(0)
    steps = rng.normal(size=(10, 32)) * 0.01
    for off in (0, 16):
        angles = rng.normal(size=(10, 3)) * 0.05
        for k, (a, b, c) in enumerate(angles):
            rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
            rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
            steps[k, off + 3 : off + 9] = matrix_to_rot6d(rx @ rz)
    chunk, valid = action_chunk_at(steps, 7, horizon=4, hand_dof=7)
    assert valid.tolist() == [True, True, True, False] and (chunk[3] == 0).all()
    np.testing.assert_allclose(chunk_to_step_actions(chunk[valid], 7), steps[7:], atol=1e-9)
    first, _ = action_chunk_at(steps, 0, horizon=4, hand_dof=7)
    np.testing.assert_allclose(first[0], steps[0], atol=1e-12)  # a chunk's first entry is its first step
