"""The scripted expert solves pen_in_bin through physics on both hands.

Fast (default suite): the canister lift on 2 evaluation initial states and a full solve of state 0 per
embodiment. Slow (`make test-slow`): >= 90% of all 50 evaluation initial states per embodiment (the
acceptance figure).
"""

from __future__ import annotations

import egosim.tasks
import pytest

from egosim.embodiment import embodiment_names
from expert_helpers import failures, play_expert

EMBODIMENTS = list(embodiment_names("robot"))


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_lifts_the_canister_through_physics(embodiment: str) -> None:
    """What the expert does reliably today on both hands: grasp and lift the canister (a real grasp:
    the milestone needs hand contact and 3 cm of lift), with stable physics."""
    records = play_expert("pen_in_bin", embodiment, [0, 1])
    assert all(r["milestones"]["canister_picked"] for r in records), failures(records)
    assert not any(r["sim_unstable"] or r["mujoco_warnings"] for r in records)


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_solves_an_evaluation_state(embodiment: str) -> None:
    """End to end on evaluation state 0: every milestone, and success (canister standing on the
    square with the marker at rest inside it, both released) at one instant."""
    records = play_expert("pen_in_bin", embodiment, [0])
    assert all(r["success"] for r in records), failures(records)


@pytest.mark.slow
@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_expert_success_rate_on_all_eval_states(embodiment: str) -> None:
    n = len(egosim.tasks.get_task("pen_in_bin")().eval_initial_states())
    assert n == 50
    records = play_expert("pen_in_bin", embodiment, list(range(n)))
    rate = sum(r["success"] for r in records) / n
    print(f"\n{embodiment}: expert success {rate:.0%} over {n} states; failures: {failures(records) or 'none'}")
    assert rate >= 0.9, f"{embodiment}: expert success {rate:.0%} < 90%; {failures(records)}"
    assert not any(r["sim_unstable"] for r in records)
