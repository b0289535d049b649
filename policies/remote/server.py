"""Serve any egosim policy over GR00T's or openpi's protocol (`egosim serve`).

A server holds one policy and the env it was built for (the env gives the spaces that requests are
checked against). Requests are answered one at a time (a lock), so one episode at a time is what a
stateful policy sees; a malformed request gets an error reply and the server goes on serving.

Policies that read the simulator through their env rather than the observation (the scripted
experts: `needs_privileged` kinds) are served in *shadow* mode: the client's reset sends its seed and
evaluation initial state, the server resets its own env the same way, and after each answer steps
it through the chunk it sent. MuJoCo is deterministic, so the server's env follows the client's
episode step for step and the expert's actions equal those it would give locally. That holds for
simulated clients that play every step of each chunk (egosim's `remote` kind does); a real robot
needs a policy that reads only the observation.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

import egosim
from egosim.actions import chunk_to_step_actions
from egosim.errors import ConfigError, EgosimError, InvalidChoiceError, reject_unknown_keys
from egosim.policies.remote import PROTOCOLS, RemotePolicyError
from egosim.policy import Policy

DEFAULT_PORTS = {"gr00t": 5555, "openpi": 8000}


@dataclass
class ServeConfig:
    """What `egosim serve` serves (mirrors `egosim/conf/serve.yaml`).

    Attributes:
        policy: Policy kind to serve (`egosim list`).
        checkpoint: Checkpoint for kinds that load one.
        task, embodiment: The env the policy is built for; requests are checked against its spaces.
        protocol: "gr00t" (ZMQ) or "openpi" (websocket).
        host: Address to bind ("0.0.0.0": every interface).
        port: TCP port; None: 5555 for gr00t (GR00T's default), 8000 for openpi (openpi's).
        seed: The policy's construction seed (each client reset reseeds it).
        policy_args: Extra options of the served kind.
    """

    policy: str = "expert"
    checkpoint: str | None = None
    task: str = "pen_in_bin"
    embodiment: str = "sharpa_wave"
    protocol: str = "gr00t"
    host: str = "0.0.0.0"
    port: int | None = None
    seed: int = 0
    policy_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> ServeConfig:
        """Builds and validates a config from a dict (Hydra's composed config)."""
        import dataclasses

        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "serve config")
        out = cls(**{k: cfg[k] for k in cfg})
        out.policy_args = dict(out.policy_args or {})
        if out.protocol not in PROTOCOLS:
            raise InvalidChoiceError("protocol", out.protocol, PROTOCOLS)
        if out.port is None:
            out.port = DEFAULT_PORTS[out.protocol]
        if isinstance(out.port, bool) or not isinstance(out.port, int) or not 0 <= out.port <= 65535:
            raise ConfigError(f"port must be an integer in 0..65535 (0: any free port), got {out.port!r}")
        if not isinstance(out.host, str) or not out.host:
            raise ConfigError(f"host must be an address to bind, got {out.host!r}")
        if isinstance(out.seed, bool) or not isinstance(out.seed, int):
            raise ConfigError(f"seed must be an integer, got {out.seed!r}")
        return out


