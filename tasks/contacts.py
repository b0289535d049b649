"""Contact queries shared by task predicates (which bodies a hand touches)."""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np


class ContactQuery:
    """Answers "does any hand touch body B" from the current contact list, vectorised."""

    def __init__(self, model: mujoco.MjModel, hand_bodies: Iterable[int]) -> None:
        self._geom_body = model.geom_bodyid.copy()
        self._is_hand = np.zeros(model.nbody, dtype=bool)
        self._is_hand[list(hand_bodies)] = True

    def hand_touches(self, data: mujoco.MjData, body: int) -> bool:
        n = data.ncon
        if n == 0:
            return False
        b = self._geom_body[data.contact.geom[:n]]
        return bool(np.any((b[:, 0] == body) & self._is_hand[b[:, 1]]) or np.any((b[:, 1] == body) & self._is_hand[b[:, 0]]))
