"""The human dataset format: writer + recorder round trip, schema check, loader items for pretraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from egosim.data.format import DatasetError
from egosim.data.loader import ChunkDataset, collate_batch, dataset_cameras, read_episode
from egosim.data.validate import validate_dataset
from egosim.data.video import read_frames
from egosim.data.writer import DatasetWriter, HumanEpisodeRecorder
from egosim.keypoints import KinematicHand, canonical_wrist_pose, random_hand_trajectory

from dataset_helpers import validator_error

SIZE = (32, 48)
HAND = KinematicHand()


def _frames(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n frames of moving human hands (world frame) with known arrays."""
    ang = random_hand_trajectory(rng, n)
    kp = np.zeros((n, 2, 21, 3))
    for t in range(n):
        kp[t, 0] = HAND.keypoints(ang[t], "left") + [0.3, 0.2, 0.9 + 0.01 * t]
        kp[t, 1] = HAND.keypoints(ang[t], "right") + [0.3, -0.2, 0.9]
    wrist = np.stack([canonical_wrist_pose(kp[:, 0], "left"), canonical_wrist_pose(kp[:, 1], "right")], axis=1)
    conf = rng.uniform(0.0, 1.0, (n, 2, 21))
    cam = np.tile([0.0, 0.0, 1.5, 1.0, 0.0, 0.0, 0.0], (n, 1))
    img = rng.integers(0, 255, (n, *SIZE, 3), dtype=np.uint8)
    return {"kp": kp, "conf": conf, "wrist": wrist, "cam": cam, "img": img}


def _write(root: Path, episodes: list[dict[str, np.ndarray]], action_embodiment: str | None = None,
           dim: int = 32) -> DatasetWriter:
    w = DatasetWriter(root, kind="human", fps=30, image_size=SIZE, action_embodiment=action_embodiment)
    for e, ep in enumerate(episodes):
        rec = w.start_episode(f"e{e}")
        assert isinstance(rec, HumanEpisodeRecorder)
        for t in range(len(ep["kp"])):
            rec.add(ep["kp"][t], ep["conf"][t], ep["wrist"][t], ep["cam"][t], {"ego_view": ep["img"][t]})
        if action_embodiment is not None:
            rec.set_actions(ep["action"])
        w.commit({"source": f"task/{e}.hdf5", "length": len(ep["kp"]), "intrinsic": [[1.0, 0.0], [0.0, 1.0]]},
                 rec, f"pick the {e}")
    w.close()
    return w


@pytest.fixture(scope="module")
def episodes() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    eps = [_frames(rng, 12), _frames(rng, 7)]
    for ep in eps:  # retargeted actions: any per-step actions of the Dex3 layout
        a = rng.normal(0, 0.01, (len(ep["kp"]), 32))
        a[:, 3:9] = a[:, 19:25] = [1, 0, 0, 0, 1, 0]
        ep["action"] = a
    return eps


def test_round_trip_gives_back_the_arrays_and_passes_the_schema_check(episodes, tmp_path: Path) -> None:
    for act in (None, "unitree_dex3"):
        root = tmp_path / str(act)
        _write(root, episodes, act)
        s = validate_dataset(root)
        assert (s.kind, s.robot_type, s.action_embodiment, s.episodes) == ("human", "human", act, 2)
        assert s.video_keys == ["observation.images.ego_view"] and dataset_cameras(root) == ["ego_view"]
        info = json.loads((root / "meta/info.json").read_text())
        feats = info["features"]
        assert feats["observation.human.keypoints"]["shape"] == [2, 21, 3]
        assert feats["observation.human.keypoints"]["names"]["keypoint"][0] == "wrist"
        assert "observation.state" not in feats and ("action" in feats) == (act is not None)
        mod = json.loads((root / "meta/modality.json").read_text())
        assert mod["state"] == {} and mod["egosim"] == {"kind": "human", "action_embodiment": act}
        assert bool(mod["action"]) == (act is not None)
        stats = json.loads((root / "meta/stats.json").read_text())
        assert np.shape(stats["observation.human.keypoints"]["mean"]) == (2, 21, 3)
        for e, ep in enumerate(episodes):
            data = read_episode(root, e)
            assert np.array_equal(data["observation.human.keypoints"], ep["kp"].astype(np.float32))
            assert np.array_equal(data["observation.human.keypoint_confidence"], ep["conf"].astype(np.float32))
            assert np.array_equal(data["observation.human.wrist_pose"], ep["wrist"].astype(np.float32))
            assert np.array_equal(data["observation.human.camera_pose"], ep["cam"].astype(np.float32))
            if act is not None:
                assert data["action"].dtype == np.float64 and np.array_equal(data["action"], ep["action"])
            assert data["next.done"].tolist() == [False] * (len(ep["kp"]) - 1) + [True]
            frames = read_frames(root / f"videos/observation.images.ego_view/chunk-000/file-{e:03d}.mp4")
            assert len(frames) == len(ep["kp"])
        table = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
        row = table.to_pylist()[1]
        assert row["egosim/source"] == "task/1.hdf5" and json.loads(row["egosim/intrinsic"]) == [[1, 0], [0, 1]]
        assert pq.read_table(root / "data/chunk-000/file-000.parquet").schema.field(
            "observation.human.keypoints").type == pa.list_(pa.list_(pa.list_(pa.float32(), 3), 21), 2)