class PolicyService:
    """The protocol-independent part of a server: checks observations, resets, acts (under a lock)."""

    def __init__(self, policy: Policy, env: gym.Env, *, shadow: bool = False, name: str = "") -> None:
        self.policy, self.env, self.shadow, self.name = policy, env, shadow, name
        base = env.unwrapped
        self.embodiment = base.embodiment.name
        self.hand_dof = base.embodiment.dof
        self.action_dim = int(base.action_space.shape[0])
        self.space = base.observation_space
        self.lock = threading.Lock()
        self._session: object | None = None  # shadow mode: who reset the env last

    @property
    def observation_keys(self) -> tuple[str, ...]:
        return tuple(self.space.spaces)

    def reset(self, options: Mapping[str, Any] | None, session: object = None) -> dict[str, Any]:
        """Starts an episode: reseeds the policy (and, in shadow mode, resets the env the same way).

        `session` names the client (its connection, or the id a gr00t client sends in its options);
        in shadow mode only that client may then act, since one env follows one episode.
        """
        options = dict(options or {})
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise RemotePolicyError(f"reset option seed must be an integer, got {seed!r}")
        with self.lock:
            if self.shadow:
                init = options.get("initial_state")
                if init is None:
                    raise RemotePolicyError(
                        f"policy {self.name!r} reads the simulator through its env (shadow mode): reset needs "
                        "options {'seed': int, 'initial_state': int}")
                self.env.reset(seed=seed, options={"initial_state": init})
                self._session = session
            self.policy.reset(seed=seed)
        return {}

    def check_observation(self, obs: Any) -> dict[str, Any]:
        """Checks keys, shapes and dtypes against the env's observation space; names what is wrong."""
        if not isinstance(obs, dict):
            raise RemotePolicyError(f"observation must be a map, got {type(obs).__name__}")
        out: dict[str, Any] = {}
        for key, space in self.space.spaces.items():
            if key not in obs:
                raise RemotePolicyError(f"observation lacks {key!r}; expected keys {sorted(self.space.spaces)}")
            val = obs[key]
            if isinstance(space, gym.spaces.Box):
                if not isinstance(val, np.ndarray) or val.shape != space.shape or val.dtype != space.dtype:
                    got = f"{val.dtype} {val.shape}" if isinstance(val, np.ndarray) else type(val).__name__
                    raise RemotePolicyError(f"observation {key!r} must be {space.dtype} {space.shape}, got {got}")
                if val.dtype.kind == "f" and not np.isfinite(val).all():
                    raise RemotePolicyError(f"observation {key!r} has non-finite values")
            elif not isinstance(val, str):
                raise RemotePolicyError(f"observation {key!r} must be a string, got {type(val).__name__}")
            out[key] = val if not isinstance(val, np.ndarray) or val.flags.writeable else val.copy()
        return out

    def act(self, obs: Any, session: object = None) -> NDArray[np.float64]:
        """The policy's chunk (H, action_dim) for a checked observation."""
        obs = self.check_observation(obs)
        with self.lock:
            if self.shadow and (self._session is None or self._session != session):
                raise RemotePolicyError(
                    f"policy {self.name!r} is served in shadow mode (its env follows one client's episode): "
                    "send reset (seed, initial_state) first, and play one episode at a time (workers=1)"
                    + ("; another client reset it since" if self._session is not None else ""))
            chunk = np.asarray(self.policy.act(obs), dtype=np.float64)
            if chunk.ndim == 1:
                chunk = chunk[None]
            if self.shadow:
                for action in chunk_to_step_actions(chunk, self.hand_dof):
                    self.env.step(action)
        return chunk


