"""Retargeting: human hand keypoints -> robot wrist poses and hand joints, as robot actions.

Per frame and hand, a bounded nonlinear least-squares problem over the robot's hand joints
(`scipy.optimize.least_squares`, trust-region reflective, bounds = the joint limits of the hand's MJCF,
so no solution ever leaves them), with MuJoCo's own kinematics (`mj_kinematics` + `mj_comPos`, and
`mj_jacSite` for the analytic Jacobian) on the robot's single-hand model. Residuals, all in the robot's
wrist frame, following dex-retargeting's position/vector retargeters and DexPilot:

- every robot keypoint site the embodiment's `keypoint_map` names (fingertips, and where the hand
  has them knuckles, PIP/DIP joints and the thumb's joints) against the human keypoint, scaled to
  the robot hand (`Embodiment.human_scale`) and mapped through the fixed wrist offset
  (`Embodiment.human_wrist_offset`); fingertips weigh most;
- thumb-tip -> fingertip vectors, weighted up when the human's thumb and finger are close (a pinch),
  so pinches survive the size change;
- a small pull toward the previous frame's solution (which is also the warm start), which picks
  one solution where the keypoints leave the joints undetermined.

Weights are multiplied by the keypoints' confidences. The joint trajectory is then low-pass
filtered (a first-order exponential filter, as EgoScale), which keeps it inside the limits (each
value is a convex combination of values inside them).

Wrist: the robot wrist's world pose is the human wrist pose (`wrist_pose`, the canonical frame of
`egosim.keypoints`) times the embodiment's fixed offset. Labels follow EgoScale and DESIGN.md
"Spaces": the episode's wrist motion relative to its first frame (dW_t = W_0^-1 W_t), turned into
per-step actions by the shared utility (`egosim.actions.chunk_to_step_actions`), plus the retargeted
hand joints as absolute targets: the robot's own action layout, so a retargeted human episode can be
replayed on the robot from the wrist pose of its first frame.

How the fixed per-embodiment numbers are chosen (`measure_human_alignment`, checked against the
Embodiment record by the tests): the scale is the ratio of the mean wrist-to-fingertip distances of
the robot's open pose and of the reference human hand (`egosim.keypoints.KinematicHand`, open), over
the fingers both have; the wrist offset is the rigid transform (Kabsch) that best superimposes the
robot's wrist, knuckle and fingertip sites at its open pose onto the scaled reference hand's, so an
open human hand maps onto the open robot hand.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from egosim.actions import WRIST_DIM, chunk_to_step_actions
from egosim.embodiment import HUMAN_KEYPOINTS, SIDES, Embodiment, get_embodiment
from egosim.errors import ConfigError, reject_unknown_keys
from egosim.geometry import matrix_to_quat, matrix_to_rot6d
from egosim.keypoints import FINGERS, KP, KinematicHand, vec_to_pose, wrist_frame


@dataclass(frozen=True)
class RetargetConfig:
    """Weights and filter of the retargeting problem (module docstring).

    Attributes:
        tip_weight: Fingertip position residuals (per metre).
        joint_weight: Intermediate keypoints (PIP, DIP, the thumb's MCP and IP).
        knuckle_weight: Knuckle keypoints.
        pinch_weight: Thumb-tip -> fingertip vectors.
        pinch_boost: Extra factor on a pinch vector when the human's distance is below `pinch_distance`.
        pinch_distance: Metres.
        regularization: Pull toward the previous frame's joints (per radian).
        smoothing: Exponential filter factor alpha in (0, 1]: q_t = alpha q*_t + (1 - alpha) q_{t-1};
            1 turns the filter off.
        max_nfev: Residual evaluations per frame (the first frame of an episode gets 5x).
    """

    tip_weight: float = 1.0
    joint_weight: float = 0.5
    knuckle_weight: float = 0.2
    pinch_weight: float = 1.0
    pinch_boost: float = 3.0
    pinch_distance: float = 0.03
    regularization: float = 0.01
    smoothing: float = 0.5
    max_nfev: int = 5

    def __post_init__(self) -> None:
        for k in ("tip_weight", "joint_weight", "knuckle_weight", "pinch_weight", "pinch_boost", "pinch_distance",
                  "regularization"):
            if not float(getattr(self, k)) >= 0.0:
                raise ConfigError(f"retarget {k} must be >= 0, got {getattr(self, k)!r}")
        if not 0.0 < float(self.smoothing) <= 1.0:
            raise ConfigError(f"retarget smoothing must lie in (0, 1] (1: no filter), got {self.smoothing!r}")
        if isinstance(self.max_nfev, bool) or not isinstance(self.max_nfev, int) or self.max_nfev < 1:
            raise ConfigError(f"retarget max_nfev must be a positive integer, got {self.max_nfev!r}")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> RetargetConfig:
        """From a dict (e.g. the CLI's `retarget={smoothing: 0.3}`), checking the keys."""
        cfg = dict(cfg or {})
        reject_unknown_keys(cfg, cls.__dataclass_fields__, "retarget config")
        return cls(**cfg)


def _kind(name: str) -> str:
    if name.endswith("_tip") and name.split("_")[0] in FINGERS:
        return "tip"
    return "knuckle" if name.endswith("_knuckle") else "joint"


class HandRetargeter:
    """Solves one hand, frame by frame: human keypoints in the canonical wrist frame -> joint angles.

    Args:
        embodiment: The robot hand (its `keypoint_map`, scale, wrist offset and joint limits).
        side: "left" or "right".
        config: Weights and iteration budget.
    """

    def __init__(self, embodiment: str | Embodiment, side: str, config: RetargetConfig = RetargetConfig()) -> None:
        import mujoco

        self.embodiment = emb = get_embodiment(embodiment)
        self.side, self.config = side, config
        self.model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        self.data = mujoco.MjData(self.model)
        jids = [self.model.joint(n).id for n in emb.joint_names]
        self._qadr = self.model.jnt_qposadr[jids]
        self._dadr = self.model.jnt_dofadr[jids]
        limits = emb.joint_limits(side)
        self.lower, self.upper = limits[:, 0].copy(), limits[:, 1].copy()
        self.names = [k for k in HUMAN_KEYPOINTS if k in emb.keypoint_map and k != "wrist"]
        if not any(_kind(k) == "tip" for k in self.names):
            raise ConfigError(f"{emb.name}: keypoint_map names no fingertip site; retargeting needs them")
        self._sites = np.array([self.model.site(emb.keypoint_map[k]).id for k in self.names])
        self._human = np.array([KP[k] for k in self.names])
        w = {"tip": config.tip_weight, "joint": config.joint_weight, "knuckle": config.knuckle_weight}
        self._weights = np.array([w[_kind(k)] for k in self.names])
        self.tips = [i for i, k in enumerate(self.names) if _kind(k) == "tip"]
        thumb = self.names.index("thumb_tip") if "thumb_tip" in self.names else None
        self._pairs = [(thumb, j) for j in self.tips if thumb is not None and j != thumb]
        wid = self.model.site(emb.wrist_site).id
        mujoco.mj_kinematics(self.model, self.data)
        self._wrist_rot = self.data.site_xmat[wid].reshape(3, 3).copy()
        self._wrist_pos = self.data.site_xpos[wid].copy()
        self.scale = float(emb.human_scale)
        self.offset_pos, self.offset_rot = vec_to_pose(emb.human_wrist_offset[side])
        self._moving = np.flatnonzero([self._site_moves(sid) for sid in self._sites])
        self._site_jac = np.zeros((len(self._moving), 3, self.model.nv))
        self._jac_cols = None if np.array_equal(self._dadr, np.arange(self.model.nv)) else self._dadr
        self._q_fk: NDArray[np.float64] | None = None
        self.q_open = np.clip(emb.grasp_pose("open", side), self.lower, self.upper)

    # ---------------------------------------------------------------- kinematics
    def _site_moves(self, sid: int) -> bool:
        """Whether any joint moves the site (at the middle of the joint ranges): rows of fixed sites,
        such as knuckles on the palm, are constant and left out of the problem."""
        import mujoco

        self.data.qpos[self._qadr] = 0.5 * (self.lower + self.upper)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        jac = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jac, None, int(sid))
        return bool(np.abs(jac).max() > 1e-9)

    def _fk(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Keypoint sites (n, 3) in the robot's wrist frame; leaves `data` ready for Jacobians."""
        import mujoco

        self.data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        self._q_fk = q.copy()
        return (self.data.site_xpos[self._sites] - self._wrist_pos) @ self._wrist_rot

    def keypoints(self, q: ArrayLike) -> NDArray[np.float64]:
        """The robot's keypoint sites (n, 3) at joints `q`, wrist frame, in the order of `names`."""
        return self._fk(np.asarray(q, dtype=np.float64))

    def targets(self, local: ArrayLike) -> NDArray[np.float64]:
        """Scaled human keypoints (21, 3, canonical wrist frame) -> robot-frame targets (n, 3) of `names`."""
        p = np.asarray(local, dtype=np.float64)[self._human]
        return (self.scale * p - self.offset_pos) @ self.offset_rot

    # ---------------------------------------------------------------- one frame
    def solve(self, local: ArrayLike, confidence: ArrayLike | None, q_prev: ArrayLike | None,
              max_nfev: int | None = None) -> NDArray[np.float64]:
        """Joint angles (dof,) for one frame.

        Args:
            local: The hand's 21 keypoints in its canonical wrist frame (metres).
            confidence: (21,) in [0, 1], or None (all 1).
            q_prev: The previous frame's solution (warm start and regularisation target); None: the
                open pose, with a larger iteration budget.
            max_nfev: Override of the config's evaluation budget.
        """
        from scipy.optimize import least_squares

        cfg = self.config
        first = q_prev is None
        q0 = self.q_open.copy() if first else np.clip(np.asarray(q_prev, dtype=np.float64), self.lower, self.upper)
        human = np.asarray(local, dtype=np.float64)[self._human]
        target = self.targets(local)
        conf = np.ones(len(HUMAN_KEYPOINTS)) if confidence is None else np.asarray(confidence, dtype=np.float64)
        kconf = conf[self._human]
        mv = self._moving
        w = (self._weights * kconf)[mv][:, None]
        tgt = target[mv]
        # thumb -> fingertip vectors (indices into the moving sites), boosted when the human pinches
        pi = np.array([int(np.searchsorted(mv, i)) for i, _ in self._pairs], dtype=int)
        pj = np.array([int(np.searchsorted(mv, j)) for _, j in self._pairs], dtype=int)
        pair_t = np.array([target[j] - target[i] for i, j in self._pairs]).reshape(-1, 3)
        pair_w = np.array([cfg.pinch_weight * (1.0 + cfg.pinch_boost * (np.linalg.norm(human[j] - human[i])
                                                                        < cfg.pinch_distance)) *
                           min(kconf[i], kconf[j]) for i, j in self._pairs]).reshape(-1, 1)
        reg = cfg.regularization
        n_pos, n_vec = 3 * len(mv), 3 * len(pi)
        jac_out = np.zeros((n_pos + n_vec + len(q0), len(q0)))
        jac_out[n_pos + n_vec:] = reg * np.eye(len(q0))
        # Solve for z = q - (lower - 1): trf's first trust radius is |z0|, which is ~0 when the warm start
        # sits at zero joints (it would stop after a step of 1e-10 rad); z0 >= 1 avoids that.
        shift = self.lower - 1.0

        def fun(z: NDArray[np.float64]) -> NDArray[np.float64]:
            q = z + shift
            r = self._fk(q)[mv]
            return np.concatenate([((r - tgt) * w).ravel(), ((r[pj] - r[pi] - pair_t) * pair_w).ravel(),
                                   reg * (q - q0)])

        def jac(z: NDArray[np.float64]) -> NDArray[np.float64]:
            import mujoco

            q = z + shift
            if self._q_fk is None or not np.array_equal(q, self._q_fk):
                self._fk(q)
            sj = self._site_jac
            for k, sid in enumerate(self._sites[mv]):
                mujoco.mj_jacSite(self.model, self.data, sj[k], None, int(sid))
            sites = sj if self._jac_cols is None else sj[:, :, self._jac_cols]
            sites = np.einsum("ji,kjd->kid", self._wrist_rot, sites)  # into the wrist frame
            jac_out[:n_pos] = (sites * w[:, :, None]).reshape(n_pos, -1)
            jac_out[n_pos:n_pos + n_vec] = ((sites[pj] - sites[pi]) * pair_w[:, :, None]).reshape(n_vec, -1)
            return jac_out.copy()

        budget = max_nfev or (5 * cfg.max_nfev if first else cfg.max_nfev)
        res = least_squares(fun, q0 - shift, jac=jac, bounds=(self.lower - shift, self.upper - shift), method="trf",
                            xtol=1e-4, ftol=1e-4, gtol=1e-8, max_nfev=budget)
        return np.clip(res.x + shift, self.lower, self.upper)

    def tip_error(self, q: ArrayLike, local: ArrayLike) -> float:
        """Mean distance (metres) between the robot's fingertip sites and their scaled human targets."""
        r = self.keypoints(q)
        t = self.targets(local)
        return float(np.linalg.norm(r[self.tips] - t[self.tips], axis=1).mean())


@dataclass
class RetargetResult:
    """One retargeted episode.

    Attributes:
        joints: (T, 2, dof) hand joints after the filter (left, right), within the joint limits.
        wrist: (T, 2, 7) robot wrist poses, world frame (xyz + wxyz).
        actions: (T, 2 x (9 + dof)) per-step robot actions (DESIGN.md "Spaces").
        tip_error: (T, 2) mean fingertip distance to the scaled human targets, metres (filtered joints).
        limit_violations: Joint values outside the limits (0 by construction; measured, not assumed).
        solve_s: Wall time of the solves (seconds); cpu_s: CPU time of this process during them.
    """

    joints: NDArray[np.float64]
    wrist: NDArray[np.float64]
    actions: NDArray[np.float64]
    tip_error: NDArray[np.float64]
    limit_violations: int
    solve_s: float = 0.0
    cpu_s: float = 0.0
    raw_joints: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures for an episode's metadata."""
        return {"frames": int(self.joints.shape[0]), "tip_error_mm": round(1e3 * float(self.tip_error.mean()), 3),
                "limit_violations": int(self.limit_violations), "initial_wrist": np.round(self.wrist[0], 6).tolist()}


class Retargeter:
    """Both hands of one robot embodiment; `retarget` turns a human episode into robot actions."""

    def __init__(self, embodiment: str | Embodiment, config: RetargetConfig = RetargetConfig()) -> None:
        self.embodiment = get_embodiment(embodiment)
        self.config = config
        self.hands = {side: HandRetargeter(self.embodiment, side, config) for side in SIDES}

    def retarget(self, keypoints: ArrayLike, wrist_pose: ArrayLike,
                 confidence: ArrayLike | None = None) -> RetargetResult:
        """Retargets an episode.

        Args:
            keypoints: (T, 2, 21, 3) world-frame human keypoints (left, right).
            wrist_pose: (T, 2, 7) human wrist poses (canonical frame), world.
            confidence: (T, 2, 21) in [0, 1], or None (all 1).
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        wp = np.asarray(wrist_pose, dtype=np.float64)
        n = kp.shape[0]
        if kp.shape != (n, 2, len(HUMAN_KEYPOINTS), 3) or wp.shape != (n, 2, 7) or n == 0:
            raise ConfigError(f"retarget needs keypoints (T, 2, 21, 3) and wrist poses (T, 2, 7), T >= 1; got "
                              f"{kp.shape} and {wp.shape}")
        conf = None if confidence is None else np.asarray(confidence, dtype=np.float64)
        dof = self.embodiment.dof
        raw = np.zeros((n, 2, dof))
        joints = np.zeros((n, 2, dof))
        wrist = np.zeros((n, 2, 7))
        tip_error = np.zeros((n, 2))
        alpha = self.config.smoothing
        t0, c0 = time.perf_counter(), time.process_time()
        local_all = np.zeros((n, 2, len(HUMAN_KEYPOINTS), 3))
        for s, side in enumerate(SIDES):
            hand = self.hands[side]
            pos, rot = vec_to_pose(wp[:, s])
            local_all[:, s] = np.einsum("tkj,tji->tki", kp[:, s] - pos[:, None], rot)
            rpos = pos + np.einsum("tij,j->ti", rot, hand.offset_pos)
            rrot = rot @ hand.offset_rot
            wrist[:, s] = np.concatenate([rpos, matrix_to_quat(rrot)], axis=-1)
            q_prev = None
            for t in range(n):
                q = hand.solve(local_all[t, s], None if conf is None else conf[t, s], q_prev)
                raw[t, s] = q
                q_prev = q
                joints[t, s] = q if t == 0 else alpha * q + (1.0 - alpha) * joints[t - 1, s]
        solve_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        for s, side in enumerate(SIDES):
            hand = self.hands[side]
            for t in range(n):
                tip_error[t, s] = hand.tip_error(joints[t, s], local_all[t, s])
        lower = np.stack([self.hands[s].lower for s in SIDES])
        upper = np.stack([self.hands[s].upper for s in SIDES])
        violations = int(np.sum((joints < lower - 1e-12) | (joints > upper + 1e-12)))
        return RetargetResult(joints=joints, wrist=wrist, actions=episode_actions(wrist, joints),
                              tip_error=tip_error, limit_violations=violations, solve_s=solve_s, cpu_s=cpu_s,
                              raw_joints=raw)


def episode_actions(wrist: ArrayLike, joints: ArrayLike) -> NDArray[np.float64]:
    """Per-step robot actions (T, D) that drive the wrists along `wrist` (T, 2, 7) and the hands to `joints`.

    Built as one chunk relative to frame 0 (EgoScale's dW_t = W_0^-1 W_t) and converted by the shared
    utility; step t moves the commanded wrist from W_t to W_{t+1} and targets the joints of frame t + 1;
    the last step holds still.
    """
    w = np.asarray(wrist, dtype=np.float64)
    q = np.asarray(joints, dtype=np.float64)
    n, dof = q.shape[0], q.shape[2]
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    chunk = np.zeros((n, 2 * (WRIST_DIM + dof)))
    for s in range(2):
        pos, rot = vec_to_pose(w[:, s])
        off = s * (WRIST_DIM + dof)
        r0 = rot[0]
        chunk[:, off:off + 3] = (pos[nxt] - pos[0]) @ r0
        chunk[:, off + 3:off + 9] = matrix_to_rot6d(np.einsum("ji,tjk->tik", r0, rot[nxt]))
        chunk[:, off + WRIST_DIM:off + WRIST_DIM + dof] = q[nxt, s]
    return chunk_to_step_actions(chunk, dof)


def retarget_recorder(recorder: Any, retargeter: Retargeter) -> RetargetResult:
    """Retargets a recorded human episode (`egosim.data.writer.HumanEpisodeRecorder`) and stores its
    actions in it; the collection of simulated human demos and the EgoDex import both call this."""
    from egosim.data.format import CONFIDENCE_KEY, KEYPOINTS_KEY, WRIST_POSE_KEY

    result = retargeter.retarget(recorder.column(KEYPOINTS_KEY), recorder.column(WRIST_POSE_KEY),
                                 recorder.column(CONFIDENCE_KEY))
    recorder.set_actions(result.actions)
    return result


def measure_human_alignment(embodiment: str | Embodiment,
                            hand: KinematicHand = KinematicHand()) -> tuple[float, dict[str, tuple[float, ...]]]:
    """The scale and the wrist offset per side that the Embodiment record should hold (module docstring).

    Returns:
        (human_scale, {side: (x, y, z, qw, qx, qy, qz)}): the offset is the robot wrist's pose in the
        scaled reference hand's canonical wrist frame.
    """
    import mujoco

    emb = get_embodiment(embodiment)
    finger_tips = [k for k in emb.keypoint_map if _kind(k) == "tip" and not k.startswith("thumb")]
    fit = ["wrist"] + [k for k in emb.keypoint_map if _kind(k) == "knuckle" and not k.startswith("thumb")] + finger_tips
    points: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for side in SIDES:
        model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
        data = mujoco.MjData(model)
        q = emb.grasp_pose("open", side)
        for j, name in enumerate(emb.joint_names):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = q[j]
        mujoco.mj_kinematics(model, data)
        wid = model.site(emb.wrist_site).id
        rw, pw = data.site_xmat[wid].reshape(3, 3), data.site_xpos[wid]
        robot = np.array([(data.site_xpos[model.site(emb.keypoint_map[k]).id] - pw) @ rw for k in fit])
        kp = hand.keypoints(np.zeros((5, 4)), side)
        hpos, hrot = wrist_frame(kp, side)
        points[side] = (robot, np.array([(kp[KP[k]] - hpos) @ hrot for k in fit]))
    tips = [fit.index(k) for k in finger_tips]
    scale = float(np.mean([np.linalg.norm(r[tips], axis=1).mean() / np.linalg.norm(h[tips], axis=1).mean()
                           for r, h in points.values()]))
    offsets: dict[str, tuple[float, ...]] = {}
    for side, (robot, human) in points.items():
        target = scale * human  # Kabsch: the rotation and translation taking robot points onto target
        rc, tc = robot.mean(axis=0), target.mean(axis=0)
        u, _, vt = np.linalg.svd((robot - rc).T @ (target - tc))
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        offsets[side] = tuple(float(v) for v in np.concatenate([tc - rot @ rc, matrix_to_quat(rot)]))
    return scale, offsets


__all__ = ["HandRetargeter", "RetargetConfig", "RetargetResult", "Retargeter", "episode_actions",
           "measure_human_alignment", "retarget_recorder"]
