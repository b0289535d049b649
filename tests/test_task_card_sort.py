"""card_sort: milestone predicates on hand-built states, and the scripted expert through physics.

Fast (default suite): the rubric's named cases (a card in the wrong holder scores 0.7, not 1.0; a
clean, correct insertion 1.0; a card on the table 0) and more, on states built by setting object
poses; the expert solving evaluation state 0 on each hand. Slow: the expert's success over all 50
evaluation states per hand (>= 80%).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

import egosim.tasks
from egosim.embodiment import embodiment_names
from egosim.rig import TABLE_HEIGHT
from egosim.tasks.card_sort import CARD_H, CARD_T, CardSort
from expert_helpers import failures, play_expert

EMBODIMENTS = list(embodiment_names("robot"))


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("card_sort", "sharpa_wave", obs_mode="state", privileged=True)
    yield e
    e.close()


def _reset(env, state: int = 0) -> CardSort:
    env.reset(seed=0, options={"initial_state": state})
    return env.task


def _score(env) -> tuple[dict[str, bool], float]:
    mujoco.mj_forward(env.model, env.data)
    reached = env.task.milestones(env.model, env.data)
    return reached, env.task.rubric.score(reached)


def _put_card_in_holder(env, k: int, body: str = "card", tilt: float = 0.0) -> None:
    """Stands a card (at rest) in holder k's slot, optionally tilted about the slot's axis."""
    task = env.task
    hp, hr = task.holder_pose(env.data, k)
    q = task._card_q if body == "card" else task._deck_q
    v = task._card_v if body == "card" else task._deck_v
    rot = hr @ np.array([[math.cos(tilt), 0, math.sin(tilt)], [0, 1, 0], [-math.sin(tilt), 0, math.cos(tilt)]])
    bottom = hp + hr @ np.array([0, 0, task.slot_floor_height() + 0.0005])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.ravel())
    env.data.qpos[q : q + 7] = [*(bottom + rot[:, 2] * CARD_H), *quat]
    env.data.qvel[v : v + 6] = 0.0


def _move_holder(env, k: int, dx: np.ndarray, yaw: float = 0.0) -> None:
    q = env.task._holder_q[k]
    env.data.qpos[q : q + 3] += dx
    turn = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, turn, env.data.qpos[q + 3 : q + 7].copy())
    env.data.qpos[q + 3 : q + 7] = out


def _touch_with_index(env, point: np.ndarray) -> None:
    """Moves the right hand (its free joint) so that its index fingertip site lies at `point`."""
    h = env.rig.hands["right"]
    mujoco.mj_forward(env.model, env.data)
    tip = env.data.site_xpos[h.fingertip_sites["index_tip"]].copy()
    env.data.qpos[h.free_qpos : h.free_qpos + 3] += point - tip


def test_card_on_the_table_scores_zero(env) -> None:
    task = _reset(env)
    q = task._card_q
    env.data.qpos[q : q + 7] = [0.35, -0.05, TABLE_HEIGHT + CARD_T, math.cos(math.pi / 4), 0, math.sin(math.pi / 4), 0]
    reached, score = _score(env)
    assert not any(reached.values()) and score == 0.0
    assert not task.is_success(env.model, env.data, reached)


def test_initial_state_scores_zero(env) -> None:
    for i in range(3):
        _reset(env, i)
        reached, score = _score(env)
        assert score == 0.0, reached


def test_card_in_the_wrong_holder_scores_0_7_not_1(env) -> None:
    task = _reset(env)
    wrong = (task.correct_holder + 1) % 3
    _put_card_in_holder(env, wrong)
    reached, score = _score(env)
    assert reached["card_placed"] and not reached["sorted_minor_disturbance"] and not reached["sorted_clean"]
    assert score == pytest.approx(0.7)
    assert not task.is_success(env.model, env.data, reached)


def test_clean_correct_insertion_scores_1(env) -> None:
    task = _reset(env)
    _put_card_in_holder(env, task.correct_holder)
    reached, score = _score(env)
    assert reached["card_placed"] and reached["sorted_minor_disturbance"] and reached["sorted_clean"]
    assert score == 1.0
    assert task.is_success(env.model, env.data, reached)


def test_disturbance_grades_a_correct_insertion(env) -> None:
    """A holder nudged 2 cm: minor (0.9, still a success); pushed 5 cm or turned 30 deg: visible (0.7)."""
    task = _reset(env)
    other = (task.correct_holder + 1) % 3
    _move_holder(env, other, np.array([0.02, 0.0, 0.0]))
    _put_card_in_holder(env, task.correct_holder)
    reached, score = _score(env)
    assert score == pytest.approx(0.9) and task.is_success(env.model, env.data, reached)
    for dx, yaw in ((0.05, 0.0), (0.0, math.radians(30))):
        task = _reset(env)
        _move_holder(env, other, np.array([dx, 0.0, 0.0]), yaw)
        _put_card_in_holder(env, task.correct_holder)
        reached, score = _score(env)
        assert score == pytest.approx(0.7) and not task.is_success(env.model, env.data, reached)


def test_tilted_or_held_card_is_not_placed(env) -> None:
    task = _reset(env)
    _put_card_in_holder(env, task.correct_holder, tilt=math.radians(40))
    reached, _ = _score(env)
    assert not reached["card_placed"]
    # Standing in the slot but still touched by a fingertip: not released, not placed.
    task = _reset(env)
    _put_card_in_holder(env, task.correct_holder)
    mujoco.mj_forward(env.model, env.data)
    card, rot = task.card_pose(env.data)
    _touch_with_index(env, card + rot[:, 0] * (CARD_T + 0.004))
    reached, _ = _score(env)
    assert not reached["card_placed"] and not reached["sorted_clean"]


def test_single_card_picked_scores_0_5_and_two_cards_0_3(env) -> None:
    task = _reset(env)
    card, rot = task.card_pose(env.data)
    q = task._card_q
    env.data.qpos[q + 2] += 0.05
    _touch_with_index(env, card + np.array([0, 0, 0.05]) + rot[:, 0] * (CARD_T + 0.004))
    reached, score = _score(env)
    assert reached["card_picked"] and not reached["several_cards_lifted"] and score == pytest.approx(0.5)

    # Both cards lifted 2 cm at once (the deck card dragged along, as from a pinch across both).
    task = _reset(env)
    card, rot = task.card_pose(env.data)
    deck, _ = task.card_pose(env.data, "deck")
    env.data.qpos[task._card_q + 2] += 0.02
    env.data.qpos[task._deck_q + 2] += 0.02
    env.data.qpos[task._deck_q : task._deck_q + 2] = (card + rot[:, 0] * (2 * CARD_T + 0.0005))[:2]
    _touch_with_index(env, card + np.array([0, 0, 0.02]) - rot[:, 0] * (CARD_T + 0.004))
    reached, score = _score(env)
    assert reached["several_cards_lifted"] and not reached["card_picked"] and score == pytest.approx(0.3)


def test_privileged_layout(env) -> None:
    task = _reset(env, 1)
    p = task.privileged(env.model, env.data)
    assert p.shape == (CardSort.privileged_dim,)
    assert np.argmax(p[-3:]) == task.correct_holder == env.initial_state["holder_colours"].index(
        env.initial_state["card_colour"]
    )
    np.testing.assert_allclose(p[:3], task.card_pose(env.data)[0])


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_sorts_evaluation_state_0(embodiment: str) -> None:
    (rec,) = play_expert("card_sort", embodiment, [0])
    assert rec["success"] and rec["score"] == 1.0, failures([rec])
    assert not rec["sim_unstable"] and not rec["mujoco_warnings"]


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    n = len(CardSort().eval_initial_states())
    assert n == 50
    records = play_expert("card_sort", embodiment, list(range(n)))
    rate = sum(r["success"] for r in records) / n
    print(f"\n{embodiment}: expert success {rate:.0%} over {n} states; failures: {failures(records) or 'none'}")
    assert rate >= 0.8, f"{embodiment}: expert success {rate:.0%} < 80%; {failures(records)}"
    assert not any(r["sim_unstable"] for r in records)
