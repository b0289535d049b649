"""GR00T's inference protocol (Isaac-GR00T `gr00t/policy/server_client.py`), client and server side.

Wire: ZMQ REQ/REP on `tcp://host:port`; each request is `gr00t_packb({"endpoint": name, "data": {...}})`
(`data` only for endpoints that take input); a reply is the handler's result, or `{"error": message}`.
`get_action` takes `{"observation": obs, "options": ...}` and returns `[action, info]`, with
obs = `{"video": {key: (B,T,H,W,3) uint8}, "state": {key: (B,T,D) float32}, "language": {key: [[str]]}}`
and action = `{key: (B, horizon, D)}`. `reset` takes `{"options": ...}`; `ping` and
`get_modality_config` take nothing. egosim's server adds `egosim_info` (version, policy, embodiment,
action convention), which GR00T's servers answer with "Unknown endpoint".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.policies.remote import RemotePolicyError
from egosim.policies.remote.keys import CAMERA_ALIASES, PRIVILEGED_KEY, SLICE_ALIASES, Modality, slice_of
from egosim.policies.remote.wire import gr00t_packb, gr00t_unpackb

ENDPOINTS = ("ping", "kill", "get_action", "reset", "get_modality_config", "egosim_info")


class Gr00tClient:
    """A GR00T `PolicyClient` with timeouts: every call names the server and says what went wrong.

    GR00T's own client blocks forever on a dead server; this one sets ZMQ send/receive timeouts and
    rebuilds its REQ socket after a timeout (a REQ socket cannot send twice without a reply).
    """

    def __init__(self, host: str, port: int, timeout_s: float = 15.0, api_token: str | None = None) -> None:
        import zmq

        self.host, self.port, self.timeout_s, self.api_token = host, int(port), float(timeout_s), api_token
        self.address = f"tcp://{host}:{self.port}"
        self._zmq = zmq
        self._ctx = zmq.Context()
        self._socket = None
        self._connect()

    def _connect(self) -> None:
        zmq = self._zmq
        if self._socket is not None:
            self._socket.close(linger=0)
        sock = self._ctx.socket(zmq.REQ)
        ms = max(1, int(self.timeout_s * 1000))
        sock.setsockopt(zmq.RCVTIMEO, ms)
        sock.setsockopt(zmq.SNDTIMEO, ms)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.address)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise RemotePolicyError(f"cannot connect to gr00t policy server {self.host}:{self.port}: {exc}") from None
        self._socket = sock

    def call(self, endpoint: str, data: Mapping[str, Any] | None = None, requires_input: bool = True) -> Any:
        """Sends one request and returns the decoded reply; a server error becomes `RemotePolicyError`."""
        request: dict[str, Any] = {"endpoint": endpoint}
        if requires_input:
            request["data"] = dict(data or {})
        if self.api_token:
            request["api_token"] = self.api_token
        zmq = self._zmq
        try:
            self._socket.send(gr00t_packb(request))
            message = self._socket.recv()
        except zmq.Again:
            self._connect()
            raise RemotePolicyError(
                f"gr00t policy server {self.host}:{self.port} did not answer {endpoint!r} within {self.timeout_s:g} s "
                "(is `egosim serve` or GR00T's run_gr00t_server.py running there, with protocol=gr00t?)") from None
        except zmq.ZMQError as exc:
            self._connect()
            raise RemotePolicyError(f"gr00t policy server {self.host}:{self.port}: {endpoint!r} failed: {exc}") from None
        if message == b"ERROR":
            raise RemotePolicyError(f"gr00t policy server {self.host}:{self.port} answered ERROR to {endpoint!r}")
        response = gr00t_unpackb(message)
        if isinstance(response, dict) and "error" in response:
            raise RemotePolicyError(f"gr00t policy server {self.host}:{self.port} failed on {endpoint!r}: "
                                    f"{response['error']}")
        return response

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._ctx.term()


def encode_observation(obs: Mapping[str, Any], history: Mapping[str, deque], modality: Modality,
                       hand_dof: int) -> dict[str, Any]:
    """An egosim observation as GR00T's batched observation (B = 1) for the head `modality`.

    `history` holds each camera's recent frames (newest last), so video keys with negative delta
    indices (N1.7 Sharpa: [-20, 0]) get past frames; before the episode has that many, the oldest
    frame stands in.
    """
    video = {}
    for key in modality.video_keys:
        frames = history[CAMERA_ALIASES[key]]
        video[key] = np.stack([frames[max(0, len(frames) - 1 + d)] for d in modality.video_deltas])[None]
    raw = np.asarray(obs["state"], dtype=np.float32)
    state = {}
    for key in modality.state_keys:
        vec = np.asarray(obs[PRIVILEGED_KEY], dtype=np.float32) if key == PRIVILEGED_KEY else raw[slice_of(hand_dof, key)]
        state[key] = np.repeat(vec[None, None], len(modality.state_deltas), axis=1)
    return {"video": video, "state": state, "language": {modality.language_key: [[str(obs.get("instruction", ""))]]}}


def check_modality(modality: Modality, hand_dof: int, obs_keys: set[str]) -> None:
    """Refuses a head whose keys egosim cannot fill, naming each unknown key and the known ones."""
    bad = [k for k in modality.video_keys if k not in CAMERA_ALIASES]
    bad += [k for k in modality.state_keys if k not in SLICE_ALIASES and k != PRIVILEGED_KEY]
    bad += [k for k in modality.action_keys if k not in SLICE_ALIASES]
    if bad:
        raise RemotePolicyError(
            f"the gr00t server's modality config uses keys egosim cannot fill: {bad}; egosim knows video "
            f"{sorted(CAMERA_ALIASES)}, state/action {sorted(SLICE_ALIASES)}")
    covered = {SLICE_ALIASES[k] for k in modality.action_keys}
    if len(covered) != 4 or len(modality.action_keys) != 4:
        raise RemotePolicyError(f"the gr00t server's action keys {list(modality.action_keys)} must name each of "
                                "left_wrist_eef, left_hand_joints, right_wrist_eef, right_hand_joints once")
    missing = sorted({CAMERA_ALIASES[k] for k in modality.video_keys} - obs_keys)
    if missing or (PRIVILEGED_KEY in modality.state_keys and PRIVILEGED_KEY not in obs_keys):
        raise RemotePolicyError(f"the gr00t server wants {missing or [PRIVILEGED_KEY]}, which the env's observation "
                                f"lacks (it has {sorted(obs_keys)})")


def decode_action(action: Any, modality: Modality, hand_dof: int, where: str) -> NDArray[np.float64]:
    """GR00T's `{key: (B, horizon, D)}` as one egosim chunk (horizon, action_dim), in slice order."""
    if isinstance(action, (list, tuple)) and len(action) == 2 and isinstance(action[0], dict):
        action = action[0]  # get_action returns (action, info)
    if not isinstance(action, dict):
        raise RemotePolicyError(f"{where} returned {type(action).__name__}, expected a dict of action arrays")
    dim = 2 * (9 + hand_dof)
    chunk: NDArray[np.float64] | None = None
    for key in modality.action_keys:
        if key not in action:
            raise RemotePolicyError(f"{where} returned action keys {sorted(action)}; missing {key!r}")
        arr = np.asarray(action[key])
        sl = slice_of(hand_dof, key)
        width = sl.stop - sl.start
        if arr.ndim != 3 or arr.shape[0] != 1 or arr.shape[2] != width or arr.shape[1] < 1:
            raise RemotePolicyError(f"{where} returned {key!r} of shape {arr.shape}; expected (1, horizon, {width})")
        if chunk is None:
            chunk = np.zeros((arr.shape[1], dim))
        elif arr.shape[1] != chunk.shape[0]:
            raise RemotePolicyError(f"{where} returned horizons that differ between keys ({key!r}: {arr.shape[1]})")
        chunk[:, sl] = arr[0]
    assert chunk is not None
    return chunk


