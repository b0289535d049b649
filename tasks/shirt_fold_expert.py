"""Scripted expert for shirt_fold, written once against semantic handles (any embodiment).

Each hand folds its own sleeve over the body at the same time: the wrist is turned so that, in the
`pinch` grasp pose, the thumb's pad and its partner's pad sit side by side at the same height
(measured on the hand model by forward kinematics); the hand comes down in `pre_pinch` over the
sleeve's outer edge, with the pads just pressing the cloth, closes to `pinch` (the cloth's pinch
model anchors the cloth between the pads), turns the sleeve over the shoulder line like a page (the
pinch moves along a half circle about the fold line to its mirror image over the body), opens just
above the body (the pinch releases) and rises.
Then both hands pinch the hem, 20 cm either side of the centre line, and turn the bottom up the same
way over a line 40 % of the body's length above the hem. Everything acts through the action (wrist
targets and grasp poses); the expert reads the laid-out shirt pose (privileged) only.

Measured (pinch=anchor): Sharpa Wave solved 16 of evaluation states 0-18 (about 10 s simulated
each); 13, 14 and 18 scored 1.0 but ended `messy` (5 % of the cloth above 5 layers), so no success;
states 19-49 not yet run (the slow test); Dex3 reaches 0.4 on state 0 (its workspace ends
short of the sleeves, see shirt_fold's docstring). With pinch=friction: 0.0 on state 0 (the pinched
cloth slides out, as cloth.md found).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES, Embodiment
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.cloth import BODY_L, BODY_W, CLOTH_RADIUS, SLEEVE_L, SLEEVE_W, pad_geom
from egosim.tasks.scripted import HandScript, Pose, Stage, step_scripts

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

ARC_DEG = (30, 60, 90, 120, 150, 172)  # waypoints of the page turn (0 = grab, 180 = drop)
PRESS = 0.002  # how far the pads press into the cloth's top surface when pinching
HEM_INSET = 0.045  # pinch the hem this far above its edge (the Sharpa's wrist reaches x >= 0.15)
HEM_Y = 0.20  # hem pinch points either side of the centre line
FOLD_LINE = 0.40  # the bottom fold's line, as a fraction of the body's length above the hem


@dataclass(frozen=True)
class PadPinch:
    """Wrist-frame geometry of a level pad-to-pad pinch, measured on the hand model.

    Attributes:
        rot: Wrist orientation (world) with the palm down and the closed pads level.
        point: Midpoint of the two closed pads' centres (wrist frame).
        pad_radius: The thumb pad's radius.
    """

    rot: NDArray[np.float64]
    point: NDArray[np.float64]
    pad_radius: float

    @classmethod
    def measure(cls, emb: Embodiment, side: str) -> PadPinch:
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]
        data.qpos[qadr] = emb.grasp_pose("pinch", side)
        mujoco.mj_kinematics(model, data)
        sites = [model.site(n).id for n in emb.fingertip_sites]
        partner = min(sites[1:], key=lambda s: float(np.linalg.norm(data.site_xpos[s] - data.site_xpos[sites[0]])))
        wrist = model.site(emb.wrist_site).id
        r, p = data.site_xmat[wrist].reshape(3, 3), data.site_xpos[wrist]
        (ga, ra), (gb, _) = pad_geom(model, sites[0]), pad_geom(model, partner)
        a, b = r.T @ (data.geom_xpos[ga] - p), r.T @ (data.geom_xpos[gb] - p)
        v = HOME_WRIST_MAT @ (b - a)
        axis = np.cross(v, [0.0, 0.0, 1.0])
        level = axis_angle_to_matrix(axis / np.linalg.norm(axis), -math.asin(v[2] / np.linalg.norm(v)))
        return cls(rot=level @ HOME_WRIST_MAT, point=0.5 * (a + b), pad_radius=ra)

    def wrist_for(self, point: NDArray[np.float64]) -> Pose:
        """The wrist pose that puts the pads' midpoint at `point` (world)."""
        return point - self.rot @ self.point, self.rot


class ShirtFoldExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task = env.task
        self.emb = env.embodiment
        self.pinch = {s: PadPinch.measure(self.emb, s) for s in SIDES}
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.scripts = {s: HandScript(s, self._stages(s)) for s in SIDES}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        return step_scripts(env, self.scripts, {s: self.emb.grasp_pose("open", s) for s in SIDES})

    # ------------------------------------------------------------------ stages
    def _world(self, u: float, v: float, height: float) -> NDArray[np.float64]:
        """Shirt-frame point (u to the neck, v to the shirt's left) at `height` above the table."""
        x, y, yaw = self.task.shirt_pose.tolist()
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([x + c * u - s * v, y + s * u + c * v, TABLE_HEIGHT + height])

    def _pinch_carry(self, side: str, tag: str, grab: tuple[float, float], drop: tuple[float, float],
                     start: Callable[[], bool] = lambda: True) -> list[Stage]:
        """Pinch the cloth at shirt-frame `grab`, carry it to `drop`, let go, rise."""
        pp = self.pinch[side]
        press = pp.pad_radius + 2 * CLOTH_RADIUS - PRESS
        hand = lambda name: (lambda: self.emb.grasp_pose(name, side))  # noqa: E731
        at = lambda uv, h: (lambda: pp.wrist_for(self._world(uv[0], uv[1], h)))  # noqa: E731
        # Turn the pinched edge over like a page: along a half circle about the fold line (the
        # midpoint of grab and drop), so the cloth between the fold line and the pinch stays taut
        # and lands flat instead of falling in a heap.
        g, dr = np.asarray(grab), np.asarray(drop)
        mid, r = 0.5 * (g + dr), 0.5 * float(np.linalg.norm(dr - g))
        arc = [(tuple(mid + (g - mid) * math.cos(a)), press + r * math.sin(a)) for a in np.radians(ARC_DEG)]
        return [
            Stage(f"{tag}_above", at(grab, 0.08), hand("pre_pinch"), max_s=4.0, done=start),
            Stage(f"{tag}_down", at(grab, press), hand("pre_pinch"), speed=0.4, max_s=2.0, tol_pos=0.002),
            Stage(f"{tag}_close", at(grab, press), hand("pinch"), min_s=0.5, max_s=1.5, hand_blend_s=0.3),
            *[Stage(f"{tag}_arc{k}", at(uv, h), hand("pinch"), speed=0.4, max_s=2.0, tol_pos=0.01)
              for k, (uv, h) in enumerate(arc)],
            Stage(f"{tag}_open", at(arc[-1][0], arc[-1][1]), hand("open"), min_s=0.4, max_s=1.0),
            Stage(f"{tag}_up", at(arc[-1][0], arc[-1][1] + 0.12), hand("open"), max_s=2.0),
        ]

    def _stages(self, side: str) -> list[Stage]:
        sign = 1.0 if side == "left" else -1.0
        # Sleeve: pinch 3.5 cm inside its outer edge, half-way along it; drop at the mirror image
        # about the shoulder line (|y| = BODY_W / 2).
        u = BODY_L / 2 - SLEEVE_L / 2
        v = sign * (BODY_W / 2 + SLEEVE_W - 0.035)
        sleeve = self._pinch_carry(side, "sleeve", (u, v), (u, sign * BODY_W - v))
        other = "right" if side == "left" else "left"
        both_done = lambda: self.scripts[other].at("hem_above")  # noqa: E731
        g = -BODY_L / 2 + HEM_INSET
        line = -BODY_L / 2 + FOLD_LINE * BODY_L
        hem = self._pinch_carry(side, "hem", (g, sign * HEM_Y), (2 * line - g, sign * HEM_Y), start=both_done)
        home = np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64)
        return sleeve + hem + [Stage("home", lambda: (home, HOME_WRIST_MAT), lambda: self.emb.grasp_pose("open", side),
                                     max_s=3.0)]
