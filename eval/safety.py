"""Safety measurements taken while an episode plays, for the pre-real-robot gate (`egosim validate`).

What a robot operator worries about before a real session, measured in sim at the control rate:
hand joints driven into their limits (counted as arrivals: a joint that rests at a limit, as many do in
an open hand, counts once when it gets there, not every step it stays), how fast the wrists move, and
the largest contact force a hand exerts. The numbers are per episode and go into the results store.
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

from egosim.embodiment import SIDES

LIMIT_MARGIN = 0.01  # a joint within this fraction of its range from a limit is at the limit


class SafetyMonitor:
    """Accumulates per-episode safety figures from an `EgosimEnv` (call `sample()` after each step).

    Reads the env's named handles (hand joints, wrist sites, hand bodies); nothing here depends on
    which hand it is.
    """

    def __init__(self, env: Any) -> None:
        base = env.unwrapped
        self._model, self._data = base.model, base.data
        self._dt = float(base.control_dt)
        m = self._model
        qadr_to_joint = {int(m.jnt_qposadr[j]): j for j in range(m.njnt)}
        self._joints = []
        for side in SIDES:
            h = base.rig.hands[side]
            qadr = [int(a) for a in h.joint_qpos]
            rng = m.jnt_range[[qadr_to_joint[a] for a in qadr]]
            margin = LIMIT_MARGIN * (rng[:, 1] - rng[:, 0])
            self._joints.append((np.asarray(qadr), rng[:, 0] + margin, rng[:, 1] - margin))
        self._wrist_sites = [base.rig.hands[s].wrist_site for s in SIDES]
        is_hand = np.zeros(m.nbody, dtype=bool)
        for s in SIDES:
            is_hand[list(base.rig.hands[s].bodies)] = True
        self._geom_is_hand = is_hand[m.geom_bodyid].tolist()
        self._force = np.zeros(6)
        self.reset()

    def reset(self) -> None:
        """Starts a new episode (call after `env.reset`)."""
        d = self._data
        self._prev = [d.site_xpos[s].copy() for s in self._wrist_sites]
        self._at_limit = [self._limit_mask(i) for i in range(len(self._joints))]
        self._limit_hits = 0
        self._max_speed = 0.0
        self._max_force = 0.0

    def sample(self) -> None:
        """Adds the current control step."""
        d = self._data
        for i, was in enumerate(self._at_limit):
            now = self._limit_mask(i)
            self._limit_hits += int((now & ~was).sum())
            self._at_limit[i] = now
        for i, sid in enumerate(self._wrist_sites):
            p = d.site_xpos[sid]
            prev = self._prev[i]
            v = math.dist(p.tolist(), prev.tolist()) / self._dt
            if v > self._max_speed:
                self._max_speed = v
            prev[:] = p
        is_hand = self._geom_is_hand
        f = self._force
        for i in range(d.ncon):
            g1, g2 = d.contact.geom[i]
            if is_hand[g1] != is_hand[g2]:
                mujoco.mj_contactForce(self._model, d, i, f)
                if f[0] > self._max_force:
                    self._max_force = float(f[0])

    def _limit_mask(self, i: int) -> np.ndarray:
        idx, lo, hi = self._joints[i]
        q = self._data.qpos[idx]
        return (q <= lo) | (q >= hi)

    def summary(self) -> dict[str, float]:
        """joint_limit_hits (arrivals of a hand joint at a limit), max_wrist_speed (m/s),
        max_contact_force (N, normal force of the strongest hand contact)."""
        return {
            "joint_limit_hits": self._limit_hits,
            "max_wrist_speed": round(self._max_speed, 4),
            "max_contact_force": round(self._max_force, 3),
        }
