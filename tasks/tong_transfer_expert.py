"""Scripted expert for tong_transfer, written once against semantic handles (any embodiment).

The right hand does the task; the left hand stays home. The right hand takes the tongs in a
top-down claw across both arms, 7.5 cm from the hinge: the thumb outside one arm, the fingers
outside the other (Dex3: index and middle). Where each digit's links are is measured on the hand
model by forward kinematics (`ClawGrip`: the thumb's links in the claw pose, the finger links along
open -> claw and past it, in the frame of the claw's closing direction), so the same script drives
any hand:

- the wrist is turned so the claw's closing direction lies across the tongs, the palm tilted
  half way toward levelling that direction (Sharpa's claw closes almost parallel to its palm, so
  it hardly tilts; Dex3's at 31 degrees to its palm: levelled fully, its thumb met the near arm's
  top edge and pushed the tongs down instead of together; not tilted, its fingertips stayed above
  the far arm; 42 % of the way solved fewer states),
  and placed so the thumb's lowest link is 3 mm above the table and its inner side 3 mm outside
  the near arm;
- `pre`: thumb in the claw pose, fingers open (they hang outside the far arm or above it);
- `hold`: the fingers' links 2 cm inside the far arm's outer face: they push the tongs against the
  thumb and friction carries them;
- `squeeze`: 6 cm inside, and the thumb closed further where that moves it toward the fingers
  without lifting it off the arm (Dex3's does; Sharpa's turns under the palm): the arms close
  until the pads hold the fruit (the fingers' force limits set the squeeze).

Script: claw the tongs and lift them; carry them so the midpoint of the open pads lies above the
fruit (turned so the pads close across a lemon's short axis); measure again where the pads are held
and how the tongs are turned, and correct; lower the pads around the fruit (their centre 5 mm below
the fruit's, their lower edges 3-5 mm above the table: higher, Dex3 rolled the tongs while
squeezing a lemon); squeeze; lift the fruit over the basket's wall;
carry it above the basket; relax to `hold` (the spring opens the tongs and the fruit drops in);
carry the tongs back to where they lay; set them down; open the hand and lift it away. Everything
moves through physics: the wrist follows speed-limited targets, the fingers are position-controlled
and squeeze by their force limits. An episode takes about 9 s of the 25 s horizon.

Known weak spot: the grasp is sensitive to millimetres (a palm tilt changed by under a degree flips
a few Sharpa states); the failures left are fruit picks where the tongs roll or slip in the hand
during the squeeze (on Dex3, lemons: squeezing rolls the tongs about their long axis). Retrying a failed pick (open, re-measure, squeeze again)
was tried and solved fewer states.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES, Embodiment
from egosim.geometry import rotation_angle
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.scripted import HandScript, Pose, Stage, geom_extent, step_scripts, wrist_for_point
from egosim.tasks.tong_transfer import ARM_H, BASKET_H, GRIP_D, GRIP_OPEN

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

THUMB_CLEAR = 0.003  # the thumb's links this far outside the near arm's outer face
FINGER_PRESS = 0.02  # hold: the fingers' links this far inside the far arm's outer face
SQUEEZE_DEPTH = 0.06  # squeeze: this far inside (the arms stop them well before)
TIP_Z = 0.003  # the thumb's lowest point above the table while gripping
PAD_ABOVE = -0.005  # the pads' centre this far above the fruit's centre (below: negative)
THUMB_RISE = 0.005  # a squeezing thumb's lowest point may rise this much
TILT = 0.5  # how far the palm tilts to level the claw's closing direction (see the docstring)
MAX_ALPHA = 2.5  # extrapolate the open -> claw interpolation at most this far (clipped to limits)


def _rot_z(angle: float) -> NDArray[np.float64]:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _yaw_of(v: NDArray[np.float64]) -> float:
    return math.atan2(float(v[1]), float(v[0]))


def _wrap_half(a: float) -> float:
    """`a` modulo pi, in [-pi/2, pi/2): the smallest turn to an axis (direction does not matter)."""
    return (a + math.pi / 2) % math.pi - math.pi / 2


class ClawGrip:
    """Where a claw's thumb and fingers are, link by link, measured on the hand model by FK.

    The thumb takes its `claw` pose; the other fingers follow the open -> claw interpolation,
    extrapolated past the claw (`alpha` 0 = open, 1 = claw, clipped to the joint limits). Positions
    are coordinates in the grip frame (wrist frame, axes `e1, e2, e3`): `e1` is the closing
    direction (thumb tip -> fingertips' mean at the claw), `e2` the hand's lateral axis made
    orthogonal to it, `e3 = e1 x e2` (into the palm's side, the world's down while gripping).

    Attributes:
        basis: (3, 3) columns e1, e2, e3 in the wrist frame.
        thumb_inner: How far the thumb's links reach toward the fingers along e1 (only the links that
            reach down into the tongs' arm band, `band` above the thumb's lowest point).
        thumb_deep: The thumb links' lowest point (largest e3).
        thumb_lateral: The thumb tip site's e2 coordinate.
        finger_lateral: The fingertip sites' mean e2 coordinate (open hand).
        finger_inner: Per alpha, the finger links' (those carrying a fingertip site) nearest point to
            the thumb along e1.
        finger_deep: Per alpha, the finger links' lowest point.
        thumb_squeeze_alpha: How far to close the thumb when squeezing (past the claw where that
            moves its links toward the fingers).
    """

    def __init__(self, emb: Embodiment, side: str, band: float) -> None:
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]
        lim = emb.joint_limits(side)
        self.open, self.claw = emb.grasp_pose("open", side), emb.grasp_pose("claw", side)
        self.low, self.high = lim[:, 0], lim[:, 1]
        wrist = model.site(emb.wrist_site).id
        thumb, fingers = emb.fingertip_sites[0], emb.fingertip_sites[1:]

        def chain(site: str) -> set[int]:
            out, b = set(), int(model.site_bodyid[model.site(site).id])
            while b > 0:
                out.add(b)
                b = int(model.body_parentid[b])
            return out

        # The thumb's joints and links: the thumb tip body's ancestors, found on the model.
        thumb_bodies = chain(thumb)
        self.thumb_joints = np.array([int(model.jnt_bodyid[model.joint(j).id]) in thumb_bodies for j in emb.joint_names])
        solid = [g for g in range(model.ngeom) if model.geom_contype[g] or model.geom_conaffinity[g]]
        thumb_geoms = [g for g in solid if int(model.geom_bodyid[g]) in thumb_bodies - {int(model.body("hand").id)}]
        tip_bodies = {int(model.site_bodyid[model.site(f).id]) for f in fingers}
        finger_geoms = [g for g in solid if int(model.geom_bodyid[g]) in tip_bodies]

        def fk(q: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            data.qpos[:] = 0
            data.qpos[qadr] = q
            mujoco.mj_kinematics(model, data)
            return data.site_xpos[wrist].copy(), data.site_xmat[wrist].reshape(3, 3).copy()

        def site(name: str, p: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
            return r.T @ (data.site_xpos[model.site(name).id] - p)

        p, r = fk(self.pose(1.0))
        u = np.mean([site(f, p, r) for f in fingers], axis=0) - site(thumb, p, r)
        u[2] *= TILT
        e1 = u / np.linalg.norm(u)
        e2 = np.array([0.0, 1.0, 0.0]) - e1[1] * e1
        e2 /= np.linalg.norm(e2)
        self.basis = np.column_stack([e1, e2, np.cross(e1, e2)])

        def reach(g: int, v: NDArray[np.float64], p: NDArray[np.float64], r: NDArray[np.float64]) -> float:
            """The largest coordinate of geom g along the wrist-frame direction v."""
            w = r @ v
            return geom_extent(model, data, g, w) - float(w @ p)

        e1, e3 = self.basis[:, 0], self.basis[:, 2]

        def thumb_reach(alpha: float) -> tuple[float, float]:
            """(inner, deep) of the thumb's links with the thumb closed to `alpha`."""
            p, r = fk(self.combine(alpha, 0.0))
            deep = max(reach(g, e3, p, r) for g in thumb_geoms)
            low = [g for g in thumb_geoms if reach(g, e3, p, r) > deep - band]
            return max(reach(g, e1, p, r) for g in low), deep

        self.thumb_inner, self.thumb_deep = thumb_reach(1.0)
        # Squeezing, the thumb closes further if that moves it toward the fingers (Dex3's does;
        # Sharpa's thumb past its claw pose turns under the palm instead).
        # It must not rise off the arm's face while doing so (its lowest point stays within 5 mm).
        more = {}
        for a in np.linspace(1.0, 2.0, 21):
            inner, deep = thumb_reach(a)
            if deep > self.thumb_deep - THUMB_RISE:
                more[float(a)] = inner
        best = max(more, key=more.get)
        self.thumb_squeeze_alpha = best if more[best] > self.thumb_inner + 0.005 else 1.0
        p, r = fk(self.combine(1.0, 0.0))
        self.thumb_lateral = float(site(thumb, p, r) @ self.basis[:, 1])
        self.finger_lateral = float(np.mean([site(f, p, r) for f in fingers], axis=0) @ self.basis[:, 1])
        self.alphas = np.linspace(0.0, MAX_ALPHA, 101)
        inner, deep = [], []
        for a in self.alphas:
            p, r = fk(self.combine(1.0, a))
            inner.append(min(-reach(g, -e1, p, r) for g in finger_geoms))
            deep.append(max(reach(g, e3, p, r) for g in finger_geoms))
        self.finger_inner, self.finger_deep = np.array(inner), np.array(deep)

    def pose(self, alpha: float) -> NDArray[np.float64]:
        return np.clip(self.open + alpha * (self.claw - self.open), self.low, self.high)

    def combine(self, thumb_alpha: float, finger_alpha: float) -> NDArray[np.float64]:
        """The thumb closed to `thumb_alpha`, the other fingers to `finger_alpha`."""
        return np.where(self.thumb_joints, self.pose(thumb_alpha), self.pose(finger_alpha))

    def alpha_for_inner(self, coord: float) -> float:
        """The first alpha at which the fingers come as near the thumb as `coord` along e1."""
        below = np.nonzero(self.finger_inner <= coord)[0]
        return float(self.alphas[int(below[0]) if len(below) else int(np.argmin(self.finger_inner))])


class TongTransferExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task = env.task
        self.emb = env.embodiment
        side = "right"
        grip = ClawGrip(self.emb, side, band=ARM_H)
        self.grip = grip
        near = grip.thumb_inner + THUMB_CLEAR  # the near arm's outer face (e1 coordinate)
        far = near + GRIP_OPEN  # the far arm's outer face
        self.grip_center = grip.basis @ np.array([near + GRIP_OPEN / 2, grip.finger_lateral, grip.thumb_deep])
        self.pose = {
            "open": self.emb.grasp_pose("open", side),
            "pre": grip.combine(1.0, 0.0),
            "hold": grip.combine(1.0, grip.alpha_for_inner(far - FINGER_PRESS)),
            "squeeze": grip.combine(grip.thumb_squeeze_alpha, grip.alpha_for_inner(far - SQUEEZE_DEPTH)),
        }
        self.left_open = self.emb.grasp_pose("open", "left")
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.scripts = {"right": HandScript("right", self._stages()), "left": HandScript("left", self._idle("left"))}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        return step_scripts(env, self.scripts, {"left": self.left_open, "right": self.pose["open"]})

    # ------------------------------------------------------------------ helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Computes a stage's target the first time it is asked for (then it stays fixed)."""
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[name]

    def _idle(self, side: str) -> list[Stage]:
        home = (np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64), HOME_WRIST_MAT)
        return [Stage("done", lambda: home, lambda: self.left_open, max_s=1e9, done=lambda: False)]

    def _grip_rotation(self) -> NDArray[np.float64]:
        """Palm toward the table, turned so that the claw (thumb -> fingertips) closes horizontally
        across the tongs, the hand's lateral axis along them; of the two such turns, the one
        nearer the home orientation."""
        _, trot = self.task.tongs_pose(self.env.data)
        hand = self.grip.basis
        lateral = np.array([trot[0, 1], trot[1, 1], 0.0])
        lateral /= np.linalg.norm(lateral)
        down = np.array([0.0, 0.0, -1.0])
        best = None
        for sign in (1.0, -1.0):
            w1 = sign * lateral
            world = np.column_stack([w1, np.cross(down, w1), down])
            rot = world @ hand.T
            turn = rotation_angle(HOME_WRIST_MAT.T @ rot)
            if best is None or turn < best[0]:
                best = (turn, rot)
        return best[1]

    def _grip_pose(self, height: float) -> Pose:
        """Wrist pose that puts the claw across the arms at GRIP_D, `height` above gripping height."""
        rot = self._once("grip_rot", self._grip_rotation)
        tpos, trot = self._once("tongs_start", lambda: self.task.tongs_pose(self.env.data))
        point = tpos + trot @ np.array([GRIP_D, 0.0, 0.0])
        point[2] = TABLE_HEIGHT + TIP_Z + height
        return wrist_for_point(point, rot, self.grip_center)

    def _pads_in_wrist(self) -> NDArray[np.float64]:
        wp, wr = self.env.wrist_pose("right")
        return wr.T @ (self.task.pads_center(self.env.data) - wp)

    def _carry(self, key: str, goal: Callable[[], NDArray[np.float64]], rot: Callable[[], NDArray[np.float64]]) -> Callable[[], Pose]:
        """Wrist pose that puts the pads' midpoint (as held when `key` was first asked) at `goal()`.

        Measured twice: after the lift, and again above the fruit after the turn (the tongs can
        shift in the hand as it turns), so the open pads come down around the fruit.
        """

        def target() -> Pose:
            rel = self._once(key, self._pads_in_wrist)
            r = rot()
            return goal() - r @ rel, r

        return target

    # ------------------------------------------------------------------ the script
    def _stages(self) -> list[Stage]:
        task, data, env = self.task, self.env.data, self.env

        def carry_rot(key: str) -> Callable[[], NDArray[np.float64]]:
            """The wrist rotation, turned so that the pads close across a lemon's short axis.

            Computed twice from where the tongs really are: after the lift, and again above the
            fruit (the tongs can turn a little in the hand while the wrist turns)."""

            def compute() -> NDArray[np.float64]:
                _, trot = task.tongs_pose(data)
                _, frot = task.fruit_pose(data)
                turn = _wrap_half(_yaw_of(frot[:, 0]) - _yaw_of(trot[:, 0])) if task.fruit == "lemon" else 0.0
                _, r = env.commanded_wrist_pose("right")
                return _rot_z(turn) @ r

            return lambda: self._once(key, compute)

        def at_fruit(dz: float) -> Callable[[], NDArray[np.float64]]:
            def goal() -> NDArray[np.float64]:
                fpos = self._once("fruit_start", lambda: task.fruit_pose(data)[0])
                return fpos + np.array([0.0, 0.0, dz])

            return goal

        def over_basket(dz: float) -> Callable[[], NDArray[np.float64]]:
            def goal() -> NDArray[np.float64]:
                bx, by = task.basket_xy
                return np.array([bx, by, TABLE_HEIGHT + BASKET_H + task.fruit_half_h + dz])

            return goal

        def up(key: str, dz: float) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = self._once(key, lambda: env.commanded_wrist_pose("right"))
                return p + np.array([0.0, 0.0, dz]), r

            return target

        def put_back(dz: float) -> Callable[[], Pose]:
            """Wrist pose that sets the tongs (as held now) down where they lay, `dz` above the table."""

            def target() -> Pose:
                def rel() -> Pose:
                    wp, wr = env.wrist_pose("right")
                    tp, tr = task.tongs_pose(data)
                    return wr.T @ (tp - wp), wr.T @ tr

                rp, rr = self._once("tongs_rel", rel)
                tpos, trot = self._once("tongs_start", lambda: task.tongs_pose(data))
                # Wrist rotation that brings the tongs back to their starting yaw, palm down.
                r = trot @ rr.T
                yaw = _yaw_of(r[:, 0]) - _yaw_of(HOME_WRIST_MAT[:, 0])
                rot = _rot_z(yaw) @ HOME_WRIST_MAT
                goal = np.array([tpos[0], tpos[1], TABLE_HEIGHT + dz])
                return goal - rot @ rp, rot

            return target

        lift_h = BASKET_H + 0.05  # the fruit's bottom clears the basket's wall by about 5 cm
        turned, aligned = carry_rot("turned"), carry_rot("aligned")
        return [
            Stage("above", lambda: self._grip_pose(0.06), self._hand("pre"), max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", lambda: self._grip_pose(0.0), self._hand("pre"), speed=0.4, max_s=3.0),
            Stage("grip", lambda: self._grip_pose(0.0), self._hand("hold"), min_s=0.6, hand_blend_s=0.4),
            Stage("lift", up("gripped", 0.10), self._hand("hold"), speed=0.5, max_s=3.0, hand_blend_s=0.01),
            Stage("over_fruit", self._carry("pads_rel", at_fruit(0.06), turned), self._hand("hold"), min_s=0.3, speed=0.6, max_s=4.0, tol_pos=0.005),
            Stage("lower", self._carry("pads_held", at_fruit(PAD_ABOVE), aligned), self._hand("hold"), speed=0.3, max_s=3.0, tol_pos=0.004),
            Stage("squeeze", self._carry("pads_held", at_fruit(PAD_ABOVE), aligned), self._hand("squeeze"), min_s=1.0, hand_blend_s=0.6),
            Stage("lift_fruit", self._carry("pads_held", at_fruit(lift_h), aligned), self._hand("squeeze"), speed=0.4, max_s=3.0, hand_blend_s=0.01),
            Stage("over_basket", self._carry("pads_held", over_basket(0.04), aligned), self._hand("squeeze"), speed=0.5, max_s=4.0, tol_pos=0.008, hand_blend_s=0.01),
            Stage("release", self._carry("pads_held", over_basket(0.04), aligned), self._hand("hold"), min_s=1.0, hand_blend_s=0.5),
            Stage("up", up("released", 0.05), self._hand("hold"), speed=0.5, max_s=2.0, hand_blend_s=0.01),
            Stage("back", put_back(0.06), self._hand("hold"), speed=0.6, max_s=4.0, tol_pos=0.01, hand_blend_s=0.01),
            Stage("set_down", put_back(0.004), self._hand("hold"), speed=0.3, max_s=3.0, hand_blend_s=0.01),
            Stage("let_go", up("set", 0.0), self._hand("pre"), min_s=0.5, hand_blend_s=0.4),
            Stage("retreat", up("set", 0.10), self._hand("open"), speed=0.5, max_s=3.0),
            Stage("done", up("set", 0.10), self._hand("open"), max_s=1e9, done=lambda: False),
        ]
