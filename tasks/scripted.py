"""A toolkit for scripted experts: wrist stage machines and grasp geometry from semantic handles.

Experts are written once per task against what an `Embodiment` declares (grasp poses, fingertip,
wrist and palm sites). Grasp geometry (where a pinch closes, where a claw holds a cylinder) is
measured on the hand model by forward kinematics, so the same expert drives any hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.actions import WRIST_DIM
from egosim.embodiment import SIDES, Embodiment
from egosim.geometry import limit_rotation, matrix_to_rot6d, rotation_angle

Pose = tuple[NDArray[np.float64], NDArray[np.float64]]  # (position, rotation matrix)


def first_step_at_width(gaps: NDArray[np.float64], width: float) -> int:
    """The first closing step whose gap is no wider than `width` (the last step if none is)."""
    hits = np.flatnonzero(gaps <= width)
    return int(hits[0]) if hits.size else len(gaps) - 1


@dataclass(frozen=True)
class GraspGeometry:
    """Hand-frame geometry of one side's grasps, measured by forward kinematics.

    Attributes:
        pinch_point: Where the thumb meets the opposing fingertips in the `pinch` pose (wrist frame).
        pinch_axis: Unit thumb -> opposing-fingers direction in the `open` pose (the closing direction).
        claw_center: Midpoint between the thumb tip and the other fingertips in the `claw` pose: where
            the axis of a vertical cylinder sits in a top-down claw grasp (wrist frame).
        palm_center: The palm-centre site (wrist frame).
        pinch_gap: Free gap between the thumb's and its partners' fingertip links at evenly spaced
            steps of closing from `pre_pinch` to `pinch` (joint-space interpolation).
        pinch_reach: How far the fingertip links reach out of the palm (along the wrist frame's +z,
            the palm normal) at the same steps, cumulative (the deepest point reached so far).
        pinch_center: Centre of the gap between the thumb's and its partners' links at the same steps
            (wrist frame): the midpoint of the nearest pair's closest points. An object as wide as the
            gap at a step must sit there for the closing pinch to meet it from both sides at once
            (fingers sweep arcs, so it is not `pinch_point`, and the fingertip sites are not the pads).
    """

    pinch_point: NDArray[np.float64]
    pinch_axis: NDArray[np.float64]
    claw_center: NDArray[np.float64]
    palm_center: NDArray[np.float64]
    pinch_gap: NDArray[np.float64]
    pinch_reach: NDArray[np.float64]
    pinch_center: NDArray[np.float64]

    def step_at_width(self, width: float) -> int:
        """The first closing step at which the pinch gap is no wider than `width` (the last if never)."""
        return first_step_at_width(self.pinch_gap, width)

    def center_at_width(self, width: float) -> NDArray[np.float64]:
        """Where an object `width` thick is met from both sides by the closing pinch (wrist frame)."""
        return self.pinch_center[self.step_at_width(width)].copy()

    def reach_at_width(self, width: float) -> float:
        """How deep the fingertips reach when a pinch closes on an object `width` thick.

        Placing this depth just above a table lets the hand pinch a thin object lying on it at
        the object's widest point without the fingertips hitting the table on the way.
        """
        return float(self.pinch_reach[self.step_at_width(width)])

    @classmethod
    def measure(cls, emb: Embodiment, side: str) -> GraspGeometry:
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]

        def tips(pose: str) -> dict[str, NDArray[np.float64]]:
            data.qpos[:] = 0
            data.qpos[qadr] = emb.grasp_pose(pose, side)
            mujoco.mj_kinematics(model, data)
            wrist = model.site(emb.wrist_site).id
            r, p = data.site_xmat[wrist].reshape(3, 3), data.site_xpos[wrist]
            return {s: r.T @ (data.site_xpos[model.site(s).id] - p) for s in emb.fingertip_sites + (emb.palm_site,)}

        closed, opened, claw = tips("pinch"), tips("open"), tips("claw")
        thumb, fingers = emb.fingertip_sites[0], emb.fingertip_sites[1:]
        # The opposing fingers are those that close onto the thumb in the pinch pose.
        partners = [f for f in fingers if np.linalg.norm(closed[f] - closed[thumb]) < 0.035] or [fingers[0]]
        meet = 0.5 * (closed[thumb] + np.mean([closed[f] for f in partners], axis=0))
        axis = np.mean([opened[f] for f in partners], axis=0) - opened[thumb]
        closing = PinchProfile.measure(emb, side, "pre_pinch", "pinch")
        return cls(
            pinch_point=meet,
            pinch_axis=axis / np.linalg.norm(axis),
            claw_center=0.5 * (claw[thumb] + np.mean([claw[f] for f in fingers], axis=0)),
            palm_center=opened[emb.palm_site],
            pinch_gap=closing.gaps,
            pinch_reach=closing.reaches,
            pinch_center=closing.centres,
        )


def geom_extent(model: mujoco.MjModel, data: mujoco.MjData, g: int, u: NDArray[np.float64]) -> float:
    """The largest projection of geom `g`'s surface on the unit direction `u` (world frame)."""
    c, r, size = data.geom_xpos[g], data.geom_xmat[g].reshape(3, 3), model.geom_size[g]
    t = model.geom_type[g]
    proj = np.abs(r.T @ u)  # |cos| between u and each geom axis
    if t == mujoco.mjtGeom.mjGEOM_SPHERE:
        return float(c @ u + size[0])
    if t == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return float(c @ u + size[1] * proj[2] + size[0])
    if t == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return float(c @ u + size[1] * proj[2] + size[0] * np.sqrt(max(0.0, 1 - proj[2] ** 2)))
    if t == mujoco.mjtGeom.mjGEOM_BOX:
        return float(c @ u + proj @ size)
    return float(c @ u + model.geom_rbound[g])


