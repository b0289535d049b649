"""syringe_transfer: the liquid model and milestone predicates on hand-built states, and the expert.

Predicate tests place the syringe by setting its qpos (tests may; experts may not), move the plunger
by its slide joint, run `mj_forward` and call `task.milestones`, which integrates the liquid state
from the plunger's change, as the env does every control step.
"""

from __future__ import annotations

import egosim.tasks
import mujoco
import numpy as np
import pytest

from egosim.embodiment import embodiment_names
from egosim.tasks.syringe_transfer import (
    BORE_AREA,
    DRAW_MIN_ML,
    ML,
    NOZZLE_LEN,
    TUBE_BASE,
    TUBE_H,
    VOLUME_A0_ML,
    SyringeTransfer,
)
from expert_helpers import failures, play_expert

EMBODIMENTS = list(embodiment_names("robot"))


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("syringe_transfer", "sharpa_wave", obs_mode="state", privileged=True)
    yield e
    e.close()


def _reset(env) -> SyringeTransfer:
    env.reset(options={"initial_state": 0})
    return env.task


def _place(env, tip: np.ndarray, slide: float | None = None) -> dict[str, bool]:
    """Stands the syringe upright with its nozzle tip at `tip` (at rest), optionally moves the plunger."""
    m, d = env.model, env.data
    q = m.joint("syringe_free").qposadr[0]
    d.qpos[q : q + 7] = [tip[0], tip[1], tip[2] + NOZZLE_LEN, 1, 0, 0, 0]
    d.qvel[m.joint("syringe_free").dofadr[0] : m.joint("syringe_free").dofadr[0] + 6] = 0
    if slide is not None:
        d.qpos[m.joint("syringe_plunger_slide").qposadr[0]] = slide
    mujoco.mj_forward(m, d)
    return env.task.milestones(m, d)


def _slide(env, value: float) -> dict[str, bool]:
    m, d = env.model, env.data
    d.qpos[m.joint("syringe_plunger_slide").qposadr[0]] = value
    mujoco.mj_forward(m, d)
    return env.task.milestones(m, d)


def _in_tube(task: SyringeTransfer, tube: str, height: float) -> np.ndarray:
    """A point on tube `tube`'s axis, `height` above its inner bottom."""
    return task.tube_rim[tube] + np.array([0.0, 0.0, -TUBE_H + TUBE_BASE + height])


def test_plunger_moved_outside_a_tube_moves_no_liquid(env) -> None:
    task = _reset(env)
    ms = _place(env, task.tube_rim["a"] + np.array([0.0, 0.0, 0.05]))  # above A, not in it
    assert not ms["aimed_at_a"]
    for q in (0.01, 0.03, 0.0):  # pull air in, push it out
        ms = _slide(env, q)
    v = task.volumes_ml()
    assert v == {"a": VOLUME_A0_ML, "b": 0.0, "syringe": 0.0}
    assert not ms["plunger_pulled"] and not ms["plunger_pushed"]


def test_pulling_with_the_tip_in_a_draws_liquid(env) -> None:
    task = _reset(env)
    ms = _place(env, _in_tube(task, "a", 0.004), slide=0.0)
    assert ms["aimed_at_a"] and not ms["aimed_at_b"]
    ms = _slide(env, 0.01)
    v = task.volumes_ml()
    drawn = 0.01 * BORE_AREA / ML
    assert v["syringe"] == pytest.approx(drawn) and v["a"] == pytest.approx(VOLUME_A0_ML - drawn)
    assert drawn >= DRAW_MIN_ML and ms["plunger_pulled"]
    # Drawing more than A holds takes only the liquid above the tip (the rest is air).
    _slide(env, 0.045)
    v = task.volumes_ml()
    assert v["a"] == pytest.approx(0.004 * np.pi * 0.012**2 / ML)
    assert v["a"] + v["syringe"] == pytest.approx(VOLUME_A0_ML)


