"""Card sorting (EgoScale task II).

Scene: a grey stepped card stand near one side of the table holds two cards upright in two slots:
on the front (robot-side), raised step the coloured card to sort, and behind it, 4 cm lower, the
rest of the deck (a card with a white face). Three card holders stand in a row across the middle of
the table, one red, one green, one blue; each is a low base with a slot (two walls) a card stands
in. Instruction: "Pick up the card and sort it into the correct card holder." The correct holder
is the one whose colour matches the card's.

Randomised per initial state: the card's colour, the holders' colour order, each holder's position
(+-1.5 cm in x, +-1 cm in y) and yaw (+-10 deg), the stand's side (left or right), position and yaw
(+-15 deg).

Rubric (progress: the furthest milestone reached counts; EgoScale task II):
- `several_cards_lifted` (0.3): a poor grasp: both cards' centres more than 1 cm above where they
  started, at one instant, while a hand touches one of them.
- `card_picked` (0.5): exactly one card picked: a card touched by a hand, its centre 3 cm above
  where it started, while the other card stays within 1 cm of its start height.
- `card_placed` (0.7): a card stands in a holder's slot, any card, any holder: the centre of its
  bottom edge inside the slot volume (between the walls, within the walls' length, at most 1 cm above
  the slot floor), near-vertical (its long axis within 25 deg of vertical), at rest (slower than
  5 cm/s) and released (no hand touches it). A card in the wrong holder, or with visible disturbance,
  scores this.
- `sorted_minor_disturbance` (0.9): the coloured card placed (as above) in the holder of its colour,
  with at most minor disturbance: every holder and the stand moved less than 3 cm and turned less
  than 15 deg from where they started, and the deck card's bottom edge (unless the deck card itself
  stands in a holder) moved less than 3 cm; the deck card leaning over in its slot is no disturbance.
- `sorted_clean` (1.0): the same with a clean scene: every holder, the stand and the deck card's
  bottom edge moved less than 1 cm, the holders and the stand turned less than 5 deg.
Success: the coloured card stands, released and at rest, in the holder of its colour with at most
minor disturbance, at the current instant (EgoScale's binary success is the task completed end to
end, i.e. the card sorted into the correct holder; a minor nudge of the scene does not undo that).
Horizon: 20 s.

Privileged state (45): coloured card pos (3) + quat wxyz (4), deck card pos + quat (7), stand
pos + quat (7), holders 0..2 pos + quat (3 x 7; bases' bottom centres, slot along the body's y
axis), one-hot index of the correct holder (3).

Objects: cards are 63 x 88 mm (a poker card) and 2 mm thick (a real card is 0.3 mm; 2 mm keeps
box-box contacts stable at the rig's 2 ms timestep and leaves the fingertips something to squeeze),
4 g, with torsional friction (condim 4: fingertips touch a card over an area, so a pinched card
does not swing about the pinch axis like a pendulum). Each card's local x is its face normal, y its
width, z its height (up when standing). The holders are 150 g (weighted bases, so that a card pushed
into the slot does not slide them), slots 10 mm wide and 25 mm deep (a card in one leans at most
~18 deg); the stand is 400 g with 4 mm wide, 20 mm deep slots (a card in one leans at most ~6 deg;
8 mm let the two cards lean 24 deg toward each other). A card lying flat on a bare table cannot be
picked up by two fingertips in MuJoCo without scraping the table, so the stand presents the card
upright with its top 68 mm exposed, as a card dispenser or a card rack does.

Both hands: a thumb-index pinch across the card's thickness works on the 22-DoF Sharpa hand and on
the 7-DoF Dex3 (thumb + index + middle), so the task is expected of both.

Version history:
- v0: first version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.errors import InvalidChoiceError
from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task
from egosim.tasks.contacts import ContactQuery

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

COLOURS: tuple[str, ...] = ("red", "green", "blue")
RGBA: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.12, 1.0),
    "green": (0.15, 0.65, 0.25, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
}
CARD_T, CARD_W, CARD_H = 0.001, 0.0315, 0.044  # card half sizes: thickness, width, height (m)
CARD_MASS = 0.004
SLOT_GAP = 0.010  # holder slot width between the walls
SLOT_DEPTH = 0.025  # holder wall height above the base
WALL_T = 0.005  # wall thickness (holders and stand)
WALL_HALF_LEN = 0.0375  # walls' half length along the slot
HOLDER_BASE = (0.025, 0.045, 0.006)  # holder base half sizes; the slot runs along y
HOLDER_MASS = 0.15
STAND_STEP = 0.05  # top of the stand's front step (front slot floor) above the table
STAND_LOW = 0.01  # top of the stand's back part (back slot floor)
STAND_SLOT_DEPTH = 0.02
STAND_SLOT_GAP = 0.004  # narrow: a card standing in it leans at most ~6 deg
STAND_PITCH = 0.06  # x distance between the front and back slots
STAND_MASS = 0.4
HOLDER_Y = (-0.10, 0.0, 0.10)  # nominal holder row (rig y)
LIFT_PICK, LIFT_ANY = 0.03, 0.01
CLEAN_POS, CLEAN_ROT = 0.01, math.radians(5.0)
MINOR_POS, MINOR_ROT = 0.03, math.radians(15.0)
_COS_UPRIGHT = math.cos(math.radians(25.0))
REST_SPEED = 0.05


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _quat_angle(q1: list[float], q2: list[float]) -> float:
    """Angle (rad) of the rotation between two unit quaternions (plain floats: runs per step)."""
    d = abs(sum(a * b for a, b in zip(q1, q2)))
    return 2.0 * math.acos(min(1.0, d))


class CardSort(Task):
    name: ClassVar[str] = "card_sort"
    env_name: ClassVar[str] = "CardSort"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"main"})
    instruction: ClassVar[str] = "Pick up the card and sort it into the correct card holder."
    rubric: ClassVar[Rubric] = Rubric(
        mode="progress",
        milestones=(
            Milestone("several_cards_lifted", 0.3, "poor grasp: both cards lifted 1 cm at once while touched"),
            Milestone("card_picked", 0.5, "exactly one card lifted 3 cm in a hand"),
            Milestone("card_placed", 0.7, "a card released standing in a holder's slot (any holder, any disturbance)"),
            Milestone("sorted_minor_disturbance", 0.9, "the card in the holder of its colour, scene moved < 3 cm / 15 deg"),
            Milestone("sorted_clean", 1.0, "the card in the holder of its colour, scene moved < 1 cm / 5 deg"),
        ),
    )
    horizon_s: ClassVar[float] = 20.0
    privileged_dim: ClassVar[int] = 45
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "card_sort-v0.json"
    eval_seed: ClassVar[int] = 20261126

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="card_stand", rgba=[0.45, 0.45, 0.48, 1])
        spec.add_material(name="card_back", rgba=[0.95, 0.95, 0.93, 1])
        wb = spec.worldbody
        box = mujoco.mjtGeom.mjGEOM_BOX
        friction = [1.0, 0.005, 0.0001]

        for name, material in (("card", "card_back"), ("deck_card", "card_back")):
            body = wb.add_body(name=name, pos=[0.5, 0.3, TABLE_HEIGHT + 0.2])
            body.add_freejoint(name=f"{name}_free")
            # condim 4: torsional friction, so a card pinched between two fingertips does not swing
            # about the pinch axis like a pendulum (real fingertips touch over an area, not a point).
            body.add_geom(name=f"{name}_geom", type=box, size=[CARD_T, CARD_W, CARD_H], mass=CARD_MASS,
                          material=material, friction=[1.0, 0.02, 0.0001], condim=4)

        for k in range(3):
            h = wb.add_body(name=f"holder{k}", pos=[0.5, HOLDER_Y[k], TABLE_HEIGHT])
            h.add_freejoint(name=f"holder{k}_free")
            bx, by, bz = HOLDER_BASE
            h.add_geom(name=f"holder{k}_base", type=box, size=[bx, by, bz], pos=[0, 0, bz],
                       mass=HOLDER_MASS * 0.8, rgba=[1, 1, 1, 1], friction=friction)
            for j, sgn in enumerate((-1, 1)):
                h.add_geom(name=f"holder{k}_wall{j}", type=box, size=[WALL_T / 2, WALL_HALF_LEN, SLOT_DEPTH / 2],
                           pos=[sgn * (SLOT_GAP + WALL_T) / 2, 0, 2 * bz + SLOT_DEPTH / 2],
                           mass=HOLDER_MASS * 0.1, rgba=[1, 1, 1, 1], friction=friction)

        st = wb.add_body(name="card_stand", pos=[0.45, -0.25, TABLE_HEIGHT])
        st.add_freejoint(name="card_stand_free")
        fx, bxc = -STAND_PITCH / 2, STAND_PITCH / 2  # front and back slot centres (stand x)
        half_x = STAND_PITCH / 2
        st.add_geom(name="card_stand_step", type=box, size=[half_x / 2 + 0.005, WALL_HALF_LEN, STAND_STEP / 2],
                    pos=[fx, 0, STAND_STEP / 2], mass=STAND_MASS * 0.55, material="card_stand", friction=friction)
        st.add_geom(name="card_stand_low", type=box, size=[half_x / 2 + 0.005, WALL_HALF_LEN, STAND_LOW / 2],
                    pos=[bxc, 0, STAND_LOW / 2], mass=STAND_MASS * 0.25, material="card_stand", friction=friction)
        for slot, (cx, floor) in enumerate(((fx, STAND_STEP), (bxc, STAND_LOW))):
            for j, sgn in enumerate((-1, 1)):
                st.add_geom(name=f"card_stand_slot{slot}_wall{j}", type=box,
                            size=[WALL_T / 2, WALL_HALF_LEN, STAND_SLOT_DEPTH / 2],
                            pos=[cx + sgn * (STAND_SLOT_GAP + WALL_T) / 2, 0, floor + STAND_SLOT_DEPTH / 2],
                            mass=STAND_MASS * 0.05, material="card_stand", friction=friction)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        def jnt(name: str) -> tuple[int, int]:
            j = model.joint(name).id
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])

        self._card_q, self._card_v = jnt("card_free")
        self._deck_q, self._deck_v = jnt("deck_card_free")
        self._stand_q, _ = jnt("card_stand_free")
        self._holder_q = [jnt(f"holder{k}_free")[0] for k in range(3)]
        self._card_body = model.body("card").id
        self._deck_body = model.body("deck_card").id
        self._holder_body = [model.body(f"holder{k}").id for k in range(3)]
        self._card_geom = model.geom("card_geom").id
        self._holder_geoms = [
            [model.geom(f"holder{k}_{part}").id for part in ("base", "wall0", "wall1")] for k in range(3)
        ]
        hand_bodies = set().union(*(h.bodies for h in rig.hands.values()))
        self.contacts = ContactQuery(model, hand_bodies)
        self.last: dict[str, bool] = {}
        self.correct_holder = 0
        self.card_colour = COLOURS[0]

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Stand on a random side, holders in a row across the middle in a random colour order."""
        side = "left" if rng.uniform() < 0.5 else "right"
        sy = float(rng.uniform(0.21, 0.26)) * (1 if side == "left" else -1)
        return {
            "card_colour": COLOURS[int(rng.integers(3))],
            "holder_colours": [COLOURS[int(i)] for i in rng.permutation(3)],
            "holder_xy": [
                [round(float(rng.uniform(0.485, 0.515)), 4), round(HOLDER_Y[k] + float(rng.uniform(-0.01, 0.01)), 4)]
                for k in range(3)
            ],
            "holder_yaw": [round(float(rng.uniform(-np.radians(10), np.radians(10))), 4) for _ in range(3)],
            "stand_side": side,
            "stand_xy": [round(float(rng.uniform(0.42, 0.48)), 4), round(sy, 4)],
            "stand_yaw": round(float(rng.uniform(-np.radians(15), np.radians(15))), 4),
        }

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        for k in range(3):
            x, y = state["holder_xy"][k]
            q = self._holder_q[k]
            data.qpos[q : q + 7] = [x, y, TABLE_HEIGHT, *_yaw_quat(state["holder_yaw"][k])]
            for g in self._holder_geoms[k]:
                model.geom_rgba[g] = RGBA[state["holder_colours"][k]]
        self.card_colour = state["card_colour"]
        self.correct_holder = list(state["holder_colours"]).index(self.card_colour)
        model.geom_rgba[self._card_geom] = RGBA[self.card_colour]

        sx, sy = state["stand_xy"]
        yaw = state["stand_yaw"]
        c, s = math.cos(yaw), math.sin(yaw)
        data.qpos[self._stand_q : self._stand_q + 7] = [sx, sy, TABLE_HEIGHT, *_yaw_quat(yaw)]
        # The cards stand in the stand's slots, resting on the slot floors.
        for q, (dx, floor) in ((self._card_q, (-STAND_PITCH / 2, STAND_STEP)), (self._deck_q, (STAND_PITCH / 2, STAND_LOW))):
            data.qpos[q : q + 7] = [sx + c * dx, sy + s * dx, TABLE_HEIGHT + floor + CARD_H + 1e-4, *_yaw_quat(yaw)]

        # Reference poses for the disturbance and lift predicates (plain floats).
        self._start = {
            "card": data.qpos[self._card_q : self._card_q + 7].tolist(),
            "deck": data.qpos[self._deck_q : self._deck_q + 7].tolist(),
            "stand": data.qpos[self._stand_q : self._stand_q + 7].tolist(),
            "holders": [data.qpos[q : q + 7].tolist() for q in self._holder_q],
        }
        self.last = {}

    # ------------------------------------------------------------------ state queries
    def card_pose(self, data: mujoco.MjData, which: str = "card") -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(centre, rotation matrix) of the coloured card (`card`) or the deck card (`deck`)."""
        if which not in ("card", "deck"):
            raise InvalidChoiceError("card", which, ("card", "deck"))
        b = self._card_body if which == "card" else self._deck_body
        return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

    def holder_pose(self, data: mujoco.MjData, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(bottom centre, rotation matrix) of holder k; the slot runs along its y axis."""
        b = self._holder_body[k]
        return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

    @staticmethod
    def slot_floor_height() -> float:
        """Height of a holder's slot floor above the holder's bottom."""
        return 2 * HOLDER_BASE[2]

    def _slot_of(self, data: mujoco.MjData, body: int, v: int, touched: set[int]) -> int:
        """Index of the holder whose slot card `body` stands in (released, at rest), else -1."""
        if body in touched:
            return -1
        mat = data.xmat[body]
        if float(mat[8]) < _COS_UPRIGHT:
            return -1
        vx, vy, vz = data.qvel[v : v + 3].tolist()
        if vx * vx + vy * vy + vz * vz > REST_SPEED * REST_SPEED:
            return -1
        cx, cy, cz = data.xpos[body].tolist()
        # The centre of the card's bottom edge (its local -z end).
        bx, by, bz = cx - CARD_H * float(mat[2]), cy - CARD_H * float(mat[5]), cz - CARD_H * float(mat[8])
        floor = 2 * HOLDER_BASE[2]
        for k, hb in enumerate(self._holder_body):
            hx, hy, hz = data.xpos[hb].tolist()
            hm = data.xmat[hb].tolist()
            dx, dy, dz = bx - hx, by - hy, bz - hz
            # Holder frame: columns of the rotation matrix are its axes.
            lx = hm[0] * dx + hm[3] * dy + hm[6] * dz
            ly = hm[1] * dx + hm[4] * dy + hm[7] * dz
            lz = hm[2] * dx + hm[5] * dy + hm[8] * dz
            if abs(lx) < SLOT_GAP / 2 + 0.002 and abs(ly) < WALL_HALF_LEN and floor - 0.005 < lz < floor + 0.01:
                return k
        return -1

    def disturbance(self, data: mujoco.MjData, skip_deck: bool) -> tuple[float, float]:
        """(largest displacement (m), largest turn (rad)) of the holders, the stand and, unless it
        stands in a holder itself, the deck card's bottom edge, from where they started."""
        objs = [(q, s) for q, s in zip(self._holder_q, self._start["holders"])]
        objs.append((self._stand_q, self._start["stand"]))
        dmax, rmax = 0.0, 0.0
        for q, s in objs:
            now = data.qpos[q : q + 7].tolist()
            dmax = max(dmax, math.dist(now[:3], s[:3]))
            rmax = max(rmax, _quat_angle(now[3:], s[3:]))
        if not skip_deck:
            # The deck card counts by its bottom edge: leaning over in its slot is no disturbance.
            m = data.xmat[self._deck_body]
            cx, cy, cz = data.xpos[self._deck_body].tolist()
            bottom = (cx - CARD_H * float(m[2]), cy - CARD_H * float(m[5]), cz - CARD_H * float(m[8]))
            sx, sy, sz = self._start["deck"][:3]
            dmax = max(dmax, math.dist(bottom, (sx, sy, sz - CARD_H)))
        return dmax, rmax

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        # Plain floats: this runs every control step (see benchmarks/env_step.py).
        touched = self.contacts.touched_by_hand(data)
        card_held, deck_held = self._card_body in touched, self._deck_body in touched
        card_lift = float(data.xpos[self._card_body][2]) - self._start["card"][2]
        deck_lift = float(data.xpos[self._deck_body][2]) - self._start["deck"][2]
        several = (card_held or deck_held) and card_lift > LIFT_ANY and deck_lift > LIFT_ANY
        picked = (card_held and card_lift > LIFT_PICK and deck_lift < LIFT_ANY) or (
            deck_held and deck_lift > LIFT_PICK and card_lift < LIFT_ANY
        )
        card_slot = self._slot_of(data, self._card_body, self._card_v, touched)
        deck_slot = self._slot_of(data, self._deck_body, self._deck_v, touched)
        minor = clean = False
        if card_slot == self.correct_holder:
            d, r = self.disturbance(data, skip_deck=deck_slot >= 0)
            minor = d < MINOR_POS and r < MINOR_ROT
            clean = d < CLEAN_POS and r < CLEAN_ROT
        self.last = {
            "several_cards_lifted": several,
            "card_picked": picked,
            "card_placed": card_slot >= 0 or deck_slot >= 0,
            "sorted_minor_disturbance": minor,
            "sorted_clean": clean,
        }
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return bool(self.last.get("sorted_minor_disturbance", False))

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        onehot = np.zeros(3)
        onehot[self.correct_holder] = 1.0
        return np.concatenate(
            [
                data.qpos[self._card_q : self._card_q + 7],
                data.qpos[self._deck_q : self._deck_q + 7],
                data.qpos[self._stand_q : self._stand_q + 7],
                *[data.qpos[q : q + 7] for q in self._holder_q],
                onehot,
            ]
        )

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.card_sort_expert import CardSortExpert

        return CardSortExpert(env)