@dataclass(frozen=True)
class PosedHand:
    """One side's hand model (robot-only MJCF) in a joint configuration, by forward kinematics; the
    wrist site's frame for expressing points in the wrist frame."""

    model: mujoco.MjModel
    data: mujoco.MjData
    wrist_rot: NDArray[np.float64]
    wrist_pos: NDArray[np.float64]

    @classmethod
    def at(cls, emb: Embodiment, side: str, q: NDArray[np.float64] | str) -> PosedHand:
        """The hand in joint targets `q` (or the grasp pose of that name)."""
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]
        data.qpos[qadr] = emb.grasp_pose(q, side) if isinstance(q, str) else q
        mujoco.mj_kinematics(model, data)
        w = model.site(emb.wrist_site).id
        return cls(model, data, data.site_xmat[w].reshape(3, 3).copy(), data.site_xpos[w].copy())

    def local(self, world: NDArray[np.float64]) -> NDArray[np.float64]:
        """A world point in the wrist frame."""
        return self.wrist_rot.T @ (np.asarray(world) - self.wrist_pos)

    def site(self, name: str) -> NDArray[np.float64]:
        """A site's position in the wrist frame."""
        return self.local(self.data.site_xpos[self.model.site(name).id])

    def colliding_geoms(self) -> list[int]:
        return [g for g in range(self.model.ngeom) if self.model.geom_contype[g] or self.model.geom_conaffinity[g]]


def power_axis_point(emb: Embodiment, side: str) -> NDArray[np.float64]:
    """Where a cylinder's axis sits in a `power` grasp (wrist frame), measured by forward kinematics:
    halfway between the palm centre and the mean of the non-thumb fingertips, which wrap around it.

    On both hands this lies within 7 mm of where a 30-38 mm bottle settles in the closed hand; the
    `claw` centre (meant for top-down grasps) put the bottle 2.5 cm too far out on the Sharpa hand,
    and the closing fingers shoved and tipped it.
    """
    hand = PosedHand.at(emb, side, "power")
    tips = np.mean([hand.site(s) for s in emb.fingertip_sites[1:]], axis=0)
    return 0.5 * (hand.site(emb.palm_site) + tips)


