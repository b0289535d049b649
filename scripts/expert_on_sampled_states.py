"""The pen_in_bin expert on freshly sampled initial states (not the fixed evaluation list).

The evaluation states are fixed; this checks that the expert is not tuned to them: each episode
resets with `seed = base + k` and no `initial_state`, so the task samples a new layout.

    python scripts/expert_on_sampled_states.py sharpa_wave --episodes 50 --base 5000
"""

from __future__ import annotations

import argparse

from egosim.actions import chunk_to_step_actions
from egosim.policies import make_policy
from egosim.tasks import make_env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("embodiment")
    ap.add_argument("--task", default="pen_in_bin")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--base", type=int, default=5000, help="episode k resets with seed base + k")
    args = ap.parse_args()
    env = make_env(args.task, args.embodiment, obs_mode="state", privileged=True)
    policy = make_policy("expert", env, seed=0)
    ok, fails = 0, []
    for k in range(args.episodes):
        seed = args.base + k
        obs, info = env.reset(seed=seed)
        policy.reset(seed=seed)
        done = False
        while not done:
            for action in chunk_to_step_actions(policy.act(obs), env.embodiment.dof):
                obs, _, term, trunc, info = env.step(action)
                done = term or trunc
                if done:
                    break
        ok += info["is_success"]
        if not info["is_success"]:
            fails.append((seed, round(info["score"], 2), info["sim_unstable"]))
    env.close()
    print(f"{args.task} {args.embodiment}: {ok}/{args.episodes} sampled states solved; failures (seed, score, unstable): {fails}")


if __name__ == "__main__":
    main()
