"""Contact queries shared by task predicates (which bodies a hand touches)."""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np


class ContactQuery:
    """Answers "which bodies does a hand touch" from the current contact list.

    Predicates run every control step, so this reads the contact list once and loops in plain
    Python over the few contacts there are (numpy's per-call cost dominated otherwise).
    """

    def __init__(self, model: mujoco.MjModel, hand_bodies: Iterable[int]) -> None:
        self._geom_body = model.geom_bodyid.copy()
        is_hand = np.zeros(model.nbody, dtype=bool)
        is_hand[list(hand_bodies)] = True
        self._is_hand = is_hand.tolist()

    def touched_by_hand(self, data: mujoco.MjData) -> set[int]:
        """Ids of the bodies, other than the hands' own, that a hand touches now."""
        n = data.ncon
        if n == 0:
            return set()
        is_hand = self._is_hand
        out = set()
        for a, b in self._geom_body[data.contact.geom[:n]].tolist():
            if is_hand[a] != is_hand[b]:
                out.add(b if is_hand[a] else a)
        return out

    def hand_touches(self, data: mujoco.MjData, body: int) -> bool:
        """Whether any hand touches `body` now."""
        return body in self.touched_by_hand(data)