@dataclass(frozen=True)
class PinchProfile:
    """How a pinch closes, measured on the hand model by forward kinematics at evenly spaced steps of
    joint-space interpolation from a start pose to an end pose (one side, wrist frame).

    Attributes:
        poses: Hand joint targets at each step (n, dof).
        gaps: Free gap between the thumb's and its partners' fingertip links.
        centres: Midpoint of the closest points of the nearest thumb-partner pair: where an object as
            wide as the gap must sit for the closing fingers to meet it from both sides at once.
        axes: Unit thumb -> partner direction between those closest points, projected on the palm
            plane: the direction the pinch closes along.
        reaches: How far the fingertip links reach out of the palm (along +z), cumulative.
    """

    poses: NDArray[np.float64]
    gaps: NDArray[np.float64]
    centres: NDArray[np.float64]
    axes: NDArray[np.float64]
    reaches: NDArray[np.float64]

    def step_at_width(self, width: float) -> int:
        """The first step at which the gap is no wider than `width` (the last step if none is)."""
        return first_step_at_width(self.gaps, width)

    @classmethod
    def measure(cls, emb: Embodiment, side: str, start: str = "pre_pinch", end: str = "pinch", n: int = 41,
                partners_tol: float = 0.035) -> PinchProfile:
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]
        wrist = model.site(emb.wrist_site).id
        thumb, fingers = emb.fingertip_sites[0], emb.fingertip_sites[1:]
        q0, q1 = emb.grasp_pose(start, side), emb.grasp_pose(end, side)

        def pose(q: NDArray[np.float64]) -> None:
            data.qpos[:] = 0
            data.qpos[qadr] = q
            mujoco.mj_kinematics(model, data)

        def site(s: str) -> NDArray[np.float64]:
            return data.site_xpos[model.site(s).id].copy()

        pose(emb.grasp_pose("pinch", side))
        partners = [f for f in fingers if np.linalg.norm(site(f) - site(thumb)) < partners_tol] or [fingers[0]]

        def geoms(s: str) -> list[int]:
            b = int(model.site_bodyid[model.site(s).id])
            return [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == b]

        thumb_geoms, partner_geoms = geoms(thumb), [g for f in partners for g in geoms(f)]
        tip_geoms = thumb_geoms + partner_geoms
        fromto = np.zeros(6)
        poses, gaps, centres, axes, reaches = [], [], [], [], []
        for a in np.linspace(0.0, 1.0, n):
            q = q0 + a * (q1 - q0)
            pose(q)
            best, mid, ax = np.inf, np.zeros(3), np.zeros(3)
            for g1 in thumb_geoms:
                for g2 in partner_geoms:
                    dist = mujoco.mj_geomDistance(model, data, g1, g2, 1.0, fromto)
                    if dist < best:
                        best, mid, ax = dist, 0.5 * (fromto[:3] + fromto[3:]), fromto[3:] - fromto[:3]
            r, p = data.site_xmat[wrist].reshape(3, 3), data.site_xpos[wrist]
            local_ax = r.T @ ax
            local_ax[2] = 0.0
            if best <= 0.0 or np.linalg.norm(local_ax) < 1e-9:  # touching: keep the last direction
                local_ax = axes[-1] if axes else np.array([1.0, 0.0, 0.0])
            poses.append(q)
            gaps.append(best)
            centres.append(r.T @ (mid - p))
            axes.append(local_ax / np.linalg.norm(local_ax))
            z = r[:, 2]
            reaches.append(max(geom_extent(model, data, g, z) - float(z @ p) for g in tip_geoms))
        return cls(np.array(poses), np.array(gaps), np.array(centres), np.array(axes),
                   np.maximum.accumulate(np.array(reaches)))


def wrist_for_point(point_world: NDArray[np.float64], rot: NDArray[np.float64], point_hand: NDArray[np.float64]) -> Pose:
    """The wrist pose with orientation `rot` that puts hand-frame `point_hand` at `point_world`."""
    return point_world - rot @ point_hand, rot