def test_validator_names_what_is_broken_in_a_human_dataset(episodes, tmp_path: Path) -> None:
    root = tmp_path / "ok"
    _write(root, episodes, "unitree_dex3")

    def broken(edit) -> str:
        return validator_error(root, tmp_path, edit)

    def edit_json(rel: str, change) -> object:
        def edit(p: Path) -> None:
            d = json.loads((p / rel).read_text())
            change(d)
            (p / rel).write_text(json.dumps(d))
        return edit

    def scale_column(key: str, factor: float):
        def edit(p: Path) -> None:
            path = p / "data/chunk-000/file-000.parquet"
            t = pq.read_table(path)
            col = t.column(key).combine_chunks()
            flat = col.flatten().flatten() if key.endswith("confidence") else col.flatten()
            values = pa.array(flat.to_numpy() * factor, pa.float32())
            inner = pa.FixedSizeListArray.from_arrays(values, col.type.value_type.list_size if
                                                      key.endswith("confidence") else col.type.list_size)
            new = pa.FixedSizeListArray.from_arrays(inner, col.type.list_size) if key.endswith("confidence") else inner
            pq.write_table(t.set_column(t.column_names.index(key), key, new), path)
        return edit

    assert "keypoint_confidence outside [0, 1]" in broken(scale_column("observation.human.keypoint_confidence", 3.0))
    assert "not unit length" in broken(scale_column("observation.human.camera_pose", 2.0))
    assert "has state slices" in broken(edit_json("meta/modality.json", lambda m: m.update(
        state={"x": {"start": 0, "end": 1}})))
    assert "egosim.action_embodiment is None" in broken(edit_json(
        "meta/modality.json", lambda m: m["egosim"].update(action_embodiment=None)))
    assert "the env's slices" in broken(edit_json(  # actions claimed for the 22-DoF hand: 62 != 32
        "meta/modality.json", lambda m: m["egosim"].update(action_embodiment="sharpa_wave")))
    assert "the human format says float32 [2, 21, 3]" in broken(edit_json(
        "meta/info.json", lambda i: i["features"]["observation.human.keypoints"].update(shape=[2, 20, 3])))


def test_loader_serves_human_frames_with_a_state_placeholder(episodes, tmp_path: Path) -> None:
    root = tmp_path / "dex3"
    _write(root, episodes, "unitree_dex3")
    ds = ChunkDataset(root, horizon=4)
    assert (ds.kind, ds.embodiment, ds.action_embodiment, len(ds)) == ("human", "human", "unitree_dex3", 19)
    item = ds[13]  # episode 1, frame 1
    assert item["observation.state"].shape == (0,) and item["has_state"] is False
    assert item["episode_index"] == 1 and item["frame_index"] == 1 and item["embodiment"] == "human"
    assert torch.equal(item["observation.human.keypoints"], torch.from_numpy(episodes[1]["kp"][1].astype(np.float32)))
    assert item["action"].shape == (4, 32) and item["observation.images.ego_view"].shape == (3, *SIZE)
    robot = {"observation.state": torch.ones(32), "action": torch.zeros(4, 32), "action_is_pad": torch.zeros(4, dtype=bool),
             "task": "t", "embodiment": "unitree_dex3", "observation.images.ego_view": torch.ones(3, *SIZE, dtype=torch.uint8),
             "observation.images.left_wrist_view": torch.ones(3, *SIZE, dtype=torch.uint8)}
    batch = collate_batch([item, robot], max_state_dim=62, max_action_dim=62)
    assert batch["has_state"].tolist() == [False, True] and batch["state"][0].abs().sum() == 0
    assert batch["camera_mask"]["left_wrist_view"].tolist() == [False, True]
    assert batch["camera_mask"]["ego_view"].tolist() == [True, True]
    assert batch["images"]["left_wrist_view"][0].sum() == 0
    _write(tmp_path / "plain", episodes[:1])
    with pytest.raises(DatasetError, match="no actions .*retarget_to="):
        ChunkDataset(tmp_path / "plain")


def test_recorder_and_writer_reject_bad_frames(episodes, tmp_path: Path) -> None:
    ep = episodes[0]
    w = DatasetWriter(tmp_path / "d", kind="human", fps=30, image_size=None, action_embodiment="unitree_dex3")
    rec = w.start_episode()
    with pytest.raises(DatasetError, match="keypoints has shape"):
        rec.add(ep["kp"][0, :, :20], None, ep["wrist"][0], ep["cam"][0])
    with pytest.raises(DatasetError, match="confidence outside"):
        rec.add(ep["kp"][0], ep["conf"][0] + 1.0, ep["wrist"][0], ep["cam"][0])
    rec.add(ep["kp"][0], None, ep["wrist"][0], ep["cam"][0])
    assert np.all(rec.column("observation.human.keypoint_confidence") == 1.0)
    with pytest.raises(DatasetError, match="retarget it first"):
        w.commit({"source": "a"}, rec, "task")
    with pytest.raises(DatasetError, match="for an episode of 1 frames"):
        rec.set_actions(np.zeros((2, 32)))
    rec.set_actions(ep["action"][:1])
    assert w.commit({"source": "a"}, rec, "task") == 0
    rec = w.start_episode()
    rec.add(ep["kp"][0], None, ep["wrist"][0], ep["cam"][0])
    rec.set_actions(ep["action"][:1])
    with pytest.raises(DatasetError, match="same attempt keys"):
        w.commit({"source": 3}, rec, "task")
    with pytest.raises(DatasetError, match="other features"):  # a resume never mixes two layouts
        DatasetWriter(tmp_path / "d", kind="human", fps=30, image_size=None, action_embodiment="sharpa_wave")
    with pytest.raises(DatasetError, match="valid choices: robot, human"):
        DatasetWriter(tmp_path / "e", kind="cat", fps=30, image_size=None)
