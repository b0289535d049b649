"""Remote policies: evaluate a policy served elsewhere, and serve any egosim policy.

Two wire protocols, each byte-compatible with its origin so external models plug in unchanged:

- `gr00t`: NVIDIA Isaac-GR00T's inference protocol (`gr00t/policy/server_client.py`): ZMQ REQ/REP,
  msgpack with numpy arrays as `{"__ndarray_class__": True, "as_npy": <np.save bytes>}`, requests
  `{"endpoint": name, "data": {...}}`, endpoints `ping`, `get_action`, `reset`,
  `get_modality_config`, errors as `{"error": message}`.
- `openpi`: Physical Intelligence's openpi websocket protocol (`openpi_client`): msgpack-numpy frames,
  the server sends its metadata on connect, then answers each observation dict with
  `{"actions": (horizon, D)}`; an error is a text frame with the traceback.

`egosim.policies.remote.policy.RemotePolicy` is the client (policy kind `remote`);
`egosim.policies.remote.server.serve_policy` serves a local policy (`egosim serve`). Heavy imports
(zmq, websockets, msgpack) happen in the submodules, so listing policy kinds stays cheap.
"""

from __future__ import annotations

from egosim.errors import EgosimError

PROTOCOLS = ("gr00t", "openpi")


class RemotePolicyError(EgosimError, RuntimeError):
    """A remote policy could not be reached, timed out, or answered with an error or a bad reply."""


__all__ = ["PROTOCOLS", "RemotePolicyError"]
