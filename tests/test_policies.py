"""The policy registry, the random policy, and the one-way import layering of DESIGN.md."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import egosim.tasks
import numpy as np
import pytest
from egosim.policies import Policy, get_policy_kind, make_policy, policy_kinds


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    yield e
    e.close()


def test_kinds() -> None:
    assert {"random", "expert"} <= set(policy_kinds())
    assert not get_policy_kind("random").needs_images and not get_policy_kind("expert").needs_images


def test_random_policy(env) -> None:
    p = make_policy("random", env, seed=3)
    assert isinstance(p, Policy)
    obs, _ = env.reset(seed=0)
    chunks = [p.act(obs) for _ in range(20)]
    for c in chunks:
        assert c.shape == (1, env.action_space.shape[0]) and c.dtype == np.float64
        assert env.action_space.contains(c[0])
    p.reset(seed=3)
    again = [p.act(obs) for _ in range(20)]
    np.testing.assert_array_equal(np.concatenate(chunks), np.concatenate(again))
    q = make_policy("random", env, seed=4)
    assert not np.array_equal(q.act(obs), chunks[0])
    # the policy's generator is its own: the env's stream is untouched
    state = env.np_random.bit_generator.state
    p.act(obs)
    assert env.np_random.bit_generator.state == state


LAYERING = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import egosim

    def loaded(*prefixes):
        return sorted(m for m in sys.modules if m.startswith(prefixes))

    UPPER = ("egosim.tasks", "egosim.policies", "egosim.eval", "egosim.cli")
    for m in pkgutil.iter_modules(egosim.__path__):
        if m.name not in ("cli", "tasks", "policies", "eval", "assets", "conf"):
            importlib.import_module("egosim." + m.name)
    assert not loaded(*UPPER), ("egosim core imports", loaded(*UPPER))

    import egosim.tasks
    for m in pkgutil.walk_packages(egosim.tasks.__path__, "egosim.tasks."):
        importlib.import_module(m.name)
    assert not loaded(*UPPER[1:]), ("egosim.tasks imports", loaded(*UPPER[1:]))

    import egosim.policies
    assert "egosim.policies.random_policy" not in sys.modules, "policy kinds must load lazily"
    env = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    egosim.policies.make_policy("random", env, seed=0)
    assert "egosim.policies.random_policy" in sys.modules
    for m in pkgutil.walk_packages(egosim.policies.__path__, "egosim.policies."):
        importlib.import_module(m.name)
    assert not loaded(*UPPER[2:]), ("egosim.policies imports", loaded(*UPPER[2:]))

    import egosim.eval
    assert not loaded("egosim.cli"), "egosim.eval imports the CLI"
    print("ok")
    """
)


def test_import_layering() -> None:
    """Core never imports tasks/policies/eval; tasks never policies/eval; policies never eval; none the CLI."""
    out = subprocess.run([sys.executable, "-c", LAYERING], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
