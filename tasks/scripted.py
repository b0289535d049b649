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
        hits = np.flatnonzero(self.pinch_gap <= width)
        return int(hits[0]) if hits.size else len(self.pinch_gap) - 1

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
        gap, reach, center = _closing_profile(model, data, qadr, emb, side, [thumb, *partners])
        return cls(
            pinch_point=meet,
            pinch_axis=axis / np.linalg.norm(axis),
            claw_center=0.5 * (claw[thumb] + np.mean([claw[f] for f in fingers], axis=0)),
            palm_center=opened[emb.palm_site],
            pinch_gap=gap,
            pinch_reach=reach,
            pinch_center=center,
        )


def _closing_profile(
    model: mujoco.MjModel, data: mujoco.MjData, qadr: list[int], emb: Embodiment, side: str, sites: list[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Gap (thumb link to nearest partner link), cumulative reach and gap centre while closing a pinch."""
    body_geoms = []
    for s in sites:
        b = int(model.site_bodyid[model.site(s).id])
        body_geoms.append([g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == b])
    thumb_geoms, partner_geoms = body_geoms[0], [g for gs in body_geoms[1:] for g in gs]
    wrist = model.site(emb.wrist_site).id
    pre, pinch = emb.grasp_pose("pre_pinch", side), emb.grasp_pose("pinch", side)
    gaps, reaches, centers = [], [], []
    fromto = np.zeros(6)
    for a in np.linspace(0.0, 1.0, 41):
        data.qpos[:] = 0
        data.qpos[qadr] = pre + a * (pinch - pre)
        mujoco.mj_kinematics(model, data)
        r, p = data.site_xmat[wrist].reshape(3, 3), data.site_xpos[wrist]
        z = r[:, 2]
        reaches.append(max(geom_extent(model, data, g, z) - float(z @ p) for gs in body_geoms for g in gs))
        best, mid = np.inf, np.zeros(3)
        for g1 in thumb_geoms:
            for g2 in partner_geoms:
                dist = mujoco.mj_geomDistance(model, data, g1, g2, 1.0, fromto)
                if dist < best:
                    best, mid = dist, 0.5 * (fromto[:3] + fromto[3:])
        gaps.append(best)
        centers.append(r.T @ (mid - p))
    return np.array(gaps), np.maximum.accumulate(np.array(reaches)), np.array(centers)


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
