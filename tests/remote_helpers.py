"""Helpers of the remote-policy tests: serve an egosim policy on a free loopback port in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from egosim.actions import chunk_to_step_actions
from egosim.policies import get_policy_kind, make_policy
from egosim.policies.remote.server import Gr00tServer, OpenpiServer, PolicyService, make_server
from egosim.tasks import make_env

HOST = "127.0.0.1"


@contextlib.contextmanager
def serving(kind: str, embodiment: str, protocol: str, seed: int = 3, policy: Any = None,
            obs_mode: str | None = None) -> Iterator[Gr00tServer | OpenpiServer]:
    """A server of policy `kind` (or of the given `policy` object) on a free port, stopped on exit."""
    record = get_policy_kind(kind)
    env = make_env("pen_in_bin", embodiment, obs_mode=obs_mode or ("rgb" if record.needs_images else "state"),
                   privileged=record.needs_privileged)
    pol = policy if policy is not None else make_policy(kind, env, seed=seed)
    server = make_server(PolicyService(pol, env, shadow=record.needs_privileged, name=kind), protocol, HOST, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        env.close()


def free_port() -> int:
    """A TCP port nothing listens on (bound and released at once)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def assert_remote_equals_local(kind: str, protocol: str, states: tuple[int, ...] = (1, 2), steps: int = 25) -> None:
    """A served `kind` policy gives, through `policy=remote` over `protocol`, bit-identical action chunks
    to the same policy run locally, over whole chunks stepped in two envs side by side (Dex3 pen_in_bin).
    The expert is served in shadow mode: its server env follows the client's episode."""
    cenv = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    lenv = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    local = make_policy(kind, lenv, seed=3)
    try:
        with serving(kind, "unitree_dex3", protocol, seed=3) as server:
            remote = make_policy("remote", cenv, seed=3, protocol=protocol, host=HOST, port=server.port)
            for state in states:
                obs, _ = cenv.reset(seed=state, options={"initial_state": state})
                lobs, _ = lenv.reset(seed=state, options={"initial_state": state})
                remote.reset(seed=state)
                local.reset(seed=state)
                for _ in range(steps):
                    a, b = remote.act(obs), local.act(lobs)
                    assert np.array_equal(a, b)
                    for step in chunk_to_step_actions(a, 7):
                        obs, *_ = cenv.step(step)
                        lobs, *_ = lenv.step(step)
            remote.close()
    finally:
        cenv.close()
        lenv.close()