@dataclass
class Stage:
    """One segment of a hand's script: drive the wrist to a pose while blending the hand to targets.

    The stage ends once it has run `min_s`, the commanded wrist is within tolerance of the target
    and `done()` holds; or, regardless, after `max_s`.
    """

    name: str
    target: Callable[[], Pose]
    hand: Callable[[], NDArray[np.float64]]
    min_s: float = 0.0
    max_s: float = 4.0
    speed: float = 1.0  # fraction of the embodiment's wrist speed limits
    hand_blend_s: float = 0.4
    done: Callable[[], bool] = lambda: True
    tol_pos: float = 0.005
    tol_rot: float = 0.05


@dataclass
class HandScript:
    """Runs a list of stages for one side and produces that side's per-step action."""

    side: str
    stages: list[Stage]
    index: int = 0
    elapsed: float = 0.0
    hand_from: NDArray[np.float64] | None = None
    hand_now: NDArray[np.float64] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def stage(self) -> Stage | None:
        return self.stages[self.index] if self.index < len(self.stages) else None

    @property
    def finished(self) -> bool:
        return self.index >= len(self.stages)

    def at(self, name: str) -> bool:
        """Whether the script has reached (or passed) the stage called `name`."""
        names = [s.name for s in self.stages]
        return self.index >= names.index(name)

    def step(self, cmd: Pose, dt: float, max_step: float, max_rot: float, hand_default: NDArray[np.float64]):
        """Returns (wrist action (9,), hand targets) for this control step and advances the script."""
        if self.hand_now is None:
            self.hand_now = hand_default.copy()
        st = self.stage
        if st is None:
            return _wrist_action(cmd, cmd, max_step, max_rot), self.hand_now
        if self.hand_from is None:
            self.hand_from = self.hand_now.copy()
        goal = st.target()
        alpha = min(1.0, (self.elapsed + dt) / max(st.hand_blend_s, 1e-6))
        self.hand_now = (1 - alpha) * self.hand_from + alpha * st.hand()
        action = _wrist_action(cmd, goal, st.speed * max_step, st.speed * max_rot)
        self.elapsed += dt
        reached = (
            np.linalg.norm(goal[0] - cmd[0]) < st.tol_pos and rotation_angle(cmd[1].T @ goal[1]) < st.tol_rot
        )
        if (self.elapsed >= st.min_s and reached and st.done()) or self.elapsed >= st.max_s:
            self.log.append(f"{st.name}: {self.elapsed:.2f}s{'' if reached else ' (timed out)'}")
            self.index += 1
            self.elapsed = 0.0
            self.hand_from = None
        return action, self.hand_now


def _wrist_action(cmd: Pose, goal: Pose, max_step: float, max_rot: float) -> NDArray[np.float64]:
    """Per-step wrist delta (in the commanded frame) toward `goal`, within the speed limits."""
    p, r = cmd
    dp = r.T @ (goal[0] - p)
    n = np.linalg.norm(dp)
    if n > max_step:
        dp *= max_step / n
    dr = limit_rotation(r.T @ goal[1], max_rot)
    return np.concatenate([dp, matrix_to_rot6d(dr)])


def bimanual_action(parts: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]) -> NDArray[np.float64]:
    """Concatenates per-side (wrist 9, hand joints) into the env's action layout, left then right."""
    out = [np.concatenate([parts[s][0], parts[s][1]]) for s in SIDES]
    assert all(len(o) > WRIST_DIM for o in out)
    return np.concatenate(out)


EXPERT_SPEED = 0.9  # experts drive the wrists at 90 % of the speed limits, a margin for the wrist's tracking


def step_scripts(env, scripts: Mapping[str, HandScript], hand_default: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    """One control step of a two-hand expert: each side's script, as a one-step chunk (1, action_dim).

    `hand_default` is each side's hand target before its first stage blends in.
    """
    emb, dt = env.embodiment, env.control_dt
    max_step = EXPERT_SPEED * emb.max_wrist_speed * dt
    max_rot = EXPERT_SPEED * emb.max_wrist_rot_speed * dt
    parts = {s: scripts[s].step(env.commanded_wrist_pose(s), dt, max_step, max_rot, hand_default[s]) for s in SIDES}
    return bimanual_action(parts)[None, :]
