"""GR00T protocol: egosim's client against a minimal server that follows Isaac-GR00T's own server code
(`gr00t/policy/server_client.py`: MsgSerializer, PolicyServer.run), and egosim's server end to end."""

from __future__ import annotations

import io
import threading
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq
from remote_helpers import HOST, assert_remote_equals_local, free_port, serving

from egosim.actions import chunk_to_step_actions
from egosim.geometry import rot6d_to_matrix
from egosim.policies import make_policy
from egosim.policies.remote import RemotePolicyError
from egosim.policies.remote.gr00t import Gr00tClient
from egosim.policies.remote.wire import gr00t_packb, gr00t_unpackb
from egosim.tasks import make_env

# --- a minimal GR00T server: the structure of Isaac-GR00T's PolicyServer and MsgSerializer ------------

VIDEO = ["ego_view_res320x240_freq20", "left_wrist_view_res320x240_freq20", "right_wrist_view_res320x240_freq20"]
STATE = ["left_wrist_eef", "right_wrist_eef", "left_hand_joints", "right_hand_joints"]  # N1.7's order
LANG = "annotation.human.coarse_action"
WIDTH = {"left_wrist_eef": 9, "right_wrist_eef": 9, "left_hand_joints": 22, "right_hand_joints": 22}


class ModalityConfig:
    """Stands in for gr00t.data.types.ModalityConfig (what crosses the wire is its JSON form)."""

    def __init__(self, delta_indices: list[int], modality_keys: list[str]) -> None:
        self.delta_indices, self.modality_keys = delta_indices, modality_keys


def _encode(obj: Any) -> Any:
    if isinstance(obj, ModalityConfig):
        return {"__ModalityConfig_class__": True,
                "as_json": {"delta_indices": obj.delta_indices, "modality_keys": obj.modality_keys,
                            "sin_cos_embedding_keys": None, "mean_std_embedding_keys": None, "action_configs": None}}
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict) and "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    return obj


class FakeN17Sharpa:
    """A GR00T policy for `real_r1_pro_sharpa_relative_eef`: checks inputs as Gr00tPolicy does."""

    def __init__(self, state_keys: list[str] = STATE) -> None:
        self.state_keys = state_keys
        self.seen: list[dict] = []
        self.resets: list[Any] = []

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return {"video": ModalityConfig([-20, 0], VIDEO), "state": ModalityConfig([0], self.state_keys),
                "action": ModalityConfig(list(range(40)), STATE), "language": ModalityConfig([0], [LANG])}

    def get_action(self, observation: dict, options: dict | None = None) -> tuple[dict, dict]:
        for key in VIDEO:
            v = observation["video"][key]
            assert v.dtype == np.uint8 and v.shape == (1, 2, 240, 320, 3), f"video {key}: {v.dtype} {v.shape}"
        for key in self.state_keys:
            s = observation["state"][key]
            assert s.dtype == np.float32 and s.shape == (1, 1, WIDTH[key]), f"state {key}: {s.dtype} {s.shape}"
        assert isinstance(observation["language"][LANG][0][0], str)
        self.seen.append(observation)
        step = len(self.seen)
        # as GR00T's decode_action: relative-EEF predictions come back absolute (state + delta)
        out = {}
        for k in STATE:
            a = np.repeat(observation["state"][k], 40, axis=1).astype(np.float32)
            if k.endswith("eef"):
                a[0, :, 0] += 0.001 * step * np.arange(1, 41)  # move along x, keep the rotation
            else:
                a[:] = 0.01 * step
            out[k] = a
        return out, {}

    def reset(self, options: dict | None = None) -> dict:
        self.resets.append(options)
        return {}


class MiniGr00tServer:
    """GR00T's PolicyServer loop: endpoint table, handler(**data), errors as {"error": str(e)}."""

    def __init__(self, policy: FakeN17Sharpa) -> None:
        self.ctx = zmq.Context()
        self.socket = self.ctx.socket(zmq.REP)
        self.port = self.socket.bind_to_random_port(f"tcp://{HOST}")
        self.running = True
        self.endpoints = {"ping": (lambda: {"status": "ok", "message": "Server is running"}, False),
                          "kill": (self.kill, False), "get_action": (policy.get_action, True),
                          "reset": (policy.reset, True), "get_modality_config": (policy.get_modality_config, False)}

    def kill(self) -> dict:
        self.running = False
        return {}

    def run(self) -> None:
        while self.running:
            try:
                request = msgpack.unpackb(self.socket.recv(), object_hook=_decode)
                endpoint = request.get("endpoint", "get_action")
                if endpoint not in self.endpoints:
                    raise ValueError(f"Unknown endpoint: {endpoint}")
                handler, requires_input = self.endpoints[endpoint]
                result = handler(**request.get("data", {})) if requires_input else handler()
                self.socket.send(msgpack.packb(result, default=_encode))
            except Exception as e:  # noqa: BLE001 - as GR00T's server
                self.socket.send(msgpack.packb({"error": str(e)}, default=_encode))
        self.socket.close(linger=0)
        self.ctx.term()