def decode_observation(obs: Any, modality: Modality, hand_dof: int) -> dict[str, Any]:
    """GR00T's batched observation back into an egosim observation (server side; newest frame, B = 1).

    Raises `RemotePolicyError` naming the missing key or bad shape/dtype, which the server sends back.
    """
    if not isinstance(obs, dict):
        raise RemotePolicyError(f"observation must be a dict with video, state, language; got {type(obs).__name__}")
    for part in ("video", "state", "language"):
        if not isinstance(obs.get(part), dict):
            raise RemotePolicyError(f"observation[{part!r}] must be a dict; got {type(obs.get(part)).__name__}")
    out: dict[str, Any] = {}
    for key in modality.video_keys:
        arr = obs["video"].get(key)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 5 or arr.shape[0] != 1 or arr.shape[-1] != 3:
            raise RemotePolicyError(f"video {key!r} must be a uint8 array (1, T, H, W, 3); got "
                                    f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        out[CAMERA_ALIASES[key]] = arr[0, -1]
    state = np.zeros(2 * (9 + hand_dof), dtype=np.float32)
    for key in modality.state_keys:
        arr = obs["state"].get(key)
        width = None if key == PRIVILEGED_KEY else slice_of(hand_dof, key).stop - slice_of(hand_dof, key).start
        if (not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 3 or arr.shape[0] != 1
                or (width is not None and arr.shape[2] != width)):
            raise RemotePolicyError(f"state {key!r} must be a float32 array (1, T, {width or 'D'}); got "
                                    f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
        if key == PRIVILEGED_KEY:
            out[PRIVILEGED_KEY] = arr[0, -1]
        else:
            state[slice_of(hand_dof, key)] = arr[0, -1]
    out["state"] = state
    lang = obs["language"].get(modality.language_key)
    if not (isinstance(lang, list) and len(lang) == 1 and isinstance(lang[0], list) and lang[0]
            and isinstance(lang[0][-1], str)):
        raise RemotePolicyError(f"language {modality.language_key!r} must be [[str]]; got {lang!r:.80}")
    out["instruction"] = lang[0][-1]
    return out


def encode_action(chunk: NDArray[np.float64], modality: Modality, hand_dof: int) -> dict[str, NDArray[np.float64]]:
    """An egosim chunk (H, D) as GR00T's `{key: (1, H, d)}` (float64: lossless, so remote equals local)."""
    chunk = np.asarray(chunk, dtype=np.float64)
    return {key: chunk[None, :, slice_of(hand_dof, key)] for key in modality.action_keys}