class Gr00tServer:
    """GR00T's `PolicyServer` loop (REP socket, endpoints ping/kill/get_action/reset/get_modality_config)."""

    def __init__(self, service: PolicyService, host: str = "0.0.0.0", port: int = 5555,
                 api_token: str | None = None) -> None:
        import zmq

        from egosim.policies.remote import keys

        self.service, self.api_token = service, api_token
        base_mod = keys.DEFAULT_MODALITY[service.embodiment]
        cams = [k for k in base_mod.video_keys if keys.CAMERA_ALIASES[k] in service.observation_keys]
        state = list(keys.SLICES) + ([keys.PRIVILEGED_KEY] if keys.PRIVILEGED_KEY in service.observation_keys else [])
        self.modality = keys.Modality(tuple(cams), (0,), tuple(state), (0,), keys.SLICES, (0,), base_mod.language_key)
        self._zmq = zmq
        self._ctx = zmq.Context()
        self._socket = self._ctx.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        bind_host = "*" if host in ("0.0.0.0", "*") else host
        try:
            self._socket.bind(f"tcp://{bind_host}:{port if port else '*'}")
        except zmq.ZMQError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc})") from None
        self.port = int(self._socket.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self._stop = threading.Event()

    def modality_configs(self) -> dict[str, Any]:
        from egosim.policies.remote.wire import modality_config_json

        return {name: modality_config_json(list(k), list(d)) for name, (k, d) in self.modality.as_configs().items()}

    def handle(self, message: bytes) -> Any:
        """One request -> its reply object (errors become `{"error": message}`, as GR00T's server does)."""
        from egosim.policies.remote import gr00t
        from egosim.policies.remote.wire import gr00t_unpackb

        try:
            request = gr00t_unpackb(message)
            if not isinstance(request, dict):
                raise RemotePolicyError(f"request must be a map with 'endpoint', got {type(request).__name__}")
            if self.api_token is not None and request.get("api_token") != self.api_token:
                return {"error": "Unauthorized: Invalid API token"}
            endpoint = request.get("endpoint", "get_action")
            data = request.get("data") or {}
            if not isinstance(data, dict):
                raise RemotePolicyError(f"request 'data' must be a map, got {type(data).__name__}")
            if endpoint == "ping":
                return {"status": "ok", "message": "Server is running"}
            if endpoint == "kill":
                self._stop.set()
                return {"status": "ok", "message": "Server is stopping"}
            if endpoint == "get_modality_config":
                return self.modality_configs()
            if endpoint == "egosim_info":  # egosim's own: lets egosim clients pick the action convention
                return {"version": egosim.__version__, "policy": self.service.name,
                        "embodiment": self.service.embodiment, "action_dim": self.service.action_dim,
                        "wrist_actions": "chunk_relative"}
            if endpoint == "reset":
                options = data.get("options")
                return self.service.reset(options, _session_of(options))
            if endpoint == "get_action":
                unknown = sorted(set(data) - {"observation", "options"})
                if unknown or "observation" not in data:
                    raise RemotePolicyError(f"get_action takes data {{'observation', 'options'}}, got {sorted(data)}")
                obs = gr00t.decode_observation(data["observation"], self.modality, self.service.hand_dof)
                chunk = self.service.act(obs, _session_of(data.get("options")))
                return [gr00t.encode_action(chunk, self.modality, self.service.hand_dof), {}]
            raise RemotePolicyError(f"Unknown endpoint: {endpoint!r}; endpoints: {', '.join(gr00t.ENDPOINTS)}")
        except EgosimError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a policy bug must not take the server down
            return {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"}

    def serve_forever(self) -> None:
        """Answers requests until `shutdown()` or a `kill` request."""
        from egosim.policies.remote.wire import gr00t_packb

        zmq = self._zmq
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                reply = self.handle(self._socket.recv())
                try:
                    out = gr00t_packb(reply)
                except Exception as exc:  # noqa: BLE001
                    out = gr00t_packb({"error": f"cannot encode the reply: {exc}"})
                self._socket.send(out)
        finally:
            self._socket.close(linger=0)
            self._ctx.term()

    def shutdown(self) -> None:
        self._stop.set()


class OpenpiServer:
    """openpi's `WebsocketPolicyServer`: metadata on connect, then `{"actions": (H, D)}` per observation."""

    def __init__(self, service: PolicyService, host: str = "0.0.0.0", port: int = 8000,
                 metadata: Mapping[str, Any] | None = None) -> None:
        from websockets.sync.server import serve

        self.service = service
        self.metadata = {**(metadata or {}), "egosim": {
            "version": egosim.__version__, "policy": service.name, "embodiment": service.embodiment,
            "action_dim": service.action_dim, "observation_keys": list(service.observation_keys), "reset": True,
            "wrist_actions": "chunk_relative"}}
        try:
            self._server = serve(self._handler, host, port, compression=None, max_size=None,
                                 process_request=_health_check)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc})") from None
        self.port = int(self._server.socket.getsockname()[1])

    def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        from egosim.policies.remote.openpi import RESET_KEY
        from egosim.policies.remote.wire import openpi_packb, openpi_unpackb

        try:
            ws.send(openpi_packb(self.metadata))
            while True:
                message = ws.recv()
                try:
                    if isinstance(message, str):
                        raise RemotePolicyError("expected a binary msgpack frame, got a text frame")
                    obs = openpi_unpackb(message)
                    if isinstance(obs, dict) and RESET_KEY in obs:
                        reply = {"reset": self.service.reset(obs[RESET_KEY], id(ws))}
                    else:
                        reply = {"actions": self.service.act(obs, id(ws))}
                except Exception as exc:  # noqa: BLE001 - as openpi: the error goes back as a text frame
                    detail = str(exc) if isinstance(exc, EgosimError) else traceback.format_exc(limit=5)
                    ws.send(f"egosim policy server error: {detail}")
                    ws.close(code=1011, reason="policy server error; message in the previous frame")
                    return
                ws.send(openpi_packb(reply))
        except ConnectionClosed:
            return

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()


def _session_of(options: Any) -> object:
    """The client id an egosim gr00t client sends in its options (None for other clients)."""
    return options.get("session") if isinstance(options, dict) else None


def _health_check(connection: Any, request: Any) -> Any:
    """`GET /healthz` answers 200 OK (as openpi's server does); other paths go on to the websocket."""
    if request.path == "/healthz":
        import http

        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


def make_server(service: PolicyService, protocol: str, host: str = "0.0.0.0", port: int | None = None,
                **kwargs: Any) -> Gr00tServer | OpenpiServer:
    """A bound (not yet serving) server of `protocol` for `service`; port 0 picks a free port."""
    if protocol not in PROTOCOLS:
        raise InvalidChoiceError("protocol", protocol, PROTOCOLS)
    port = DEFAULT_PORTS[protocol] if port is None else port
    return Gr00tServer(service, host, port, **kwargs) if protocol == "gr00t" else OpenpiServer(service, host, port, **kwargs)


def build_service(cfg: ServeConfig) -> PolicyService:
    """The env and policy of a serve config (policy kinds decide the observation mode and shadowing)."""
    from egosim.policies import get_policy_kind, make_policy
    from egosim.tasks import make_env

    kind = get_policy_kind(cfg.policy)
    env = make_env(cfg.task, cfg.embodiment, obs_mode="rgb" if kind.needs_images else "state",
                   privileged=kind.needs_privileged)
    policy = make_policy(cfg.policy, env, seed=cfg.seed, checkpoint=cfg.checkpoint, **cfg.policy_args)
    return PolicyService(policy, env, shadow=kind.needs_privileged, name=cfg.policy)