def _run_mini(policy: FakeN17Sharpa) -> tuple[MiniGr00tServer, threading.Thread]:
    server = MiniGr00tServer(policy)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def _kill(port: int, thread: threading.Thread) -> None:
    client = Gr00tClient(HOST, port, timeout_s=5)
    client.call("kill", requires_input=False)
    client.close()
    thread.join(5)


def test_client_speaks_gr00t_n17_sharpa() -> None:
    """Keys, shapes, dtypes and the 2-frame video history of N1.7's Sharpa head; (1, 40, d) actions back."""
    fake = FakeN17Sharpa()
    server, thread = _run_mini(fake)
    env = make_env("pen_in_bin", "sharpa_wave", obs_mode="rgb", privileged=True)
    try:
        remote = make_policy("remote", env, seed=7, protocol="gr00t", host=HOST, port=server.port)
        assert remote.wrist_actions == "absolute"  # auto: a GR00T server (no egosim_info endpoint)
        obs0, _ = env.reset(seed=7, options={"initial_state": 4})
        remote.reset(seed=7)
        (opts,) = fake.resets
        assert opts["seed"] == 7 and opts["initial_state"] == 4 and isinstance(opts["session"], str)
        chunk = remote.act(obs0)
        assert chunk.shape == (40, 62) and chunk.dtype == np.float64
        rot = rot6d_to_matrix(obs0["state"][3:9].astype(np.float64))  # left wrist, in its own frame:
        assert np.allclose(chunk[:, 0:3], np.outer(0.001 * np.arange(1, 41), rot[0]), atol=1e-6)  # R^T (dx, 0, 0)
        assert np.allclose(chunk[:, 3:9], [1, 0, 0, 0, 1, 0], atol=1e-6)  # rotation kept
        assert np.allclose(chunk[:, 9:31], 0.01) and np.allclose(chunk[:, 40:62], 0.01)  # hands pass through
        obs1, *_ = env.step(chunk_to_step_actions(chunk[:1], 22)[0])
        raw = make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port, wrist_actions="chunk_relative")
        chunk = raw.act(obs1)  # the server's arrays as they came, in slice order
        assert np.allclose(chunk[:, 31:40], np.repeat(obs1["state"][None, 31:40], 40, 0) +
                           np.outer(0.002 * np.arange(1, 41), [1, 0, 0, 0, 0, 0, 0, 0, 0]), atol=1e-6)
        assert np.allclose(chunk[:, 40:62], 0.02)
        assert remote.act(obs1).shape == (40, 62)
        first, fresh, second = fake.seen
        assert np.array_equal(first["video"][VIDEO[0]][0, 0], obs0["ego_view"])
        assert np.array_equal(fresh["video"][VIDEO[0]][0, 0], obs1["ego_view"])  # a new client: no history yet
        assert np.array_equal(second["video"][VIDEO[0]][0, 0], obs0["ego_view"])  # t-20 is before the start
        assert np.array_equal(second["video"][VIDEO[0]][0, 1], obs1["ego_view"])
        assert np.array_equal(second["video"][VIDEO[2]][0, 1], obs1["right_wrist_view"])
        assert np.array_equal(second["state"]["right_hand_joints"][0, 0], obs1["state"][40:62])
        assert second["language"][LANG] == [[obs1["instruction"]]]
        assert make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port,
                           execute_steps=16).act(obs1).shape == (16, 62)
    finally:
        _kill(server.port, thread)
        env.close()


def test_server_without_modality_config_gets_the_embodiment_default() -> None:
    fake = FakeN17Sharpa()
    server, thread = _run_mini(fake)
    server.endpoints["get_modality_config"] = (lambda: {}, False)
    env = make_env("pen_in_bin", "sharpa_wave", obs_mode="rgb", privileged=True)
    try:
        remote = make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port)
        assert remote.modality.video_keys == tuple(VIDEO) and remote.modality.language_key == LANG
        obs, _ = env.reset(seed=0, options={"initial_state": 0})
        assert remote.act(obs).shape == (40, 62)  # the fake checked N1.7's keys, shapes and dtypes
    finally:
        _kill(server.port, thread)
        env.close()


