"""openpi protocol: egosim's server against the real `openpi-client`, and egosim's client end to end."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from remote_helpers import HOST, assert_remote_equals_local, free_port, serving

from egosim.policies import make_policy
from egosim.policies.remote import RemotePolicyError
from egosim.policies.remote.wire import openpi_packb, openpi_unpackb
from egosim.tasks import make_env


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
def test_real_openpi_client_gets_local_actions() -> None:
    """openpi's own WebsocketClientPolicy reads the metadata and gets the local policy's actions."""
    wcp = pytest.importorskip("openpi_client.websocket_client_policy")
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    local = make_policy("random", env, seed=3)
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    with serving("random", "unitree_dex3", "openpi", seed=3) as server:
        client = wcp.WebsocketClientPolicy(host=HOST, port=server.port)
        meta = client.get_server_metadata()
        assert meta["egosim"]["embodiment"] == "unitree_dex3" and meta["egosim"]["action_dim"] == 32
        for _ in range(3):
            reply = client.infer(obs)
            assert reply["actions"].shape == (1, 32)
            assert np.array_equal(reply["actions"], local.act(obs))
        with pytest.raises(RuntimeError, match="observation lacks 'state'"):  # openpi's client: text frame = error
            client.infer({"instruction": "x"})


def test_codec_matches_openpi_msgpack_numpy() -> None:
    """egosim's packer writes openpi's bytes, and each side reads the other's."""
    mn = pytest.importorskip("openpi_client.msgpack_numpy")
    msg = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.float64(2.5), "s": "x", "n": [1, 2]}
    assert openpi_packb(msg) == mn.packb(msg)
    back = openpi_unpackb(mn.packb(msg))
    assert np.array_equal(back["a"], msg["a"]) and back["a"].dtype == np.float32 and back["b"] == 2.5


@pytest.mark.parametrize("kind", ["random", "expert"])
def test_remote_equals_local_over_openpi(kind: str) -> None:
    """Bit-exact: the expert is served in shadow mode (its server env follows the client's episode)."""
    assert_remote_equals_local(kind, "openpi")


class _Boom:
    embodiments = ()

    def reset(self, seed=None) -> None:
        pass

    def act(self, observation):
        raise RuntimeError("boom: the policy failed")


def test_malformed_requests_get_errors_and_the_server_keeps_serving() -> None:
    from websockets.sync.client import connect

    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    with serving("random", "unitree_dex3", "openpi") as server:
        uri = f"ws://{HOST}:{server.port}"
        bad = [b"\xc1garbage", openpi_packb({**obs, "state": obs["state"][:5]}), openpi_packb([1, 2]),
               openpi_packb({**obs, "state": obs["state"].astype(np.float64)})]
        for frame in bad:
            with connect(uri) as ws:
                openpi_unpackb(ws.recv())  # metadata
                ws.send(frame)
                reply = ws.recv()
                assert isinstance(reply, str) and "error" in reply
        assert "'state' must be float32 (32,)" in reply
        with connect(uri) as ws:  # still serving
            openpi_unpackb(ws.recv())
            ws.send(openpi_packb(obs))
            assert openpi_unpackb(ws.recv())["actions"].shape == (1, 32)


def test_server_error_is_surfaced_with_its_message() -> None:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    with serving("random", "unitree_dex3", "openpi", policy=_Boom()) as server:
        remote = make_policy("remote", env, seed=0, protocol="openpi", host=HOST, port=server.port)
        remote.reset(seed=0)
        with pytest.raises(RemotePolicyError, match=rf"(?s){HOST}:{server.port} failed: .*boom: the policy failed"):
            remote.act(obs)


def test_refused_and_silent_servers_name_host_and_port() -> None:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    port = free_port()
    with pytest.raises(RemotePolicyError, match=rf"openpi policy server {HOST}:{port} .*Connection ?refused"):
        make_policy("remote", env, protocol="openpi", host=HOST, port=port, timeout_s=2)
    # a server that accepts the TCP connection and never answers: the handshake times out
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(RemotePolicyError, match=rf"openpi policy server {HOST}:{port}"):
            make_policy("remote", env, protocol="openpi", host=HOST, port=port, timeout_s=0.5)


def test_wrong_embodiment_is_refused_at_connect() -> None:
    env = make_env("pen_in_bin", "sharpa_wave", obs_mode="state", privileged=True)
    with serving("random", "unitree_dex3", "openpi") as server:
        with pytest.raises(RemotePolicyError, match="32-D actions; this env .sharpa_wave. takes 62-D"):
            make_policy("remote", env, protocol="openpi", host=HOST, port=server.port)


def test_concurrent_clients_are_all_answered() -> None:
    """Four clients at once (one lock serialises the policy): every request gets its answer."""
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    errors: list[BaseException] = []
    with serving("random", "unitree_dex3", "openpi") as server:
        def client() -> None:
            try:
                pol = make_policy("remote", env, protocol="openpi", host=HOST, port=server.port)
                for _ in range(20):
                    assert pol.act(obs).shape == (1, 32)
                pol.close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
