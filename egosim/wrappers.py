"""Gymnasium wrappers for reinforcement learning: normalised actions and flat state observations.

`NormalizedAction` gives RL libraries (which assume a symmetric box) actions in [-1, 1]. Per side, left
then right, the normalised action is `[pos (3), rotvec (3), joints (dof)]`, so it has 2 x (6 + dof)
dimensions, not the env's 2 x (9 + dof):

- `pos` x `max_wrist_speed * dt` is the wrist position delta (metres, in the commanded wrist frame),
  so +-1 is the speed limit, as in the env's own action box.
- `rotvec` x `max_wrist_rot_speed * dt` is an axis-angle vector (radians) whose norm is then clipped to
  `max_wrist_rot_speed * dt`; it is converted to the env's rot6d. An axis-angle vector is used rather
  than rot6d because rot6d has 6 numbers for 3 degrees of freedom: a policy sampling rot6d in [-1, 1]^6
  would mostly produce large, arbitrary rotations (every one clipped to the speed limit), and zero
  would not mean "do not rotate". Here 0 is the identity and the map is smooth around it.
- `joints` maps [-1, 1] linearly onto each joint's [low, high] target range.

Inputs outside [-1, 1] are clipped first. `to_normalized` is the inverse (for demonstrations, or to
check the map); it is exact for any env action inside the box whose rotation is within the limit.

`StateOnly` replaces the Dict observation with one float32 vector, `state` then `privileged`: what an
RL baseline on privileged state reads, with no images or text.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from egosim.actions import WRIST_DIM
from egosim.errors import ConfigError, InvalidActionError
from egosim.geometry import matrix_to_rot6d, rot6d_to_matrix

ROT_DIM = 3  # axis-angle
NORM_WRIST_DIM = 3 + ROT_DIM


def rotvec_to_matrix(rotvec: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rodrigues' formula: an axis-angle vector (radians) to a rotation matrix."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def matrix_to_rotvec(mat: NDArray[np.float64]) -> NDArray[np.float64]:
    """The axis-angle vector of a rotation matrix (angle in [0, pi]); inverse of `rotvec_to_matrix`."""
    m = np.asarray(mat, dtype=np.float64)
    angle = float(np.arccos(np.clip((np.trace(m) - 1.0) * 0.5, -1.0, 1.0)))
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    if angle < 1e-9:
        return 0.5 * axis  # small-angle limit: the skew part is the vector itself
    if np.pi - angle < 1e-6:  # axis from the symmetric part when sin(angle) ~ 0
        w, v = np.linalg.eigh((m + m.T) * 0.5)
        return v[:, int(np.argmax(w))] * angle
    return axis * (angle / (2.0 * np.sin(angle)))


def _base(env: gym.Env) -> Any:
    base = env.unwrapped
    for attr in ("embodiment", "control_dt", "action_space"):
        if not hasattr(base, attr):
            raise ConfigError(f"NormalizedAction wraps egosim envs; {type(base).__name__} has no {attr!r}")
    return base


class NormalizedAction(gym.ActionWrapper):
    """Actions in [-1, 1]^(2 x (6 + dof)) mapped onto an egosim env's action space (module docstring).

    Why: RL algorithms sample from symmetric boxes and assume every dimension is free; the env's
    rot6d is over-parameterised and its joint targets live on per-joint ranges.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        base = _base(env)
        self.dof = int(base.embodiment.dof)
        self.max_step = float(base.embodiment.max_wrist_speed * base.control_dt)
        self.max_rot = float(base.embodiment.max_wrist_rot_speed * base.control_dt)
        self.env_dim = 2 * (WRIST_DIM + self.dof)
        box = base.action_space
        if box.shape != (self.env_dim,):
            raise ConfigError(f"env action space has shape {box.shape}; expected ({self.env_dim},) for dof {self.dof}")
        self._low, self._high = box.low.astype(np.float64), box.high.astype(np.float64)
        self.norm_dim = 2 * (NORM_WRIST_DIM + self.dof)
        self.action_space = spaces.Box(-1.0, 1.0, (self.norm_dim,), dtype=np.float32)

    def _sides(self) -> list[tuple[int, int]]:
        """(env offset, normalised offset) of each side's block."""
        return [(0, 0), (WRIST_DIM + self.dof, NORM_WRIST_DIM + self.dof)]

    def action(self, action: Any) -> NDArray[np.float64]:
        """Maps a normalised action to the env's action (clipping it to [-1, 1] first)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.norm_dim,):
            raise InvalidActionError(f"normalised action has shape {a.shape}; expected ({self.norm_dim},)")
        if not np.all(np.isfinite(a)):
            raise InvalidActionError(f"normalised action has non-finite values at indices "
                                     f"{np.flatnonzero(~np.isfinite(a)).tolist()}")
        a = np.clip(a, -1.0, 1.0)
        out = np.empty(self.env_dim)
        for e, n in self._sides():
            out[e : e + 3] = a[n : n + 3] * self.max_step
            rv = a[n + 3 : n + 6] * self.max_rot
            norm = float(np.linalg.norm(rv))
            if norm > self.max_rot:
                rv *= self.max_rot / norm
            out[e + 3 : e + 9] = matrix_to_rot6d(rotvec_to_matrix(rv))
            lo, hi = self._low[e + 9 : e + 9 + self.dof], self._high[e + 9 : e + 9 + self.dof]
            out[e + 9 : e + 9 + self.dof] = lo + (a[n + 6 : n + 6 + self.dof] + 1.0) * 0.5 * (hi - lo)
        return out

    def to_normalized(self, env_action: Any) -> NDArray[np.float32]:
        """Inverse of `action`: an env action to [-1, 1] (rotations beyond the limit are clipped)."""
        a = np.asarray(env_action, dtype=np.float64).reshape(-1)
        if a.shape != (self.env_dim,):
            raise InvalidActionError(f"env action has shape {a.shape}; expected ({self.env_dim},)")
        out = np.empty(self.norm_dim)
        for e, n in self._sides():
            out[n : n + 3] = a[e : e + 3] / self.max_step
            out[n + 3 : n + 6] = matrix_to_rotvec(rot6d_to_matrix(a[e + 3 : e + 9])) / self.max_rot
            lo, hi = self._low[e + 9 : e + 9 + self.dof], self._high[e + 9 : e + 9 + self.dof]
            span = np.where(hi > lo, hi - lo, 1.0)
            out[n + 6 : n + 6 + self.dof] = 2.0 * (a[e + 9 : e + 9 + self.dof] - lo) / span - 1.0
        rot = [n + 3 for _e, n in self._sides()]
        for r in rot:  # keep the rotation's direction when its norm exceeds the limit
            norm = float(np.linalg.norm(out[r : r + 3]))
            if norm > 1.0:
                out[r : r + 3] /= norm
        return np.clip(out, -1.0, 1.0).astype(np.float32)


class StateOnly(gym.ObservationWrapper):
    """A flat float32 observation: `state` then `privileged` (no images, no instruction).

    Why: RL baselines on privileged state take one vector; images would only cost render time. The env
    must be built with `privileged=True`; `obs_mode="state"` avoids rendering cameras nobody reads.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or "state" not in space.spaces:
            raise ConfigError(f"StateOnly needs a Dict observation with 'state'; got {space}")
        if "privileged" not in space.spaces:
            raise ConfigError("StateOnly needs the privileged object state; build the env with privileged=True "
                              f"(observation keys: {', '.join(space.spaces)})")
        self.state_dim = int(space["state"].shape[0])
        self.privileged_dim = int(space["privileged"].shape[0])
        n = self.state_dim + self.privileged_dim
        self.observation_space = spaces.Box(-np.inf, np.inf, (n,), dtype=np.float32)

    def observation(self, observation: dict[str, Any]) -> NDArray[np.float32]:
        """Concatenates `state` and `privileged` into one float32 vector."""
        return flat_state(observation)


def flat_state(observation: dict[str, Any]) -> NDArray[np.float32]:
    """`state` then `privileged` of an egosim observation, as `StateOnly` returns it."""
    return np.concatenate([np.asarray(observation["state"], dtype=np.float32).reshape(-1),
                           np.asarray(observation["privileged"], dtype=np.float32).reshape(-1)])


__all__ = ["NormalizedAction", "StateOnly", "flat_state", "matrix_to_rotvec", "rotvec_to_matrix"]
