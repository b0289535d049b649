"""The one Gymnasium env class for every (task, embodiment) pair.

Spaces (DESIGN.md "Spaces"):
- Action (float64, 2 x (9 + dof)), left hand then right: wrist delta `xyz` (metres) + `rot6d`,
  relative to the current *commanded* wrist pose and expressed in that wrist's frame; then absolute
  hand-joint targets (radians). Out-of-range values are clipped to the action space: each position
  component to +-max_wrist_speed x control period, rot6d components to [-1, 1], joint targets to the
  joint limits. After decoding, the rotation is limited to max_wrist_rot_speed x control period and
  the commanded position to the embodiment's workspace box. An action of the wrong shape or with NaN
  or inf raises `InvalidActionError`.
- Observation (Dict): `ego_view`, `left_wrist_view`, `right_wrist_view` (uint8 H x W x 3; absent with
  obs_mode="state"); `state` (float32, per side: wrist xyz + rot6d in the rig frame, then hand joint
  positions); `instruction` (text); `privileged` (float32 object state) when privileged=True.
- Reward: the change of the rubric score, so an episode's return equals its final score.
- info: `milestones` (latched: reached at any time), `score`, `is_success`, `sim_unstable`,
  `mujoco_warnings` (new MuJoCo warnings this step), plus the task's options when it has any
  (`Task.options()`, e.g. the cloth tasks' `pinch`). On the human embodiment also `human`: what a
  tracking pipeline would report for the frame of this observation (`human_observation`):
  `keypoints` (2, 21, 3) float32, left hand then right, in `HUMAN_KEYPOINTS` order, world (= rig)
  frame, metres, z up; `keypoint_confidence` (2, 21) float32, 1.0 (the simulator's are exact; see
  `egosim.data.human_noise` for a real pipeline's); `wrist_pose` (2, 7) float64, xyz + quaternion
  wxyz of the canonical wrist frame of the keypoints (`egosim.keypoints`: origin the wrist, +x toward
  the middle knuckle, +z out of the palm), as every human dataset stores it; `camera_pose` (7,)
  float64, the ego camera (MuJoCo/ARKit camera frame: +x right, +y up, looking along -z).
- The human embodiment's ego camera moves like a head (`egosim.head`; `RigConfig.head_motion`),
  seeded from the reset seed; the robots' is fixed.
Task options (`task_options={...}`) go to `Task.configure`; the task's `before_step` hook runs once per
control step before physics, and its `is_unstable` check joins MuJoCo's divergence warnings.
An episode ends (terminated) on success or when the physics becomes unstable (`sim_unstable`), and is
truncated at the task's horizon.
Rates: the task's `control_hz` (20 Hz for the benchmark tasks, 30 Hz for `tabletop_play`'s human-rate
data) on its `physics_timestep` (default 2 ms), unless the arguments name others; the physics step must
divide the control period. A task may draw its instruction, rubric and horizon per episode (the
procedural `tabletop_play` does, in `apply_initial_state`): the env reads them at every reset.
"""

from __future__ import annotations

import dataclasses
import math
import string
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from egosim.actions import WRIST_DIM, side_slices
from egosim.embodiment import HUMAN_KEYPOINTS, SIDES, Embodiment, get_embodiment
from egosim.errors import ConfigError, InvalidActionError, InvalidChoiceError
from egosim.geometry import ROT6D_FROM_XMAT
from egosim.rendering import CameraRenderer
from egosim.head import HeadController
from egosim.rig import (
    CAMERAS,
    DEFAULT_TIMESTEP,
    HOME_WRIST_MAT,
    TABLE_HEIGHT,
    RigConfig,
    RigHandles,
    build_rig,
    moving_head,
)
from egosim.task import InitialState, Task

OBS_MODES = ("rgb", "state")
_UNSTABLE = (
    int(mujoco.mjtWarning.mjWARN_BADQACC), int(mujoco.mjtWarning.mjWARN_BADQVEL), int(mujoco.mjtWarning.mjWARN_BADQPOS)
)


def _as_index(idx: Any) -> slice | NDArray[np.int64]:
    """A contiguous index array as a slice (cheaper to assign through), otherwise unchanged."""
    arr = np.asarray(idx, dtype=np.int64)
    if arr.size and np.array_equal(arr, np.arange(arr[0], arr[0] + arr.size)):
        return slice(int(arr[0]), int(arr[0]) + arr.size)
    return arr


