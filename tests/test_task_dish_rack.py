"""dish_rack: milestone predicates on hand-built states, and the scripted expert through physics.

Predicates (default suite): a plate standing in a rack slot counts as in the rack, one lying flat in
the rack does not, nor one standing outside the rack or lifted without a hand. Expert (default
suite, one episode per hand): pick and handover of plate 0 and a full solve of evaluation state 0;
slow: >= 80% over all 50 states.
"""

from __future__ import annotations

import math

import egosim.tasks
import mujoco
import numpy as np
import pytest
from egosim.tasks.dish_rack import N_PLATES, PLATE_R, RIM_Z, DishRack

from egosim.embodiment import embodiment_names
from expert_helpers import failures, play_expert

EMBODIMENTS = list(embodiment_names("robot"))
_UPRIGHT_QUAT = [math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]  # face normal along +x


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("dish_rack", "sharpa_wave", obs_mode="state", privileged=True)
    yield e
    e.close()


def _place(env, i: int, pos, quat) -> None:
    task: DishRack = env.task
    q = task._q[i]
    env.data.qpos[q : q + 7] = [*pos, *quat]
    env.data.qvel[task._v[i] : task._v[i] + 6] = 0.0


def _standing_in_slot(env, i: int, k: int) -> None:
    """Plate i upright in slot k: the edge circle's centre above the slot, its lowest point 3 mm up."""
    slot = env.task.slot_center(k)
    _place(env, i, slot + np.array([-RIM_Z, 0.0, PLATE_R + 0.003]), _UPRIGHT_QUAT)


def _settle(env, seconds: float = 1.0) -> dict[str, bool]:
    for _ in range(int(seconds / env.model.opt.timestep)):
        mujoco.mj_step(env.model, env.data)
    return env.task.milestones(env.model, env.data)


def test_rubric_is_egoscales_per_plate_table() -> None:
    rubric = DishRack.rubric
    assert rubric.mode == "additive"
    assert len(rubric.milestones) == 3 * N_PLATES
    assert all(m.points == 0.11 for m in rubric.milestones)
    assert rubric.score({n: True for n in rubric.names}) == pytest.approx(0.99)
    assert rubric.names[:3] == ("plate0_picked", "plate0_transferred", "plate0_in_rack")


def test_plate_standing_in_a_slot_is_in_the_rack(env) -> None:
    env.reset(options={"initial_state": 0})
    for k in range(N_PLATES):
        _standing_in_slot(env, k, k)
    now = _settle(env, 1.5)
    for i in range(N_PLATES):
        assert now[f"plate{i}_in_rack"], f"plate {i}: {now}"
        assert not now[f"plate{i}_picked"]
    assert all(env.task.in_rack)


def test_plate_lying_flat_in_the_rack_is_not_upright(env) -> None:
    env.reset(options={"initial_state": 0})
    # Flat, with its lowest point inside slot 1 (below the pegs' tops): not upright, so not in the rack.
    slot = env.task.slot_center(1)
    _place(env, 0, slot + np.array([0.0, 0.0, 0.01]), [1.0, 0.0, 0.0, 0.0])
    mujoco.mj_forward(env.model, env.data)
    assert not env.task.milestones(env.model, env.data)["plate0_in_rack"]
    # Dropped flat onto the rack it comes to rest on the pegs: still not in the rack.
    _place(env, 0, slot + np.array([0.0, 0.0, 0.08]), [1.0, 0.0, 0.0, 0.0])
    now = _settle(env, 1.5)
    assert not now["plate0_in_rack"]


def test_plate_standing_outside_a_slot_is_not_in_the_rack(env) -> None:
    env.reset(options={"initial_state": 0})
    slot = env.task.slot_center(1)
    # Upright but between two slots (on a peg row), and upright in the air on the table's left half.
    _place(env, 0, slot + np.array([-RIM_Z + 0.035, 0.0, PLATE_R + 0.003]), _UPRIGHT_QUAT)
    _place(env, 1, np.array([0.62, 0.4, 0.85]), _UPRIGHT_QUAT)
    mujoco.mj_forward(env.model, env.data)
    now = env.task.milestones(env.model, env.data)
    assert not now["plate0_in_rack"] and not now["plate1_in_rack"]
    # Lifted in the air without a hand: not picked.
    assert not now["plate1_picked"] and not now["plate1_transferred"]


def test_fresh_episode_reaches_nothing(env) -> None:
    _, info = env.reset(options={"initial_state": 3})
    assert not any(info["milestones"].values()) and info["score"] == 0.0
    assert env.task.left_had == [False] * N_PLATES
    assert env.task.privileged(env.model, env.data).shape == (DishRack.privileged_dim,)


_STATE0: dict[str, dict] = {}


def _state0(embodiment: str) -> dict:
    """The expert's episode on evaluation state 0, played once per hand for the tests below."""
    if embodiment not in _STATE0:
        _STATE0[embodiment] = play_expert("dish_rack", embodiment, [0])[0]
    return _STATE0[embodiment]


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_picks_and_hands_over_a_plate(embodiment: str) -> None:
    """What the expert does on both hands (evaluation state 0): the left hand picks plate 0 up and
    hands it to the right hand (both milestones need real hand contact and lift)."""
    r = _state0(embodiment)
    assert r["milestones"]["plate0_picked"] and r["milestones"]["plate0_transferred"], failures([r])
    assert not (r["sim_unstable"] or r["mujoco_warnings"])


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_solves_an_evaluation_state(embodiment: str) -> None:
    """End to end on evaluation state 0: all three plates upright in the rack at one instant."""
    r = _state0(embodiment)
    assert r["success"], failures([r])


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    n = len(DishRack().eval_initial_states())
    assert n == 50
    records = play_expert("dish_rack", embodiment, list(range(n)))
    rate = sum(r["success"] for r in records) / n
    print(f"\n{embodiment}: expert success {rate:.0%} over {n} states; failures: {failures(records) or 'none'}")
    assert rate >= 0.8, f"{embodiment}: expert success {rate:.0%} < 80%; {failures(records)}"
    assert not any(r["sim_unstable"] for r in records)