def test_unknown_head_keys_and_server_errors_are_clear() -> None:
    env = make_env("pen_in_bin", "sharpa_wave", obs_mode="rgb", privileged=True)
    server, thread = _run_mini(FakeN17Sharpa(state_keys=["left_arm", *STATE]))
    try:
        with pytest.raises(RemotePolicyError, match=r"keys egosim cannot fill: \['left_arm'\]"):
            make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port)
        client = Gr00tClient(HOST, server.port, timeout_s=5)
        with pytest.raises(RemotePolicyError, match=rf"{HOST}:{server.port} failed on 'nope': Unknown endpoint: nope"):
            client.call("nope")
        with pytest.raises(RemotePolicyError, match="failed on 'get_action': 'video'"):  # GR00T's KeyError text
            client.call("get_action", {"observation": {}})
        assert client.call("ping", requires_input=False)["status"] == "ok"
        client.close()
    finally:
        _kill(server.port, thread)
        env.close()


@pytest.mark.parametrize("kind", ["random", "expert"])
def test_remote_equals_local_over_gr00t(kind: str) -> None:
    """Bit-exact through egosim's gr00t server (float64 actions; the expert in shadow mode)."""
    assert_remote_equals_local(kind, "gr00t")


def test_shadow_server_refuses_a_second_client_mid_episode() -> None:
    """The served expert's env follows one episode: another client's reset is named, not silently mixed in."""
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    with serving("expert", "unitree_dex3", "gr00t") as server:
        first = make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port)
        second = make_policy("remote", env, protocol="gr00t", host=HOST, port=server.port)
        obs, _ = env.reset(seed=0, options={"initial_state": 0})
        with pytest.raises(RemotePolicyError, match="shadow mode .*send reset .seed, initial_state. first"):
            first.act(obs)
        first.reset(seed=0)
        first.act(obs)
        second.reset(seed=0)
        with pytest.raises(RemotePolicyError, match="workers=1.; another client reset it since"):
            first.act(obs)
        assert second.act(obs).shape == (1, 32)


def test_egosim_gr00t_server_answers_malformed_requests_and_keeps_serving() -> None:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    with serving("random", "unitree_dex3", "gr00t") as server:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(f"tcp://{HOST}:{server.port}")

        def ask(raw: bytes) -> Any:
            sock.send(raw)
            return gr00t_unpackb(sock.recv())

        assert "undecodable msgpack" in ask(b"\xc1\xc1garbage")["error"]
        assert "Unknown endpoint: 'x'" in ask(gr00t_packb({"endpoint": "x"}))["error"]
        good = {"video": {}, "state": {k: obs["state"][None, None, s] for k, s in
                                       (("left_wrist_eef", slice(0, 9)), ("left_hand_joints", slice(9, 16)),
                                        ("right_wrist_eef", slice(16, 25)), ("right_hand_joints", slice(25, 32)))},
                "language": {"annotation.human.task_description": [[obs["instruction"]]]}}
        bad = {**good, "state": {**good["state"], "left_hand_joints": good["state"]["left_hand_joints"].astype(np.float64)}}
        err = ask(gr00t_packb({"endpoint": "get_action", "data": {"observation": bad}}))["error"]
        assert "state 'left_hand_joints' must be a float32 array (1, T, 7)" in err
        configs = ask(gr00t_packb({"endpoint": "get_modality_config"}))
        assert configs["action"]["modality_keys"] == ["left_wrist_eef", "left_hand_joints", "right_wrist_eef",
                                                       "right_hand_joints"]
        action, info = ask(gr00t_packb({"endpoint": "get_action", "data": {"observation": good}}))
        assert action["right_hand_joints"].shape == (1, 1, 7) and info == {}
        sock.close(linger=0)
        ctx.term()


def test_silent_gr00t_server_times_out_naming_host_and_port() -> None:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
    port = free_port()
    with pytest.raises(RemotePolicyError, match=rf"gr00t policy server {HOST}:{port} did not answer 'ping' within 0.3 s"):
        make_policy("remote", env, protocol="gr00t", host=HOST, port=port, timeout_s=0.3)


def test_absolute_wrist_actions_are_made_chunk_relative() -> None:
    from egosim.policies.remote.policy import absolute_to_chunk_relative

    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    obs, _ = env.reset(seed=0, options={"initial_state": 0})
    state = obs["state"].astype(np.float64)
    rel = absolute_to_chunk_relative(np.stack([state, state]), state, 7)
    ident = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0], dtype=float)
    assert np.allclose(rel[:, 0:9], ident, atol=1e-6) and np.allclose(rel[:, 16:25], ident, atol=1e-6)
    assert np.array_equal(rel[:, 9:16], state[None, 9:16].repeat(2, 0))