def test_pulling_with_the_tip_above_the_liquid_draws_air(env) -> None:
    task = _reset(env)
    surface = VOLUME_A0_ML * ML / (np.pi * 0.012**2)
    ms = _place(env, _in_tube(task, "a", surface + 0.01), slide=0.0)
    assert ms["aimed_at_a"]
    _slide(env, 0.01)
    assert task.volumes_ml() == {"a": VOLUME_A0_ML, "b": 0.0, "syringe": 0.0}


def test_pushing_with_the_tip_in_b_injects(env) -> None:
    task = _reset(env)
    _place(env, _in_tube(task, "b", 0.004), slide=0.01)
    task.set_volumes(env.model, env.data, a_ml=7.0, syringe_ml=8.0, b_ml=0.0)
    ms = task.milestones(env.model, env.data)
    assert ms["aimed_at_b"] and not ms["plunger_pushed"]
    ms = _slide(env, 0.0)
    v = task.volumes_ml()
    assert v["b"] == pytest.approx(8.0) and v["syringe"] == pytest.approx(0.0) and v["a"] == pytest.approx(7.0)
    assert ms["plunger_pushed"]


def test_pushing_outside_a_tube_spills_into_neither_tube(env) -> None:
    task = _reset(env)
    _place(env, task.tube_rim["b"] + np.array([0.06, 0.0, 0.05]), slide=0.01)
    task.set_volumes(env.model, env.data, a_ml=7.0, syringe_ml=8.0, b_ml=0.0)
    ms = _slide(env, 0.0)
    v = task.volumes_ml()
    assert v["a"] == pytest.approx(7.0) and v["b"] == 0.0 and not ms["plunger_pushed"]
    assert task.spilled / ML == pytest.approx(8.0)


def test_aim_at_b_needs_liquid_in_the_syringe(env) -> None:
    task = _reset(env)
    ms = _place(env, _in_tube(task, "b", 0.01))
    assert not ms["aimed_at_b"]


def test_syringe_in_trash(env) -> None:
    task = _reset(env)
    ms = _place(env, task.trash_center + np.array([0.0, 0.0, 0.01]))
    assert ms["in_trash"]
    assert not ms["syringe_picked"] and not ms["handover_or_release"]  # a release needs a pick first
    ms = _place(env, task.trash_center + np.array([0.2, 0.0, 0.01]))  # beside the can
    assert not ms["in_trash"]
    ms = _place(env, task.holder_top - np.array([0.0, 0.0, NOZZLE_LEN]))  # back in its holder
    assert not ms["in_trash"]


def test_nothing_is_reached_at_reset_and_the_rubric_sums_to_one(env) -> None:
    env.reset(options={"initial_state": 1})
    assert not any(env.task.milestones(env.model, env.data).values())
    assert env.task.rubric.score({m: True for m in env.task.rubric.names}) == pytest.approx(1.0)
    assert sum(m.points for m in env.task.rubric.milestones) == pytest.approx(1.0)


def test_privileged_layout(env) -> None:
    task = _reset(env)
    p = task.privileged(env.model, env.data)
    assert p.shape == (task.privileged_dim,)
    np.testing.assert_allclose(p[8:11], task.nozzle_tip(env.data))
    np.testing.assert_allclose(p[-3:], [VOLUME_A0_ML, 0.0, 0.0])


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_solves_an_evaluation_state(embodiment: str) -> None:
    records = play_expert("syringe_transfer", embodiment, [0])
    assert all(r["success"] for r in records), failures(records)
    assert not any(r["sim_unstable"] or r["mujoco_warnings"] for r in records)


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    n = len(SyringeTransfer().eval_initial_states())
    assert n == 50
    records = play_expert("syringe_transfer", embodiment, list(range(n)))
    rate = sum(r["success"] for r in records) / n
    print(f"\n{embodiment}: expert success {rate:.0%} over {n} states; failures: {failures(records) or 'none'}")
    assert rate >= 0.8, f"{embodiment}: expert success {rate:.0%} < 80%; {failures(records)}"
    assert not any(r["sim_unstable"] for r in records)