class EgosimEnv(gym.Env):
    """A bimanual dexterous-hand task in MuJoCo (see the module docstring for the spaces)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: Task,
        embodiment: str | Embodiment,
        *,
        obs_mode: str = "rgb",
        privileged: bool = False,
        render_mode: str | None = None,
        control_hz: float | None = None,
        rig_config: RigConfig = RigConfig(),
        render_size: tuple[int, int] = (480, 640),
        task_options: dict[str, Any] | None = None,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise InvalidChoiceError("obs_mode", obs_mode, OBS_MODES)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidChoiceError("render_mode", render_mode, self.metadata["render_modes"])
        # The task names its own rates (most: 20 Hz on 2 ms physics; tabletop_play: 30 Hz data for human
        # play on 1/600 s); explicit arguments win.
        control_hz = float(task.control_hz if control_hz is None else control_hz)
        timestep = next(t for t in (rig_config.timestep, task.physics_timestep, DEFAULT_TIMESTEP) if t is not None)
        rig_config = dataclasses.replace(rig_config, timestep=timestep)
        n_sub = round(1.0 / (control_hz * timestep))
        if n_sub < 1 or abs(n_sub * control_hz * timestep - 1.0) > 1e-6:
            raise ConfigError(
                f"control_hz={control_hz} is not a whole number of physics steps of {timestep} s"
            )
        if task_options:
            task.configure(task_options)
        self.task = task
        self._task_info = task.options()
        self.embodiment = get_embodiment(embodiment)
        self.obs_mode = obs_mode
        self.use_privileged = privileged
        self.render_mode = render_mode
        self.control_hz = control_hz
        self.control_dt = 1.0 / control_hz
        self.metadata = {**self.metadata, "render_fps": control_hz}
        self.n_substeps = n_sub
        self.rig_config = rig_config
        self.render_size = render_size
        self.horizon = int(round(task.horizon_s * control_hz))

        spec = build_rig(self.embodiment, rig_config)
        task.build(spec, self.embodiment)
        self.model: mujoco.MjModel = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.rig = RigHandles.resolve(self.model, self.embodiment)
        task.bind(self.model, self.rig, self.embodiment)

        emb = self.embodiment
        self._slices = side_slices(emb.dof)
        self._max_step = emb.max_wrist_speed * self.control_dt
        self._max_rot = emb.max_wrist_rot_speed * self.control_dt
        low, high = [], []
        for side in SIDES:
            h = self.rig.hands[side]
            low += [-self._max_step] * 3 + [-1.0] * 6 + h.ctrl_low.tolist()
            high += [self._max_step] * 3 + [1.0] * 6 + h.ctrl_high.tolist()
        self.action_space = spaces.Box(np.array(low), np.array(high), dtype=np.float64)
        self._act_low, self._act_high = self.action_space.low, self.action_space.high
        self.state_dim = 2 * (WRIST_DIM + emb.dof)
        obs: dict[str, spaces.Space] = {}
        if obs_mode == "rgb":
            hgt, wid = rig_config.image_size
            for cam in CAMERAS:
                obs[cam] = spaces.Box(0, 255, (hgt, wid, 3), dtype=np.uint8)
        obs["state"] = spaces.Box(-np.inf, np.inf, (self.state_dim,), dtype=np.float32)
        obs["instruction"] = spaces.Text(max_length=512, charset=string.printable)
        if privileged:
            obs["privileged"] = spaces.Box(-np.inf, np.inf, (task.privileged_dim,), dtype=np.float32)
        self.observation_space = spaces.Dict(obs)

        # Per-side precomputed index arrays for the hot path.
        self._hand_ctrl = [self.rig.hands[s].actuators for s in SIDES]
        # Per side: (wrist action slice, hand action slice, hand actuator indices), resolved once.
        self._routes = [
            (self._slices[f"{s}_wrist_eef"], self._slices[f"{s}_hand_joints"], _as_index(self._hand_ctrl[i]))
            for i, s in enumerate(SIDES)
        ]
        self._hand_qpos = [self.rig.hands[s].joint_qpos for s in SIDES]
        self._wrist_sites = [self.rig.hands[s].wrist_site for s in SIDES]
        self._mocap = [self.rig.hands[s].target_mocap for s in SIDES]
        self._workspace_lists = [
            (list(map(float, emb.workspace[s].low)), list(map(float, emb.workspace[s].high))) for s in SIDES
        ]
        self._q_delta, self._q_new, self._m_delta, self._p_delta = np.zeros(4), np.zeros(4), np.zeros(9), np.zeros(3)
        self._state_buf = np.zeros(self.state_dim, dtype=np.float32)
        self._home_quat = np.zeros(4)
        mujoco.mju_mat2Quat(self._home_quat, HOME_WRIST_MAT.ravel())
        # The human embodiment: its keypoint sites (2, 21), resolved once, and the head model.
        self._keypoint_sites = None
        if emb.is_human:
            self._keypoint_sites = np.array([[self.model.site(Embodiment.prefixed(s, emb.keypoint_map[k])).id
                                              for k in HUMAN_KEYPOINTS] for s in SIDES], dtype=np.intp)
        self._kp_middle, self._kp_index, self._kp_little = (
            HUMAN_KEYPOINTS.index(k) for k in ("middle_knuckle", "index_knuckle", "little_knuckle"))
        self._palm_sites = np.array([self.rig.hands[s].palm_site for s in SIDES], dtype=np.intp)
        self._head: HeadController | None = None
        if moving_head(emb, rig_config):
            self._head = HeadController(emb.head_motion, TABLE_HEIGHT, self.control_dt)  # type: ignore[arg-type]
        self._renderer: CameraRenderer | None = None
        self._video_renderer: CameraRenderer | None = None
        self._reached: dict[str, bool] = {}
        self._score = 0.0
        self._steps = 0
        self._warn = [0] * len(self.data.warning.number)
        self.initial_state: InitialState | None = None

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Restores all of mjData and places the props.

        Options:
            initial_state: int id into the task's fixed evaluation states, or an initial-state dict.
            Without it the state is drawn from the env's seeded random generator.
        """
        super().reset(seed=seed)
        options = options or {}
        init = options.get("initial_state")
        if init is None:
            state = {"id": None, **self.task.sample_initial_state(self.np_random)}
        elif isinstance(init, (int, np.integer)):
            states = self.task.eval_initial_states()
            if not 0 <= int(init) < len(states):
                raise ConfigError(f"initial_state {int(init)} out of range; {self.task.name} has ids 0..{len(states) - 1}")
            state = states[int(init)]
        elif isinstance(init, dict):
            state = init
        else:
            raise ConfigError(f"initial_state must be an int id or a dict, got {type(init).__name__}")
        self.initial_state = state

        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        for side, mocap, qadr in zip(SIDES, self._mocap, self._hand_qpos):
            h = self.rig.hands[side]
            pos = np.asarray(self.embodiment.home_wrist_pos[side])
            d.mocap_pos[mocap] = pos
            d.mocap_quat[mocap] = self._home_quat
            d.qpos[h.free_qpos : h.free_qpos + 3] = pos
            d.qpos[h.free_qpos + 3 : h.free_qpos + 7] = self._home_quat
            open_pose = self.embodiment.grasp_pose("open", side)
            d.qpos[qadr] = open_pose
            d.ctrl[h.actuators] = open_pose
        self.task.apply_initial_state(m, d, state)
        self.horizon = int(round(self.task.horizon_s * self.control_hz))  # a task may set its horizon per episode
        mujoco.mj_forward(m, d)
        if self._head is not None:
            # Its own generator, drawn from the reset seed after the initial state, so the head
            # never changes what the task samples.
            rng = np.random.default_rng(int(self.np_random.integers(2**63)))
            self._set_head(*self._head.reset(d.site_xpos[self._palm_sites], rng))
            mujoco.mj_forward(m, d)
        self._warn = d.warning.number.tolist()
        self._reached = {name: False for name in self.task.rubric.names}
        self._score = 0.0
        self._steps = 0
        self._latch()
        return self._observation(), self._info(False, 0)

    def step(self, action: NDArray[np.float64]):
        a = self._validate(action)
        m, d = self.model, self.data
        for i, (wrist, hand, ctrl) in enumerate(self._routes):
            self._move_target(i, a[wrist])
            d.ctrl[ctrl] = a[hand]
        if self._head is not None:
            self._set_head(*self._head.step(d.site_xpos[self._palm_sites]))
        self.task.before_step(m, d)
        try:
            mujoco.mj_step(m, d, nstep=self.n_substeps)
            fatal = False
        except mujoco.FatalError:  # e.g. the constraint arena overflows when contacts explode
            fatal = True  # a blow-up ends the episode with sim_unstable; it never crashes the run
        self._steps += 1

        warn_now = d.warning.number.tolist()
        before = self._warn
        new_warnings = sum(warn_now) - sum(before)
        # A sum is finite only if every term is (NaN and inf propagate): one pass, no temporaries.
        unstable = fatal or any(warn_now[k] > before[k] for k in _UNSTABLE) or not math.isfinite(
            float(d.qpos.sum()) + float(d.qvel.sum())
        ) or self.task.is_unstable(m, d)
        self._warn = warn_now
        prev = self._score
        success = False
        if not unstable:
            self._latch()
            success = self.task.is_success(m, d, self._reached)
        reward = self._score - prev
        terminated = success or unstable
        truncated = (not terminated) and self._steps >= self.horizon
        obs = self._observation()
        return obs, reward, terminated, truncated, self._info(success, new_warnings, unstable)

    def render(self) -> NDArray[np.uint8] | None:
        """The ego camera at `render_size` (for videos); None when render_mode is None."""
        if self.render_mode is None:
            return None
        if self._video_renderer is None:
            self._video_renderer = CameraRenderer(self.model, *self.render_size)
        return self._video_renderer.render(self.data, self.rig.cameras["ego_view"])

    def close(self) -> None:
        for r in (self._renderer, self._video_renderer):
            if r is not None:
                r.close()
        self._renderer = self._video_renderer = None

    # ------------------------------------------------------------------ helpers
    @property
    def score(self) -> float:
        return self._score

    @property
    def steps(self) -> int:
        return self._steps

    def commanded_wrist_pose(self, side: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(position, rotation matrix) of the commanded wrist pose of `side`, rig frame."""
        i = SIDES.index(side)
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, self.data.mocap_quat[self._mocap[i]])
        return self.data.mocap_pos[self._mocap[i]].copy(), mat.reshape(3, 3)

    def wrist_pose(self, side: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(position, rotation matrix) of the measured wrist site of `side`, rig frame."""
        sid = self._wrist_sites[SIDES.index(side)]
        return self.data.site_xpos[sid].copy(), self.data.site_xmat[sid].reshape(3, 3).copy()

    def human_observation(self) -> dict[str, NDArray[Any]]:
        """The clean human-tracking frame of the current state (see the module docstring, `info["human"]`).

        Raises `ConfigError` on an embodiment without the 21 keypoint sites (the robots).
        """
        if self._keypoint_sites is None:
            raise ConfigError(f"{self.embodiment.name} has no human keypoint sites; only the human embodiment does")
        d = self.data
        keypoints = d.site_xpos[self._keypoint_sites]
        wrist = np.zeros((2, 7))
        for i in range(2):
            self._canonical_wrist(keypoints[i], 1.0 if SIDES[i] == "right" else -1.0, wrist[i])
        cam = self.rig.cameras["ego_view"]
        camera = np.zeros(7)
        camera[:3] = d.cam_xpos[cam]
        mujoco.mju_mat2Quat(camera[3:], d.cam_xmat[cam])
        return {
            "keypoints": keypoints.astype(np.float32),
            "keypoint_confidence": np.ones((2, len(HUMAN_KEYPOINTS)), dtype=np.float32),
            "wrist_pose": wrist,
            "camera_pose": camera,
        }

    def _canonical_wrist(self, kp: NDArray[np.float64], sign: float, out: NDArray[np.float64]) -> None:
        """`egosim.keypoints.canonical_wrist_pose` of one hand's keypoints, written with MuJoCo's
        vector helpers: it runs every step, where numpy's per-call overhead on 3-vectors dominates
        (the tests check it against `canonical_wrist_pose`)."""
        w, mid, idx, lit = kp[0], kp[self._kp_middle], kp[self._kp_index], kp[self._kp_little]
        x, a, b, n, y = np.empty(3), idx - w, lit - w, np.empty(3), np.empty(3)
        x[:] = mid - w
        mujoco.mju_normalize3(x)
        mujoco.mju_cross(n, a, b)
        n *= sign
        n -= mujoco.mju_dot3(n, x) * x
        mujoco.mju_normalize3(n)
        mujoco.mju_cross(y, n, x)
        out[:3] = w
        mujoco.mju_mat2Quat(out[3:], np.array([x, y, n]).T.ravel())

    def _set_head(self, pos: NDArray[np.float64], quat: NDArray[np.float64]) -> None:
        k = self.rig.head_mocap
        self.data.mocap_pos[k] = pos
        self.data.mocap_quat[k] = quat

    def _validate(self, action: Any) -> NDArray[np.float64]:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidActionError(f"action is not numeric: {exc}") from exc
        if a.shape != self.action_space.shape:
            raise InvalidActionError(
                f"action has shape {a.shape}; {self.embodiment.name} expects {self.action_space.shape} "
                f"(left wrist 9, left hand {self.embodiment.dof}, right wrist 9, right hand {self.embodiment.dof})"
            )
        if not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            raise InvalidActionError(f"action has NaN or inf at indices {bad}")
        return np.minimum(np.maximum(a, self._act_low), self._act_high)

    def _move_target(self, i: int, wrist: NDArray[np.float64]) -> None:
        """Applies one relative wrist command to side i's mocap target.

        Written on quaternions with MuJoCo's C helpers and plain floats: this runs twice per
        control step and numpy's per-call overhead on 3x3 matrices cost more than the physics
        of a light hand (see benchmarks/env_step.py).
        """
        d = self.data
        mocap = self._mocap[i]
        ax, ay, az, bx, by, bz = wrist[3:9].tolist()
        # rot6d -> matrix by Gram-Schmidt (degenerate input: no rotation, see rot6d_to_matrix).
        n1 = math.sqrt(ax * ax + ay * ay + az * az)
        q = self._q_delta
        if n1 < 1e-6:
            q[:] = (1.0, 0.0, 0.0, 0.0)
        else:
            ax, ay, az = ax / n1, ay / n1, az / n1
            dot = ax * bx + ay * by + az * bz
            bx, by, bz = bx - dot * ax, by - dot * ay, bz - dot * az
            n2 = math.sqrt(bx * bx + by * by + bz * bz)
            if n2 < 1e-6:
                q[:] = (1.0, 0.0, 0.0, 0.0)
            else:
                bx, by, bz = bx / n2, by / n2, bz / n2
                m = self._m_delta
                m[:] = (ax, bx, ay * bz - az * by, ay, by, az * bx - ax * bz, az, bz, ax * by - ay * bx)
                mujoco.mju_mat2Quat(q, m)
        # Limit the rotation to the per-step maximum about the same axis.
        w = min(1.0, abs(float(q[0])))
        angle = 2.0 * math.acos(w)
        if angle > self._max_rot:
            sign = 1.0 if q[0] >= 0 else -1.0
            vn = math.sqrt(float(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]))
            s_half = math.sin(0.5 * self._max_rot) / vn * sign
            q[:] = (math.cos(0.5 * self._max_rot), q[1] * s_half, q[2] * s_half, q[3] * s_half)
        cur = d.mocap_quat[mocap]
        step = self._p_delta
        mujoco.mju_rotVecQuat(step, wrist[0:3], cur)
        new = self._q_new
        mujoco.mju_mulQuat(new, cur, q)
        mujoco.mju_normalize4(new)
        d.mocap_quat[mocap] = new
        pos = d.mocap_pos[mocap]
        low, high = self._workspace_lists[i]
        d.mocap_pos[mocap] = [min(max(float(pos[k] + step[k]), low[k]), high[k]) for k in range(3)]

    def _latch(self) -> None:
        now = self.task.milestones(self.model, self.data)
        for k, v in now.items():
            if v:
                self._reached[k] = True
        self._score = self.task.rubric.score(self._reached)

    def _observation(self) -> dict[str, Any]:
        d = self.data
        buf = self._state_buf
        off = 0
        for i in range(2):
            sid = self._wrist_sites[i]
            buf[off : off + 3] = d.site_xpos[sid]
            buf[off + 3 : off + 9] = d.site_xmat[sid][ROT6D_FROM_XMAT]
            qadr = self._hand_qpos[i]
            buf[off + 9 : off + 9 + len(qadr)] = d.qpos[qadr]
            off += 9 + len(qadr)
        obs: dict[str, Any] = {"state": buf.copy(), "instruction": self.task.instruction}
        if self.obs_mode == "rgb":
            if self._renderer is None:
                self._renderer = CameraRenderer(self.model, *self.rig_config.image_size)
            for cam in CAMERAS:
                obs[cam] = self._renderer.render(d, self.rig.cameras[cam])
        if self.use_privileged:
            obs["privileged"] = self.task.privileged(self.model, d).astype(np.float32)
        return obs

    def _info(self, success: bool, new_warnings: int, unstable: bool = False) -> dict[str, Any]:
        info = {
            "milestones": dict(self._reached),
            "score": self._score,
            "is_success": bool(success),
            "sim_unstable": bool(unstable),
            "mujoco_warnings": new_warnings,
        }
        if self._task_info:
            info.update(self._task_info)
        if self._keypoint_sites is not None:
            info["human"] = self.human_observation()
        return info
