"""The `remote` policy kind: a policy served elsewhere, behind the `Policy` protocol."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError, InvalidChoiceError
from egosim.geometry import matrix_to_rot6d, rot6d_to_matrix
from egosim.policies.remote import PROTOCOLS, RemotePolicyError

WRIST_ACTIONS = ("auto", "chunk_relative", "absolute")
OPTIONS = ("protocol", "host", "port", "timeout_s", "execute_steps", "wrist_actions", "api_token")


def check_remote_options(protocol: Any = None, host: Any = "localhost", port: Any = None, timeout_s: Any = 15.0,
                         execute_steps: Any = None, wrist_actions: Any = "auto",
                         api_token: Any = None) -> None:
    """Validates the remote kind's options before anything connects (so `egosim eval` fails at once).

    Raises `InvalidChoiceError` / `ConfigError` naming the bad value and the valid choices or range.
    """
    if protocol is None:
        raise ConfigError(f"policy=remote needs protocol=<{'|'.join(PROTOCOLS)}> and port=P (and host=H, "
                          "default localhost)")
    if protocol not in PROTOCOLS:
        raise InvalidChoiceError("protocol", protocol, PROTOCOLS)
    if port is None:
        raise ConfigError("policy=remote needs port=P (the policy server's port; `egosim serve` defaults: "
                          "5555 for gr00t, 8000 for openpi)")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ConfigError(f"host must be a host name or address, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"port must be an integer in 1..65535, got {port!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ConfigError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if execute_steps is not None and (isinstance(execute_steps, bool) or not isinstance(execute_steps, int)
                                      or execute_steps < 1):
        raise ConfigError(f"execute_steps must be a positive integer or null, got {execute_steps!r}")
    if wrist_actions not in WRIST_ACTIONS:
        raise InvalidChoiceError("wrist_actions", wrist_actions, WRIST_ACTIONS)
    if api_token is not None and not isinstance(api_token, str):
        raise ConfigError("api_token must be a string")


class RemotePolicy:
    """Asks a policy server for action chunks (GR00T's ZMQ protocol or openpi's websocket protocol).

    Args:
        env: The env this policy plays (gives the embodiment, its DoF and the observation keys).
        seed: Sent with each reset, so a seeded remote policy replays the same episode.
        protocol: "gr00t" or "openpi".
        host, port: Where the server listens.
        timeout_s: Longest wait for a connection or an answer; then `RemotePolicyError` names host:port.
        execute_steps: Play only the first N steps of each chunk (receding horizon); None plays all.
        wrist_actions: "chunk_relative" (egosim's convention, what `egosim serve` sends), "absolute"
            (wrist targets in the frame of the state's wrist poses, converted against the observed
            pose: what GR00T's server returns, since its `decode_action` turns relative-EEF
            predictions into absolute ones using the state), or "auto": chunk_relative for egosim's
            servers (they say so: `egosim_info` endpoint, `egosim` metadata), absolute for other
            gr00t servers, chunk_relative for other openpi servers.
        api_token: GR00T's optional `api_token` / openpi's `Api-Key` header.

    The client adapts to the server: a GR00T server's `get_modality_config` names the keys, history
    (delta indices) and cameras it reads; an openpi server from egosim lists its observation keys in
    its metadata. Servers without those get the embodiment's default GR00T head
    (`egosim.policies.remote.keys`), or every observation key.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, protocol: str | None = None, host: str = "localhost",
                 port: int | None = None, timeout_s: float = 15.0, execute_steps: int | None = None,
                 wrist_actions: str = "auto", api_token: str | None = None) -> None:
        check_remote_options(protocol, host, port, timeout_s, execute_steps, wrist_actions, api_token)
        base = env.unwrapped
        self._base = base
        self.embodiments = (base.embodiment.name,)
        self.hand_dof = base.embodiment.dof
        self.action_dim = int(base.action_space.shape[0])
        self.protocol, self.host, self.port = protocol, host, int(port)
        self.execute_steps, self.wrist_actions = execute_steps, wrist_actions
        self._seed = seed
        self._session = secrets.token_hex(8)  # tells this client's episodes apart on a shared server
        obs_keys = set(base.observation_space.spaces)
        if protocol == "gr00t":
            from egosim.policies.remote import gr00t, keys

            self._client = gr00t.Gr00tClient(host, port, timeout_s, api_token)
            self._client.call("ping", requires_input=False)
            if wrist_actions == "auto":
                try:  # egosim's servers answer this extra endpoint; GR00T's answer "Unknown endpoint"
                    info = self._client.call("egosim_info", requires_input=False)
                    said = info.get("wrist_actions") if isinstance(info, dict) else None
                    self.wrist_actions = said if said in WRIST_ACTIONS[1:] else "chunk_relative"
                except RemotePolicyError:
                    self.wrist_actions = "absolute"
            configs = self._client.call("get_modality_config", requires_input=False)
            self.modality = (keys.modality_from_configs(configs) if isinstance(configs, dict) and configs
                             else keys.DEFAULT_MODALITY[base.embodiment.name])
            gr00t.check_modality(self.modality, self.hand_dof, obs_keys)
            depth = 1 - min(min(self.modality.video_deltas, default=0), 0)
            self._frames = {keys.CAMERA_ALIASES[k]: deque(maxlen=depth) for k in self.modality.video_keys}
        else:
            from egosim.policies.remote import openpi

            self._client = openpi.OpenpiClient(host, port, timeout_s, api_token)
            meta = self._client.egosim
            if meta is not None:
                if meta.get("action_dim") not in (None, self.action_dim):
                    raise RemotePolicyError(
                        f"openpi policy server {host}:{port} serves {meta.get('embodiment')!r} with "
                        f"{meta.get('action_dim')}-D actions; this env ({base.embodiment.name}) takes {self.action_dim}-D")
                missing = sorted(set(meta.get("observation_keys") or ()) - obs_keys)
                if missing:
                    raise RemotePolicyError(f"openpi policy server {host}:{port} reads {missing}, which the env's "
                                            f"observation lacks (it has {sorted(obs_keys)})")
            self._obs_keys = set(meta["observation_keys"]) if meta and meta.get("observation_keys") else None
            if wrist_actions == "auto":
                said = (meta or {}).get("wrist_actions")
                self.wrist_actions = said if said in WRIST_ACTIONS[1:] else "chunk_relative"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validates options without connecting (the registry's up-front check)."""
        check_remote_options(**options)

    def reset(self, seed: int | None = None) -> None:
        seed = self._seed if seed is None else seed
        init = getattr(self._base, "initial_state", None)
        options: dict[str, Any] = {"seed": seed, "session": self._session}
        if isinstance(init, Mapping) and init.get("id") is not None:
            options["initial_state"] = int(init["id"])
        if self.protocol == "gr00t":
            for frames in self._frames.values():
                frames.clear()
            self._client.call("reset", {"options": options})
        elif self._client.egosim is not None and self._client.egosim.get("reset"):
            from egosim.policies.remote.openpi import RESET_KEY

            self._client.call({RESET_KEY: options})

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        where = f"{self.protocol} policy server {self.host}:{self.port}"
        if self.protocol == "gr00t":
            from egosim.policies.remote import gr00t

            for cam, frames in self._frames.items():
                frames.append(np.asarray(observation[cam], dtype=np.uint8))
            obs = gr00t.encode_observation(observation, self._frames, self.modality, self.hand_dof)
            reply = self._client.call("get_action", {"observation": obs, "options": {"session": self._session}})
            chunk = gr00t.decode_action(reply, self.modality, self.hand_dof, where)
        else:
            from egosim.policies.remote import openpi

            reply = self._client.call(openpi.encode_observation(observation, self._obs_keys))
            chunk = openpi.decode_actions(reply, self.action_dim, where)
        if not np.isfinite(chunk).all():
            raise RemotePolicyError(f"{where} returned non-finite actions")
        if self.execute_steps is not None:
            chunk = chunk[: self.execute_steps]
        if self.wrist_actions == "absolute":
            chunk = absolute_to_chunk_relative(chunk, np.asarray(observation["state"], dtype=np.float64), self.hand_dof)
        return chunk

    def close(self) -> None:
        self._client.close()


def absolute_to_chunk_relative(chunk: NDArray[np.float64], state: NDArray[np.float64],
                               hand_dof: int) -> NDArray[np.float64]:
    """Wrist targets in the rig frame -> relative to the current wrist pose W (dW_k = W^-1 A_k).

    W is the observed wrist pose of `state` (per side: xyz + rot6d, as in the action); hand joints pass.
    """
    out = np.array(chunk, dtype=np.float64)
    for off in (0, 9 + hand_dof):
        pos, rot = state[off: off + 3], rot6d_to_matrix(state[off + 3: off + 9])
        out[:, off: off + 3] = (chunk[:, off: off + 3] - pos) @ rot  # rot.T @ (a - p), row-wise
        out[:, off + 3: off + 9] = matrix_to_rot6d(rot.T @ rot6d_to_matrix(chunk[:, off + 3: off + 9]))
    return out
