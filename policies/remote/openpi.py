"""openpi's websocket protocol (`openpi_client.websocket_client_policy`, `openpi.serving.websocket_policy_server`).

Wire: a websocket at `ws://host:port`; on connect the server sends its metadata (a msgpack-numpy map);
then each binary frame from the client is an observation dict and the server answers with a dict
holding `"actions"` (horizon, D). An error is a text frame (the server's traceback or message), after
which openpi's server closes the connection. egosim's observation keys travel unchanged (`ego_view`,
`left_wrist_view`, `right_wrist_view`, `state`, `instruction`, `privileged`).

egosim's server adds `"egosim": {...}` to its metadata (embodiment, action_dim, observation_keys,
`reset`: true); an egosim client then sends `{"__egosim_reset__": {"seed": s, "initial_state": i}}`
at each episode start, which other openpi servers never receive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.policies.remote import RemotePolicyError
from egosim.policies.remote.wire import openpi_packb, openpi_unpackb

RESET_KEY = "__egosim_reset__"


class OpenpiClient:
    """An openpi `WebsocketClientPolicy` with timeouts and errors that name the server."""

    def __init__(self, host: str, port: int, timeout_s: float = 15.0, api_key: str | None = None) -> None:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        self.host, self.port, self.timeout_s = host, int(port), float(timeout_s)
        self.uri = host if host.startswith("ws") else f"ws://{host}:{self.port}"
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        try:
            # __enter__: the connection is closed by close(); websockets >= 17.1 warns about a plain call
            self._ws = connect(self.uri, compression=None, max_size=None, additional_headers=headers,
                               open_timeout=self.timeout_s).__enter__()
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise RemotePolicyError(
                f"cannot connect to openpi policy server {self.host}:{self.port} ({type(exc).__name__}: {exc}); "
                "is `egosim serve protocol=openpi` or openpi's serve_policy.py running there?") from None
        self.metadata = self._recv("the metadata")
        if not isinstance(self.metadata, dict):
            raise RemotePolicyError(f"openpi policy server {self.host}:{self.port} sent metadata of type "
                                    f"{type(self.metadata).__name__}, expected a map")

    def _recv(self, what: str) -> Any:
        from websockets.exceptions import ConnectionClosed

        try:
            message = self._ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            raise RemotePolicyError(f"openpi policy server {self.host}:{self.port} sent no {what} within "
                                    f"{self.timeout_s:g} s") from None
        except ConnectionClosed as exc:
            raise RemotePolicyError(f"openpi policy server {self.host}:{self.port} closed the connection "
                                    f"before sending {what} ({exc})") from None
        if isinstance(message, str):
            raise RemotePolicyError(f"openpi policy server {self.host}:{self.port} failed: {message.strip()}")
        return openpi_unpackb(message)

    def call(self, message: Mapping[str, Any]) -> Any:
        """Sends one msgpack-numpy frame and returns the decoded answer."""
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(openpi_packb(dict(message)))
        except ConnectionClosed as exc:
            raise RemotePolicyError(f"openpi policy server {self.host}:{self.port} closed the connection ({exc})") from None
        return self._recv("an answer")

    @property
    def egosim(self) -> dict[str, Any] | None:
        """The egosim part of the metadata (None for servers that are not egosim's)."""
        meta = self.metadata.get("egosim")
        return meta if isinstance(meta, dict) else None

    def close(self) -> None:
        self._ws.close()


def encode_observation(obs: Mapping[str, Any], keys: set[str] | None) -> dict[str, Any]:
    """The observation as sent: egosim's keys (only `keys` when the server listed the ones it reads)."""
    out = {k: v for k, v in obs.items() if keys is None or k in keys}
    if "instruction" in out:
        out["instruction"] = str(out["instruction"])
    return out


def decode_actions(reply: Any, action_dim: int, where: str) -> NDArray[np.float64]:
    """The `"actions"` entry of a reply as an egosim chunk (horizon, action_dim); a single step is (1, D)."""
    if not isinstance(reply, dict) or "actions" not in reply:
        keys = sorted(reply) if isinstance(reply, dict) else type(reply).__name__
        raise RemotePolicyError(f"{where} answered without 'actions' (got {keys})")
    arr = np.asarray(reply["actions"], dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != action_dim or arr.shape[0] < 1:
        raise RemotePolicyError(f"{where} answered actions of shape {arr.shape}; expected (horizon, {action_dim})")
    return arr
