"""Shirt rolling (EgoScale task I "Shirt Rolling", a main task).

Scene: the T-shirt (`egosim.tasks.cloth`: a 232-vertex flex cloth, 0.54 x 0.63 m body, 0.18 m
sleeves) lies flat on the table, hem toward the robot, slightly left of centre; an open basket
(inside 0.40 x 0.26 m, walls 10 cm high, standing on the table) is on the right near the robot.
Instruction: "Roll the T-shirt and put it into the basket."

Rubric (progress, EgoScale I: 0 / 0.3 initial fold / 0.5 several folds or partial roll / 0.8 rolled
into a compact shape / 1.0 placed in the basket). Predicates on the cloth's vertex positions, each only
while the cloth is settled (no vertex anchored by the pinch model, every vertex slower than 0.05 m/s);
"raised" means lying on another layer (more than 10 mm above the table, a flat layer's centre is at 5
mm):
- `initial_fold` (0.3): >= 15 % of the vertices raised.
- `partial_roll` (0.5): >= 35 % raised and some vertex on a third layer (> 25 mm).
- `rolled` (0.8): a compact roll: >= 60 % raised, some vertex on a third layer, and the cloth's
  horizontal extent across its long axis (principal axes of the vertices' x-y) at most 0.15 m.
- `in_basket` (1.0): >= 90 % of the vertices inside the basket's walls (x-y) and below its rim.
Success: `rolled` reached and the cloth in the basket now.
Horizon: 60 s.

Privileged state (40): the cloth's 11 keypoints (x, y, z each, order `cloth.KEYPOINTS`), the
laid-out shirt pose (x, y, yaw), the number of vertices anchored by each hand (left, right), the
basket's centre (x, y).

Options: `pinch` = `anchor` (default) | `friction` (see `egosim.tasks.cloth`), given as
`task_options={"pinch": ...}`; reported in every step's `info["pinch"]`.

No scripted expert yet: `make_expert` raises `ConfigError` (a do-nothing placeholder would score 0
and look like a result).

Version history:
- v0: first version.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError
from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task
from egosim.tasks.cloth import CLOTH_PRIVILEGED_DIM, CLOTH_RADIUS, LAYER, ClothTask

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

BASKET_HALF = (0.20, 0.13)  # inner half sizes (x, y), m
BASKET_WALL = 0.01  # wall thickness
BASKET_H = 0.10  # wall height
RAISED = CLOTH_RADIUS + 0.5 * LAYER  # 10 mm
THIRD_LAYER = CLOTH_RADIUS + 2 * LAYER  # 25 mm
ROLL_WIDTH = 0.15  # a roll is at most this wide across its axis


class ShirtRoll(ClothTask, Task):
    name: ClassVar[str] = "shirt_roll"
    env_name: ClassVar[str] = "ShirtRoll"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"main", "cloth"})
    instruction: ClassVar[str] = "Roll the T-shirt and put it into the basket."
    rubric: ClassVar[Rubric] = Rubric(
        mode="progress",
        milestones=(
            Milestone("initial_fold", 0.3, "an initial fold: 15 % of the cloth on another layer"),
            Milestone("partial_roll", 0.5, "several folds or a partial roll: 35 % raised, three layers"),
            Milestone("rolled", 0.8, "rolled into a compact shape at most 15 cm across"),
            Milestone("in_basket", 1.0, "the cloth inside the basket"),
        ),
    )
    horizon_s: ClassVar[float] = 60.0
    privileged_dim: ClassVar[int] = CLOTH_PRIVILEGED_DIM + 2
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "shirt_roll-v0.json"
    eval_seed: ClassVar[int] = 20261127

    def __init__(self, pinch: str = "anchor") -> None:
        ClothTask.__init__(self, pinch)
        self.last: dict[str, bool] = {}
        self.basket_xy = np.array([0.45, -0.45])

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        self.build_cloth(spec, embodiment)
        spec.add_material(name="basket", rgba=[0.62, 0.45, 0.25, 1])
        basket = spec.worldbody.add_body(name="basket", pos=[*self.basket_xy, TABLE_HEIGHT])
        hx, hy = BASKET_HALF
        t, h = BASKET_WALL / 2, BASKET_H / 2
        walls = {"basket_front": ([hx + t, 0, h], [t, hy + 2 * t, h]), "basket_back": ([-hx - t, 0, h], [t, hy + 2 * t, h]),
                 "basket_left": ([0, hy + t, h], [hx, t, h]), "basket_right": ([0, -hy - t, h], [hx, t, h])}
        for name, (pos, size) in walls.items():
            basket.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=pos, size=size, material="basket")
        # The basket's floor is the table plane under it (a flex on a box makes 5 contacts per vertex).
        basket.add_geom(name="basket_floor", type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0, 0, 0.001],
                        size=[hx, hy, 0.001], material="basket", contype=0, conaffinity=0)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        self.bind_cloth(model, rig, embodiment)
        self._basket = model.body("basket").id

    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """The shirt within 2.5 cm of (0.56, 0.06), turned up to 6 degrees; the basket within 2 cm of
        (0.45, -0.45)."""
        return {
            "shirt_xy": [round(float(rng.uniform(0.535, 0.585)), 4), round(float(rng.uniform(0.035, 0.085)), 4)],
            "shirt_yaw": round(float(rng.uniform(-0.1, 0.1)), 4),
            "basket_xy": [round(float(rng.uniform(0.43, 0.47)), 4), round(float(rng.uniform(-0.47, -0.43)), 4)],
        }

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        x, y = state["shirt_xy"]
        self.place_shirt(data, x, y, state["shirt_yaw"])
        self.basket_xy = np.array(state["basket_xy"], dtype=np.float64)
        model.body_pos[self._basket][:2] = self.basket_xy

    # ------------------------------------------------------------------ rubric
    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        if not self.settled(data):
            self.last = dict.fromkeys(self.rubric.names, False)
            return self.last
        v = self.vertices(data)
        z = v[:, 2] - TABLE_HEIGHT
        raised = float(np.mean(z > RAISED))
        third = float(z.max()) > THIRD_LAYER
        xy = v[:, :2] - v[:, :2].mean(axis=0)
        _, vecs = np.linalg.eigh(xy.T @ xy)
        across = xy @ vecs[:, 0]  # the minor principal axis
        compact = float(across.max() - across.min()) <= ROLL_WIDTH
        bx, by = self.basket_xy.tolist()
        inside = (np.abs(v[:, 0] - bx) < BASKET_HALF[0]) & (np.abs(v[:, 1] - by) < BASKET_HALF[1]) & (z < BASKET_H)
        self.last = {
            "initial_fold": raised >= 0.15,
            "partial_roll": raised >= 0.35 and third,
            "rolled": raised >= 0.6 and third and compact,
            "in_basket": float(np.mean(inside)) >= 0.9,
        }
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return bool(reached.get("rolled") and self.last.get("in_basket"))

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.concatenate([self.cloth_privileged(data), self.basket_xy])

    def make_expert(self, env: EgosimEnv) -> Policy:
        """No scripted roll yet (issue #11): refuse rather than play a do-nothing policy."""
        raise ConfigError(
            "shirt_roll has no scripted expert yet (issue #11): run policy=expert on the other tasks "
            "(`egosim list`), or evaluate another policy kind on shirt_roll"
        )
