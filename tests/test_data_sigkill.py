"""`egosim collect` killed with SIGKILL at random moments (alternating 1 and 2 workers): after every
kill the folder is a valid dataset, and the resumed collection holds every episode exactly once,
equal to an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from egosim.data.collect import collect
from egosim.data.loader import ChunkDataset, read_episode
from egosim.data.validate import validate_dataset

# (episodes, extra overrides): short episodes with video, where kills land mostly mid-episode; and
# 2-step episodes without video, where most of the time goes to commits, so kills land mid-commit.
CASES = {"video": (12, ["max_steps=40", "image_size=[32,48]"]), "commit_heavy": (40, ["max_steps=2", "video=false"])}


def _attempts(root: Path) -> int:
    try:
        return sum(1 for line in (root / "meta/egosim_attempts.jsonl").read_text().splitlines() if line.strip())
    except OSError:
        return 0


def _cmd(total: int, extra: list[str]):
    args = ["embodiments=[unitree_dex3]", "policy=random", "keep=all", f"episodes={total}", "seed=4", *extra]
    return lambda out: [sys.executable, "-m", "egosim.cli", "collect", *args, f"output_dir={out}"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, case: str) -> None:
    total, extra = CASES[case]
    run_cmd = _cmd(total, extra)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = tmp_path / "killed"
    root = out / "unitree_dex3"
    rng = random.Random(8)
    mid_run = 0
    for k in range(5):
        target = _attempts(root) + 1
        proc = subprocess.Popen([*run_cmd(out), f"workers={1 + k % 2}"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _attempts(root) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4 if case == "video" else 0.15))
        mid_run += proc.poll() is None
        proc.kill()
        proc.wait()
        # Valid at any moment: whatever the kill interrupted (an episode, a commit) is not visible.
        summary = validate_dataset(root)
        assert summary.episodes == _attempts(root)
    assert mid_run >= 4, f"only {mid_run} of 5 kills landed while collect was running"
    assert _attempts(root) < total, "the kills came too late to test a resume"
    done = subprocess.run([*run_cmd(out), "workers=1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any(p.name.startswith(".") for p in out.iterdir()), "work/staging folders left behind"

    from egosim.cli import CollectEnvFactory, CollectPolicyFactory
    from egosim.data.collect import CollectConfig

    overrides = dict(a.split("=", 1) for a in extra)
    ref_cfg = CollectConfig(embodiments=["unitree_dex3"], policy="random", keep="all", episodes=total, seed=4,
                            output_dir=str(tmp_path / "ref"), max_steps=int(overrides["max_steps"]),
                            video=overrides.get("video", "true") == "true",
                            image_size=(32, 48), workers=1)
    collect(ref_cfg, CollectEnvFactory(False, False), CollectPolicyFactory("random"), log=None)
    ref_root = tmp_path / "ref" / "unitree_dex3"
    assert validate_dataset(root).episodes == total
    ds, ref_ds = ChunkDataset(root, cameras=()), ChunkDataset(ref_root, cameras=())
    attempts = Counter(ds.episode_meta(e)["egosim/attempt"] for e in range(total))
    assert sorted(attempts) == list(range(total)) and set(attempts.values()) == {1}
    by_attempt = {ref_ds.episode_meta(e)["egosim/attempt"]: e for e in range(total)}
    for e in range(total):
        mine = read_episode(root, e)
        theirs = read_episode(ref_root, by_attempt[ds.episode_meta(e)["egosim/attempt"]])
        assert np.array_equal(mine["action"], theirs["action"])
        assert np.array_equal(mine["observation.state"], theirs["observation.state"])
    log = [json.loads(x) for x in (root / "meta/egosim_attempts.jsonl").read_text().splitlines()]
    assert sorted(a["attempt"] for a in log) == list(range(total))
