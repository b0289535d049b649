"""Conformance over every model folder in assets/ (every folder holding *_hand.xml).

Each folder is Menagerie-style: README.md (provenance, deviations), LICENSE, CHANGELOG.md and a
scene.xml that compiles and simulates 1 s of random controls without a MuJoCo warning. Each hand file
declares the embodiment's joints (one position actuator per joint), fingertip sites and the `wrist` and
`palm_center` sites, under a root body named `hand` (what the rig attaches).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from egosim.embodiment import embodiment_names, get_embodiment
from egosim.paths import asset_root

MODEL_DIRS = sorted(p for p in asset_root().iterdir() if p.is_dir() and any(p.glob("*_hand.xml")))
HAND_FILES = [f for d in MODEL_DIRS for f in sorted(d.glob("*_hand.xml"))]
EMB_BY_DIR = {get_embodiment(n).asset_dir: get_embodiment(n) for n in embodiment_names()}


def _id(p: Path) -> str:
    return p.name if p.is_dir() else f"{p.parent.name}/{p.name}"


def test_every_embodiment_has_a_model_folder() -> None:
    assert {d.name for d in MODEL_DIRS} >= set(EMB_BY_DIR), "an embodiment's asset_dir is missing"
    for emb in EMB_BY_DIR.values():
        for side in ("left", "right"):
            assert Path(emb.hand_xml(side)).is_file()


@pytest.mark.parametrize("folder", MODEL_DIRS, ids=_id)
def test_folder_complete(folder: Path) -> None:
    for name in ("README.md", "LICENSE", "CHANGELOG.md", "scene.xml"):
        f = folder / name
        assert f.is_file(), f"{folder.name}/ lacks {name}"
        assert f.stat().st_size > 0, f"{folder.name}/{name} is empty"


@pytest.mark.parametrize("folder", MODEL_DIRS, ids=_id)
def test_scene_simulates_one_second_without_warnings(folder: Path) -> None:
    model = mujoco.MjModel.from_xml_path(str(folder / "scene.xml"))
    data = mujoco.MjData(model)
    assert model.nu > 0, "scene has no actuators"
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    limited = model.actuator_ctrllimited.astype(bool)
    lo, hi = np.where(limited, lo, -1.0), np.where(limited, hi, 1.0)
    per_control = max(1, round(0.05 / model.opt.timestep))  # a new random target every 50 ms
    n = round(1.0 / model.opt.timestep)
    for k in range(n):
        if k % per_control == 0:
            data.ctrl[:] = rng.uniform(lo, hi)
        mujoco.mj_step(model, data)
    assert data.time == pytest.approx(1.0, abs=model.opt.timestep)
    warned = {mujoco.mjtWarning(i).name: int(data.warning[i].number) for i in range(len(data.warning))
              if data.warning[i].number}
    assert not warned, f"MuJoCo warnings: {warned}"
    assert np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()


@pytest.mark.parametrize("hand_file", HAND_FILES, ids=_id)
def test_hand_file_declares_embodiment(hand_file: Path) -> None:
    model = mujoco.MjModel.from_xml_path(str(hand_file))
    name = lambda kind, i: mujoco.mj_id2name(model, kind, i)  # noqa: E731
    joints = [name(mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(model.njnt)]
    sites = {name(mujoco.mjtObj.mjOBJ_SITE, s) for s in range(model.nsite)}
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "hand") >= 0, "no root body named 'hand'"
    assert model.body_parentid[model.body("hand").id] == 0, "'hand' must be a child of the worldbody"
    assert not np.any(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE), "the hand file must not float itself"
    assert {"wrist", "palm_center"} <= sites

    # one actuator per joint, with a joint transmission on that joint
    assert model.nu == model.njnt, f"{model.nu} actuators for {model.njnt} joints"
    assert np.all(model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
    assert sorted(model.actuator_trnid[:, 0].tolist()) == list(range(model.njnt)), "a joint has 0 or 2+ actuators"
    for a in range(model.nu):
        j = model.actuator_trnid[a, 0]
        assert model.actuator_ctrllimited[a] and model.jnt_limited[j], f"joint {joints[j]} or its actuator unlimited"
        np.testing.assert_allclose(model.actuator_ctrlrange[a], model.jnt_range[j], err_msg=joints[j])

    emb = EMB_BY_DIR.get(hand_file.parent.name)
    if emb is None:
        pytest.skip(f"{hand_file.parent.name} is not a registered embodiment; generic checks only")
    assert joints == list(emb.joint_names), "joint names/order differ from the Embodiment record"
    missing = set(emb.fingertip_sites) - sites
    assert not missing, f"fingertip sites missing: {sorted(missing)}"
    assert emb.wrist_site in sites and emb.palm_site in sites
