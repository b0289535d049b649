"""EgoDex import: frame change and joint mapping checked on hand-built files, video fitting, bad files, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from egosim.cli import main
from egosim.data.egodex import (
    ARKIT_TO_WORLD,
    EgoDexFileError,
    ImportConfig,
    fit_image,
    import_egodex,
    read_egodex,
    scaled_intrinsic,
    write_egodex,
)
from egosim.data.loader import ChunkDataset, load_episodes_table, read_episode
from egosim.data.validate import validate_dataset
from egosim.data.video import read_frames
from egosim.embodiment import HUMAN_KEYPOINTS
from egosim.errors import ConfigError, InvalidChoiceError
from egosim.keypoints import KP, synthetic_hands, wrist_frame

# EgoDex's 25 hand joints per side, spelled out (Apple's skeleton_tfs.py), in egosim's keypoint order plus
# the metacarpals, which the import drops.
FINGERS = {"thumb": "Thumb", "index": "IndexFinger", "middle": "MiddleFinger", "ring": "RingFinger",
           "little": "LittleFinger"}
PARTS = {"knuckle": "Knuckle", "intermediate_base": "IntermediateBase", "intermediate_tip": "IntermediateTip",
         "tip": "Tip"}


def _raw_file(path: Path, n: int = 4, confidences: bool = True, drop: str | None = None) -> dict[str, np.ndarray]:
    """An EgoDex file built with h5py alone: every joint at its own ARKit position (so a mix-up shows)."""
    rng = np.random.default_rng(0)
    positions: dict[str, np.ndarray] = {}
    names = []
    for side in ("left", "right"):
        names.append(f"{side}Hand")
        for f, F in FINGERS.items():
            if f != "thumb":
                names.append(f"{side}{F}Metacarpal")
            names += [f"{side}{F}{P}" for P in PARTS.values()]
        names += [f"{side}Shoulder", f"{side}Arm", f"{side}Forearm"]
    names += ["hip", "neck1"]
    with h5py.File(path, "w") as f:
        for name in names:
            if name == drop:
                continue
            tf = np.tile(np.eye(4), (n, 1, 1))
            tf[:, :3, 3] = rng.uniform(-1, 1, (n, 3))
            positions[name] = tf[:, :3, 3].copy()
            f[f"transforms/{name}"] = tf.astype(np.float32)
            if confidences:  # EgoDex has a confidence per joint
                f[f"confidences/{name}"] = rng.uniform(0, 1, n).astype(np.float32)
        cam = np.tile(np.eye(4), (n, 1, 1))
        cam[:, :3, 3] = [0.1, 1.6, 0.2]
        f["transforms/camera"] = cam.astype(np.float32)
        f["camera/intrinsic"] = np.array([[736.6339, 0, 960], [0, 736.6339, 540], [0, 0, 1]], np.float32)
        f.attrs["llm_description"] = "Pick up the red cup."
        f.attrs["llm_description2"] = "Grasp the cup and lift it."
        f.attrs["which_llm_description"] = "2"
        f.attrs["session_name"] = "s1"
    return positions


def test_frame_change_and_joint_mapping(tmp_path: Path) -> None:
    pos = _raw_file(tmp_path / "a.hdf5")
    ep = read_egodex(tmp_path / "a.hdf5")
    # ARKit (x right, y up, z backward) -> world (x forward = -z, y left = -x, z up = y)
    assert np.array_equal(ARKIT_TO_WORLD @ [0.1, 1.2, -0.5], [0.5, -0.1, 1.2])
    for s, side in enumerate(("left", "right")):
        assert np.allclose(ep.keypoints[:, s, KP["wrist"]], pos[f"{side}Hand"] @ ARKIT_TO_WORLD.T, atol=1e-6)
        for f, F in FINGERS.items():
            for p, P in PARTS.items():
                want = pos[f"{side}{F}{P}"] @ ARKIT_TO_WORLD.T
                assert np.allclose(ep.keypoints[:, s, KP[f"{f}_{p}"]], want, atol=1e-6), (side, f, p)
        x = pos[f"{side}Hand"]
        assert np.allclose(ep.wrist_pose[:, s, :3], x @ ARKIT_TO_WORLD.T, atol=1e-6)
    with h5py.File(tmp_path / "a.hdf5") as f:
        assert np.allclose(ep.confidence[:, 1, KP["ring_intermediate_tip"]], f["confidences/rightRingFingerIntermediateTip"][()])
    # camera: ARKit identity = looking along ARKit -z, i.e. world +x (forward), image up = world +z
    assert np.allclose(ep.camera_pose[:, :3], [-0.2, -0.1, 1.6], atol=1e-6)
    from egosim.geometry import quat_to_matrix

    rot = quat_to_matrix(ep.camera_pose[0, 3:])
    assert np.allclose(-rot[:, 2], [1, 0, 0], atol=1e-6) and np.allclose(rot[:, 1], [0, 0, 1], atol=1e-6)
    assert ep.task == "Grasp the cup and lift it." and ep.attrs["session_name"] == "s1"
    _raw_file(tmp_path / "b.hdf5", confidences=False)
    assert np.all(read_egodex(tmp_path / "b.hdf5").confidence == 1.0)


def test_written_synthetic_episode_reads_back_with_a_canonical_wrist(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    kp = synthetic_hands(rng, 12)
    cam = np.tile([0.0, 0.0, 1.5, 0.5, -0.5, 0.5, -0.5], (12, 1))
    write_egodex(tmp_path / "t/0.hdf5", kp, cam)
    ep = read_egodex(tmp_path / "t/0.hdf5")
    assert np.abs(ep.keypoints - kp).max() < 1e-6 and ep.task == "t"
    with h5py.File(tmp_path / "t/0.hdf5") as f:
        assert len([k for k in f["transforms"] if k != "camera"]) == 68
    for s, side in enumerate(("left", "right")):
        pos, rot = wrist_frame(ep.keypoints[:, s], side)
        assert np.allclose(ep.wrist_pose[:, s, :3], pos)
        # z out of the palm: the palm faces down in the synthetic motion
        assert np.all(rot[:, 2, 2] < -0.5)


def test_video_is_fitted_to_the_image_size_and_intrinsics_follow(tmp_path: Path) -> None:
    (h, w), (y0, x0), scale = fit_image((1080, 1920), (240, 320))
    assert (h, w, y0, x0) == (240, 427, 0, 53) and scale == pytest.approx(240 / 1080)
    k = scaled_intrinsic(np.array([[736.6339, 0, 960], [0, 736.6339, 540], [0, 0, 1]]), (1080, 1920), (240, 320))
    assert k[0, 2] == pytest.approx(960 * 427 / 1920 - 53) and k[1, 2] == pytest.approx(120.0)
    n = 6
    ramp = np.tile(np.linspace(0, 255, 128)[None, :, None], (48, 1, 3)).astype(np.uint8)  # brightness = column
    kp = synthetic_hands(np.random.default_rng(0), n)
    write_egodex(tmp_path / "src/t/0.hdf5", kp, np.tile([0, 0, 1.5, 1, 0, 0, 0.0], (n, 1)),
                 video=np.repeat(ramp[None], n, axis=0))
    out = tmp_path / "ds"
    res = import_egodex(tmp_path / "src", ImportConfig(output_dir=str(out), image_size=(32, 32)), log=None)
    assert res["episodes"] == 1 and not res["skipped"]
    frames = read_frames(out / "videos/observation.images.ego_view/chunk-000/file-000.mp4")
    assert frames.shape == (n, 32, 32, 3)
    (sh, sw), (cy, cx), _ = fit_image((48, 128), (32, 32))  # 32 x 85, crop from column 26
    expect = np.linspace(0, 255, 128)[((cx + np.arange(32) + 0.5) * 128 / sw).astype(int)]
    assert np.abs(frames[:, 16, :, 0].mean(axis=0) - expect).mean() < 8.0
    row = load_episodes_table(out)[0]
    assert row["egosim/source"] == "t/0.hdf5" and row["egosim/frames"] == n
    assert np.allclose(json.loads(row["egosim/camera_intrinsic"]), scaled_intrinsic(
        np.array([[736.6339, 0, 960], [0, 736.6339, 540], [0, 0, 1]]), (48, 128), (32, 32)), atol=1e-5)


def test_bad_files_are_reported_and_skipped_the_rest_import_and_resume(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = np.random.default_rng(1)
    n = 8
    cam = np.tile([0, 0, 1.5, 1, 0, 0, 0.0], (n, 1))
    video = rng.integers(0, 255, (n, 24, 32, 3), dtype=np.uint8)
    for k in range(5):
        write_egodex(src / "task_a" / f"{k}.hdf5", synthetic_hands(rng, n), cam, video=video,
                     attrs={"llm_description": f"episode {k}"})
    data = (src / "task_a/1.hdf5").read_bytes()
    (src / "task_a/1.hdf5").write_bytes(data[: len(data) // 2])  # truncated
    with h5py.File(src / "task_a/2.hdf5", "a") as f:
        del f["transforms/rightThumbTip"]  # missing key
    (src / "task_a/3.mp4").write_bytes(b"not a video")  # unreadable video
    out = tmp_path / "ds"
    cfg = ImportConfig(output_dir=str(out), image_size=(16, 24), retarget_to="unitree_dex3")
    res = import_egodex(src, cfg, log=None)
    assert res["files"] == 5 and res["episodes"] == 2 and len(res["skipped"]) == 3
    text = "\n".join(res["skipped"])
    assert "task_a/1.hdf5: unreadable HDF5" in text
    assert "task_a/2.hdf5: missing key 'transforms/rightThumbTip'" in text
    assert "task_a/3.mp4: unreadable video" in text
    s = validate_dataset(out)
    assert (s.episodes, s.tasks, s.action_embodiment) == (2, ["episode 0", "episode 4"], "unitree_dex3")
    ep = read_episode(out, 1)
    assert ep["action"].shape == (n, 32) and ep["observation.human.keypoints"].shape == (n, 2, 21, 3)
    attempts = [json.loads(x) for x in (out / "meta/egosim_attempts.jsonl").read_text().splitlines()]
    assert [a["kept"] for a in attempts] == [True, False, False, False, True]
    meta = ChunkDataset(out, horizon=2, cameras=()).episode_meta(1)
    assert json.loads(meta["egosim/retarget"])["limit_violations"] == 0
    # rerun: the two imported files are not imported again, the bad ones are tried (and skipped) again
    res = import_egodex(src, cfg, log=None)
    assert res["imported"] == 0 and res["episodes"] == 2 and len(res["skipped"]) == 3
    with pytest.raises(EgoDexFileError, match="missing key 'transforms/rightThumbTip'"):
        read_egodex(src / "task_a/2.hdf5")


def test_import_command_and_its_errors(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(2)
    write_egodex(tmp_path / "src/pour/0.hdf5", synthetic_hands(rng, 5), np.tile([0, 0, 1.5, 1, 0, 0, 0.0], (5, 1)))
    out = tmp_path / "ds"
    assert main(["import", "egodex", str(tmp_path / "src"), f"output_dir={out}", "video=false",
                 "retarget_to=sharpa_wave", "retarget.smoothing=0.8"]) == 0
    assert "1 episodes, 5 frames; 0 file(s) skipped" in capsys.readouterr().out
    assert validate_dataset(out).action_embodiment == "sharpa_wave"
    assert main(["import", "egodex", str(tmp_path / "src"), "retarget_to=allegro"]) == 2
    assert "unknown retarget_to 'allegro'; valid choices: none, sharpa_wave, unitree_dex3" in capsys.readouterr().err
    assert main(["import", "egodex", str(tmp_path / "nowhere"), f"output_dir={tmp_path / 'x'}"]) == 2
    assert "neither a folder nor an .hdf5 file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="image_size"):
        ImportConfig.from_mapping({"image_size": [15, 20]})
    with pytest.raises(InvalidChoiceError):
        ImportConfig.from_mapping({"retarget_to": "human"})
    with pytest.raises(ConfigError, match="unknown retarget config keys"):
        ImportConfig.from_mapping({"retarget": {"smooth": 1}})
    (tmp_path / "bad/t").mkdir(parents=True)
    (tmp_path / "bad/t/0.hdf5").write_bytes(b"x")
    cli = [sys.executable, "-m", "egosim.cli", "import", "egodex", str(tmp_path / "bad"), f"output_dir={tmp_path / 'b'}",
           "video=false"]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "t/0.hdf5: unreadable HDF5 file" in proc.stdout
    assert len(HUMAN_KEYPOINTS) == 21


def test_imported_human_data_pretrains_the_vla(tmp_path: Path) -> None:
    """EgoScale's stage I on EgoDex-format data: retargeted actions, no state (the placeholder), ego_view only."""
    import torch

    from egosim.policies.vla.checkpoint import load_checkpoint
    from egosim.policies.vla.train_cli import TrainConfig, run_train

    torch.set_num_threads(1)
    rng = np.random.default_rng(6)
    for k in range(2):
        write_egodex(tmp_path / f"src/t/{k}.hdf5", synthetic_hands(rng, 10), np.tile([0, 0, 1.5, 1, 0, 0, 0.0], (10, 1)),
                     video=rng.integers(0, 255, (10, 24, 32, 3), dtype=np.uint8))
    human = tmp_path / "human"
    import_egodex(tmp_path / "src", ImportConfig(output_dir=str(human), retarget_to="sharpa_wave", image_size=(24, 32)),
                  log=None)
    tiny = dict(image_size=[24, 32], image_channels=[8, 8, 16, 16], image_grid=[2, 2], text_len=16, text_layers=1,
                d_model=32, heads=2, dit_layers=1, future_tokens=2, execute_steps=2)
    cfg = TrainConfig.from_mapping(dict(stage="pretrain", data=[str(human)], steps=2, batch_size=4, horizon=4,
                                        save_every=2, log_every=1, output_dir=str(tmp_path / "run"), device="cpu",
                                        warmup_steps=1, model=tiny))
    result = run_train(cfg, log=False)
    assert result.step == 2 and all(np.isfinite(result.losses))
    stats = load_checkpoint(result.checkpoint).statistics["human"]
    assert stats.state is None and stats.action.min.shape == (62,)
