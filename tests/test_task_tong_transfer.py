"""tong_transfer: milestone predicates on hand-built states, and the scripted expert.

Predicate tests set object poses (qpos), run `mj_forward` and read `task.milestones`, so they test
the predicates on real contacts without running an episode.
"""

from __future__ import annotations

import egosim.tasks
import mujoco
import numpy as np
import pytest

from egosim.embodiment import embodiment_names
from egosim.rig import TABLE_HEIGHT
from egosim.tasks.tong_transfer import BASKET_FLOOR, FRUITS, TongTransfer, hinge_close_limit
from expert_helpers import failures, play_expert

EMBODIMENTS = list(embodiment_names("robot"))


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("tong_transfer", "sharpa_wave", obs_mode="state", privileged=True)
    yield e
    e.close()


def _reset(env, state: int = 0):
    env.reset(options={"initial_state": state})
    return env.task, env.model, env.data


def _set_free(data, qadr: int, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
    data.qpos[qadr : qadr + 7] = [*pos, *quat]


def _hold_fruit_in_tongs(task, model, data) -> None:
    """Tongs lifted 12 cm, closed on the fruit, the fruit between the pads."""
    tp, _ = task.tongs_pose(data)
    quat = data.qpos[task._tg_q + 3 : task._tg_q + 7].copy()
    _set_free(data, task._tg_q, [tp[0], tp[1], TABLE_HEIGHT + 0.12], quat)
    data.qpos[task._hinge_q] = hinge_close_limit()
    mujoco.mj_forward(model, data)
    _set_free(data, task._fr_q, task.pads_center(data))
    mujoco.mj_forward(model, data)


def _lift_tongs_in_hand(env) -> None:
    """Tongs lifted 5 cm with the right index fingertip pressed into an arm: held and lifted."""
    task, model, data = env.task, env.model, env.data
    hand = env.rig.hands["right"]
    data.qpos[task._tg_q + 2] = TABLE_HEIGHT + 0.05
    mujoco.mj_forward(model, data)
    arm = data.geom_xpos[model.geom("tongs_arm_a").id].copy()
    tip = data.site_xpos[hand.fingertip_sites["index_tip"]] - data.qpos[hand.free_qpos : hand.free_qpos + 3]
    data.qpos[hand.free_qpos : hand.free_qpos + 3] = arm - tip
    mujoco.mj_forward(model, data)


def _hand_home(env) -> None:
    hand = env.rig.hands["right"]
    env.data.qpos[hand.free_qpos : hand.free_qpos + 3] = env.embodiment.home_wrist_pos["right"]


def test_initial_state_reaches_no_milestone(env) -> None:
    """The tongs lying on the table at the start are not "back on the table": nothing scores."""
    task, model, data = _reset(env)
    assert task.milestones(model, data) == {
        "tongs_grasped": False, "fruit_picked": False, "fruit_in_basket": False, "tongs_on_table": False,
    }


def test_tongs_grasped_then_back_on_table(env) -> None:
    task, model, data = _reset(env)
    start = data.qpos[task._tg_q : task._tg_q + 7].copy()
    _lift_tongs_in_hand(env)
    ms = task.milestones(model, data)
    assert ms["tongs_grasped"] and not ms["tongs_on_table"]
    data.qpos[task._tg_q : task._tg_q + 7] = start  # put back where they lay, hand away
    _hand_home(env)
    mujoco.mj_forward(model, data)
    ms = task.milestones(model, data)
    assert ms["tongs_on_table"] and not ms["tongs_grasped"]


def test_fruit_between_the_tong_pads_counts_as_picked(env) -> None:
    task, model, data = _reset(env)
    _hold_fruit_in_tongs(task, model, data)
    ms = task.milestones(model, data)
    assert ms["fruit_picked"] and not ms["tongs_on_table"]


def test_fruit_held_in_the_hand_is_not_picked(env) -> None:
    """A fruit lifted in the hand (touching a fingertip, not the tongs) does not count."""
    task, model, data = _reset(env)
    hand = env.rig.hands["right"]
    tip = data.site_xpos[hand.fingertip_sites["index_tip"]].copy()
    _set_free(data, task._fr_q, tip + [0.0, 0.0, -0.02])
    mujoco.mj_forward(model, data)
    hand_bodies = set().union(*(h.bodies for h in env.rig.hands.values()))
    pairs = {tuple(int(model.geom_bodyid[g]) for g in c.geom) for c in data.contact[: data.ncon]}
    assert any(task._fruit_body in p and (set(p) & hand_bodies) for p in pairs)  # really in the hand
    assert data.xpos[task._fruit_body][2] > TABLE_HEIGHT + 0.1
    assert not task.milestones(model, data)["fruit_picked"]


def test_fruit_in_tongs_and_touching_a_hand_is_not_picked(env) -> None:
    """Held by the tongs but also touched by a hand: the hand may be carrying it, so no."""
    task, model, data = _reset(env)
    _hold_fruit_in_tongs(task, model, data)
    assert task.milestones(model, data)["fruit_picked"]
    hand = env.rig.hands["right"]
    fruit = data.xpos[task._fruit_body].copy()
    tip = data.site_xpos[hand.fingertip_sites["index_tip"]] - data.qpos[hand.free_qpos : hand.free_qpos + 3]
    data.qpos[hand.free_qpos : hand.free_qpos + 3] = fruit + [0.0, 0.0, 0.015] - tip
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["fruit_picked"]


@pytest.mark.parametrize("fruit", FRUITS)
def test_fruit_at_rest_in_the_basket(env, fruit: str) -> None:
    state = {**env.task.eval_initial_states()[0], "fruit": fruit}
    env.reset(options={"initial_state": state})
    task, model, data = env.task, env.model, env.data
    bx, by = task.basket_xy
    _set_free(data, task._fr_q, [bx + 0.02, by - 0.03, TABLE_HEIGHT + BASKET_FLOOR + task.fruit_half_h])
    mujoco.mj_forward(model, data)
    assert task.milestones(model, data)["fruit_in_basket"]
    data.qvel[task._fr_v] = 0.3  # still moving: not at rest
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["fruit_in_basket"]
    data.qvel[task._fr_v] = 0.0
    _set_free(data, task._fr_q, [bx + 0.2, by, TABLE_HEIGHT + task.fruit_half_h])  # beside the basket
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["fruit_in_basket"]


def test_fruit_held_by_the_tongs_over_the_basket_is_not_in_it(env) -> None:
    task, model, data = _reset(env)
    bx, by = task.basket_xy
    tp, _ = task.tongs_pose(data)
    _hold_fruit_in_tongs(task, model, data)
    shift = np.array([bx, by, TABLE_HEIGHT + 0.04]) - task.pads_center(data)
    data.qpos[task._tg_q : task._tg_q + 3] += shift
    data.qpos[task._fr_q : task._fr_q + 3] += shift
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["fruit_in_basket"]


def test_tongs_on_table(env) -> None:
    task, model, data = _reset(env)
    task.tongs_were_lifted = True  # as after a grasp (see test_tongs_grasped_then_back_on_table)
    assert task.milestones(model, data)["tongs_on_table"]
    data.qvel[task._tg_v + 1] = 0.2  # sliding: not at rest
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["tongs_on_table"]
    data.qvel[task._tg_v + 1] = 0.0
    # Lying across the basket: touching it, its centre over the basket.
    bx, by = task.basket_xy
    data.qpos[task._tg_q : task._tg_q + 3] = [bx, by - 0.1, TABLE_HEIGHT + 0.062]
    mujoco.mj_forward(model, data)
    assert not task.milestones(model, data)["tongs_on_table"]


def test_rubric_sums_to_one() -> None:
    r = TongTransfer.rubric
    assert r.mode == "additive"
    assert r.score({"tongs_grasped": True}) == pytest.approx(0.4)
    assert r.score({"tongs_grasped": True, "fruit_picked": True}) == pytest.approx(0.6)
    assert r.score({"fruit_in_basket": True, "tongs_on_table": True}) == pytest.approx(0.4)
    assert r.score(dict.fromkeys(r.names, True)) == pytest.approx(1.0)


def test_eval_states_alternate_lemon_and_plum() -> None:
    states = TongTransfer().eval_initial_states()
    assert len(states) == 50
    assert [s["fruit"] for s in states[:4]] == ["lemon", "plum", "lemon", "plum"]


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_solves_an_evaluation_state(embodiment: str) -> None:
    records = play_expert("tong_transfer", embodiment, [0])
    assert not any(r["sim_unstable"] or r["mujoco_warnings"] for r in records)
    assert all(r["success"] for r in records), failures(records)


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    records = play_expert("tong_transfer", embodiment, list(range(50)))
    rate = sum(r["success"] for r in records) / 50
    print(f"\n{embodiment}: expert success {rate:.0%}; failures: {failures(records) or 'none'}")
    assert rate >= 0.8, f"{embodiment}: expert success {rate:.0%} < 80%; {failures(records)}"
    assert not any(r["sim_unstable"] for r in records)
