"""Helpers of the remote-policy tests: serve an egosim policy on a free loopback port in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

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
