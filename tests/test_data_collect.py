"""Demo collection into LeRobot v3.0 datasets: round trip, replay, schema check, loader, resume, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
from egosim.actions import chunk_to_step_actions, side_slices
from egosim.data.collect import CollectConfig, collect
from egosim.data.format import DatasetError
from egosim.data.loader import ChunkDataset, collate_batch, read_episode
from egosim.data.validate import validate_dataset
from egosim.data.video import read_frames
from egosim.errors import ConfigError, InvalidChoiceError
from egosim.policies import get_policy_kind, make_policy
from egosim.rig import RigConfig
from egosim.tasks import make_env

from dataset_helpers import validator_error

SIZE = (64, 80)
EMB = "unitree_dex3"


class Tape(gym.Wrapper):
    """Records what the collector fed the env: observed states and images before each step, actions."""

    def __init__(self, env: gym.Env, tapes: list[dict[str, list]]) -> None:
        super().__init__(env)
        self.tapes = tapes

    def reset(self, **kw: Any):
        obs, info = self.env.reset(**kw)
        self.tapes.append({"state": [], "action": [], "ego": []})
        self._obs = obs
        return obs, info

    def step(self, action):
        tape = self.tapes[-1]
        tape["state"].append(self._obs["state"].copy())
        tape["action"].append(np.array(action, dtype=np.float64))
        if "ego_view" in self._obs:
            tape["ego"].append(self._obs["ego_view"].copy())
        out = self.env.step(action)
        self._obs = out[0]
        return out


def factories(policy: str, tapes: list | None = None):
    kind = get_policy_kind(policy)

    def env_factory(task: str, emb: str, video: bool, image_size: tuple[int, int]):
        env = make_env(task, emb, obs_mode="rgb" if video else "state", privileged=kind.needs_privileged,
                       rig_config=RigConfig(image_size=tuple(image_size)))
        return Tape(env, tapes) if tapes is not None else env

    return env_factory, lambda env, seed: make_policy(policy, env, seed=seed)


@pytest.fixture(scope="module")
def expert_ds(tmp_path_factory) -> tuple[Path, list[dict[str, list]]]:
    out = tmp_path_factory.mktemp("expert")
    tapes: list[dict[str, list]] = []
    cfg = CollectConfig(embodiments=[EMB], episodes=3, seed=5, output_dir=str(out), keep="all", image_size=SIZE)
    collect(cfg, *factories("expert", tapes), log=None)
    return out / EMB, tapes


def test_dataset_passes_the_schema_check_against_the_env_spaces(expert_ds) -> None:
    root, _ = expert_ds
    env = make_env("pen_in_bin", EMB, obs_mode="state")
    s = validate_dataset(root, state_dim=env.observation_space["state"].shape[0],
                         action_dim=env.action_space.shape[0], slices=side_slices(env.embodiment.dof))
    assert s.episodes == 3 and s.frames == sum(s.lengths) and len(s.video_keys) == 3
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == EMB and info["fps"] == 20
    assert info["features"]["observation.images.ego_view"]["shape"] == [*SIZE, 3]
    modality = json.loads((root / "meta/modality.json").read_text())
    assert modality["action"]["right_hand_joints"] == {"start": 25, "end": 32, "absolute": True}
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert stats["action"]["count"] == [s.frames] and np.shape(stats["observation.images.ego_view"]["mean"]) == (3, 1, 1)
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.schema.pandas_metadata["index_columns"] == ["task"]  # pandas reads it as LeRobot writes it


def test_loading_gives_back_exactly_what_was_written(expert_ds) -> None:
    root, tapes = expert_ds
    for ep, tape in enumerate(tapes):
        data = read_episode(root, ep)
        assert np.array_equal(data["observation.state"], np.stack(tape["state"]))
        assert data["action"].dtype == np.float64 and np.array_equal(data["action"], np.stack(tape["action"]))
        assert data["next.done"][-1] and not data["next.done"][:-1].any()
        frames = read_frames(root / f"videos/observation.images.ego_view/chunk-000/file-{ep:03d}.mp4")
        assert len(frames) == len(tape["ego"])  # H.264 is lossy: close, not equal
        assert np.abs(frames.astype(int) - np.stack(tape["ego"]).astype(int)).mean() < 6.0


def test_replaying_recorded_actions_reproduces_each_episode(expert_ds) -> None:
    root, _ = expert_ds
    ds = ChunkDataset(root, horizon=4, cameras=())
    env = make_env("pen_in_bin", EMB, obs_mode="state")
    for ep in range(len(ds.episodes)):
        meta = ds.episode_meta(ep)
        data = read_episode(root, ep)
        obs, _ = env.reset(seed=meta["egosim/seed"], options={"initial_state": meta["egosim/initial_state"]})
        states = []
        for a in data["action"]:
            states.append(obs["state"])
            obs, _, terminated, truncated, info = env.step(a)
        assert np.array_equal(np.stack(states), data["observation.state"])
        assert info["is_success"] == meta["egosim/success"] and info["score"] == meta["egosim/score"]
    assert any(ds.episode_meta(e)["egosim/success"] for e in range(3))


def test_loader_windows_pad_past_the_end_and_use_chunk_relative_wrists(expert_ds) -> None:
    root, _ = expert_ds
    ds = ChunkDataset(root, horizon=6)
    last = int(ds.episodes[0]["dataset_to_index"]) - 1
    item = ds[last - 1]
    assert item["action_is_pad"].tolist() == [False, False, True, True, True, True]
    assert item["observation.images.ego_view"].shape == (3, *SIZE)
    frames = read_frames(root / "videos/observation.images.right_wrist_view/chunk-000/file-001.mp4")
    start = int(ds.episodes[1]["dataset_from_index"])
    for f in (0, 1, 2, 37, len(frames) - 1):  # single-frame seeks give exactly the decoded stream's frames
        assert np.array_equal(ds[start + f]["observation.images.right_wrist_view"].numpy().transpose(1, 2, 0), frames[f])
    chunk, mask = ds.action_chunk(last - 1)
    steps = chunk_to_step_actions(chunk, ds.hand_dof)  # back to per-step actions
    data = read_episode(root, 0)
    assert np.allclose(steps[:2], data["action"][-2:], atol=1e-9)
    assert np.allclose(steps[2:, 9:16], data["action"][-1, 9:16])  # hand targets held
    assert np.allclose(steps[2:, 0:3], 0.0)  # wrist holds still
    batch = collate_batch([ds[0], ds[last - 1]], max_state_dim=62, max_action_dim=62)
    assert batch["embodiment"] == [EMB, EMB] and batch["images"]["ego_view"].shape == (2, 3, *SIZE)
    assert batch["state"].shape == (2, 62) and batch["action"].shape == (2, 6, 62)
    assert batch["action_mask"][1, :, :32].tolist() == [[True] * 32] * 2 + [[False] * 32] * 4
    assert not batch["action_mask"][:, :, 32:].any() and (batch["state"][:, 32:] == 0).all()
    flat = ChunkDataset(root, horizon=3, cameras=(), relative_chunks=False)
    assert np.allclose(flat[0]["action"].numpy(), data["action"][:3].astype(np.float32))
    assert len(flat) == sum(r["length"] for r in flat.episodes)


def test_validator_names_what_is_broken(expert_ds, tmp_path: Path) -> None:
    root, _ = expert_ds

    def broken(edit) -> str:
        return validator_error(root, tmp_path, edit)

    def set_info(key, value):
        def edit(p: Path) -> None:
            info = json.loads((p / "meta/info.json").read_text())
            info[key] = value
            (p / "meta/info.json").write_text(json.dumps(info))
        return edit

    assert "total_frames" in broken(set_info("total_frames", 5))
    assert "is missing" in broken(lambda p: (p / "videos/observation.images.left_wrist_view/chunk-000/file-001.mp4").unlink())
    assert "belongs to no episode" in broken(
        lambda p: shutil.copy(p / "data/chunk-000/file-000.parquet", p / "data/chunk-000/file-009.parquet"))
    assert "frames" in broken(lambda p: shutil.copy(p / "videos/observation.images.ego_view/chunk-000/file-000.mp4",
                                                    p / "videos/observation.images.ego_view/chunk-000/file-001.mp4"))

    def bad_modality(p: Path) -> None:
        m = json.loads((p / "meta/modality.json").read_text())
        m["action"]["left_hand_joints"]["end"] = 17
        (p / "meta/modality.json").write_text(json.dumps(m))

    assert "modality.json" in broken(bad_modality)
    assert "stats.json" in broken(lambda p: (p / "meta/stats.json").write_text("{}"))
    assert "timestamps are not frame_index / fps" in broken(set_info("fps", 30))


def test_keep_success_keeps_only_successes_and_resume_replays_nothing(tmp_path: Path) -> None:
    cfg = CollectConfig(embodiments=[EMB], policy="random", episodes=1, max_attempts=2, max_steps=10,
                        output_dir=str(tmp_path), video=False)
    collect(cfg, *factories("random"), log=None)
    root = tmp_path / EMB
    assert validate_dataset(root).episodes == 0
    attempts = (root / "meta/egosim_attempts.jsonl").read_text().splitlines()
    assert [json.loads(a)["kept"] for a in attempts] == [False, False]
    tapes: list = []
    collect(cfg, *factories("random", tapes), log=None)
    assert tapes == []  # both attempts were recorded, none is replayed


def test_resume_appends_and_leaves_earlier_episodes_alone(tmp_path: Path) -> None:
    base = dict(embodiments=[EMB], policy="random", seed=2, max_steps=12, output_dir=str(tmp_path), keep="all",
                image_size=(32, 48))
    collect(CollectConfig(**base, episodes=2), *factories("random"), log=None)
    root = tmp_path / EMB
    before = read_episode(root, 1)
    tapes: list = []
    collect(CollectConfig(**base, episodes=3), *factories("random", tapes), log=None)
    assert len(tapes) == 1 and validate_dataset(root).episodes == 3
    assert np.array_equal(read_episode(root, 1)["action"], before["action"])
    with pytest.raises(DatasetError, match="other features"):  # another image size never mixes in
        collect(CollectConfig(**{**base, "image_size": (48, 64)}, episodes=4), *factories("random"), log=None)


def test_one_and_two_workers_write_the_same_dataset(tmp_path: Path) -> None:
    from egosim.cli import CollectEnvFactory, CollectPolicyFactory

    base = dict(embodiments=[EMB], policy="random", seed=3, max_steps=15, keep="all", episodes=4, image_size=(32, 48))
    for w in (1, 2):
        collect(CollectConfig(**base, workers=w, output_dir=str(tmp_path / f"w{w}")), CollectEnvFactory(False, False),
                CollectPolicyFactory("random"), log=None)
    a, b = tmp_path / "w1" / EMB, tmp_path / "w2" / EMB
    assert validate_dataset(b).episodes == 4
    for e in range(4):
        assert all(np.array_equal(x, y) for x, y in zip(read_episode(a, e).values(), read_episode(b, e).values()))
    assert (a / "meta/stats.json").read_text() == (b / "meta/stats.json").read_text()


def test_validator_command_and_collect_benchmark_run(expert_ds, tmp_path: Path) -> None:
    root, _ = expert_ds
    out = subprocess.run([sys.executable, "-m", "egosim.data.validate", str(root), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and f"ok {root}: unitree_dex3, 3 episodes" in out.stdout and "INVALID" in out.stdout
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "collect.py"
    out = subprocess.run([sys.executable, str(script), "--embodiments", EMB, "--policy", "random", "--episodes", "2",
                          "--max-steps", "5", "--workers", "1", "--image-size", "32", "48", "--human-hours", "0.0005",
                          "--human-embodiment", EMB, "--json", str(tmp_path / "b.json")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "b.json").read_text())
    rows, human = doc["rows"], doc["human_rows"]
    assert {(r["video"], r["episodes"]) for r in rows} == {(False, 2), (True, 2)}
    assert all(r["episodes_per_hour"] > 0 for r in rows)
    # The human half: procedural play, exactly the hours asked (54 frames at 30 fps), with and without video.
    assert {r["video"] for r in human} == {False, True} and all(r["frames"] == 54 for r in human)
    assert all(r["data_hours_per_wall_hour"] > 0 for r in human) and "data h/wall h" in out.stdout


def test_bad_settings_name_the_value_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(InvalidChoiceError, match="keep 'some'.*all, success"):
        CollectConfig.from_mapping({"keep": "some"})
    with pytest.raises(ConfigError, match="image_size"):
        CollectConfig.from_mapping({"image_size": [63, 80]})
    with pytest.raises(ConfigError, match="unknown collect config keys"):
        CollectConfig.from_mapping({"episode": 3})
    with pytest.raises(DatasetError, match="not a dataset"):
        validate_dataset(tmp_path)
    cli = [sys.executable, "-m", "egosim.cli", "collect"]
    out = subprocess.run([*cli, "embodiments=[no_hand]", f"output_dir={tmp_path}"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "unknown embodiment 'no_hand'" in out.stderr and "unitree_dex3" in out.stderr
    out = subprocess.run([*cli, "videos=false"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "videos" in out.stderr and "video" in out.stderr.split("valid keys")[1]


@pytest.mark.slow
@pytest.mark.parametrize("emb", ["sharpa_wave", "unitree_dex3"])
def test_expert_demos_replay_to_the_same_success_on_each_hand(tmp_path: Path, emb: str) -> None:
    """keep=success on both hands: every kept episode is a success, and replaying its actions from its
    recorded initial state succeeds again, step for step."""
    cfg = CollectConfig(embodiments=[emb], episodes=5, seed=11, output_dir=str(tmp_path), video=False)
    collect(cfg, *factories("expert"), log=None)
    root = tmp_path / emb
    ds = ChunkDataset(root, horizon=1, cameras=())
    assert validate_dataset(root).episodes == 5
    env = make_env("pen_in_bin", emb, obs_mode="state")
    for e in range(5):
        meta, data = ds.episode_meta(e), read_episode(root, e)
        assert meta["egosim/success"]
        obs, _ = env.reset(seed=meta["egosim/seed"], options={"initial_state": meta["egosim/initial_state"]})
        for k, a in enumerate(data["action"]):
            assert np.array_equal(obs["state"], data["observation.state"][k])
            obs, _, terminated, truncated, info = env.step(a)
        assert info["is_success"] and terminated
