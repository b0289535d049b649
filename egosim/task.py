"""The contract between the env (core) and benchmark tasks (`egosim.tasks`).

A task adds its props to the rig, places them from an initial-state record, reads milestones from
simulator state and owns a scripted expert. Tasks reach the hands only through `RigHandles` and the
`Embodiment` record (fingertip sites, wrist and palm sites, grasp poses, workspace).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

InitialState = dict[str, Any]  # JSON-serialisable parameters, including an "id"


@dataclass(frozen=True)
class Milestone:
    """One rubric item: a predicate on simulator state worth `points`."""

    name: str
    points: float
    description: str


@dataclass(frozen=True)
class Rubric:
    """EgoScale's scoring: `additive` sums reached points, `progress` takes the furthest milestone.

    Scores are clipped to [0, 1]. Milestones are listed in task order.
    """

    mode: Literal["additive", "progress"]
    milestones: tuple[Milestone, ...]

    def __post_init__(self) -> None:
        if self.mode not in ("additive", "progress"):
            raise ConfigError(f"rubric mode {self.mode!r}; valid choices: additive, progress")
        names = [m.name for m in self.milestones]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate milestone names in rubric: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.milestones)

    def score(self, reached: Mapping[str, bool]) -> float:
        """Score in [0, 1] for the set of reached milestones."""
        pts = [m.points for m in self.milestones if reached.get(m.name, False)]
        if not pts:
            return 0.0
        raw = sum(pts) if self.mode == "additive" else max(pts)
        return float(min(max(raw, 0.0), 1.0))


class Task(abc.ABC):
    """Base class of every benchmark task (one module per task in `egosim.tasks`)."""

    name: ClassVar[str]  # registry key, e.g. "pen_in_bin"
    env_name: ClassVar[str]  # CamelCase for env ids, e.g. "PenInBin"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset()
    instruction: ClassVar[str]
    rubric: ClassVar[Rubric]
    horizon_s: ClassVar[float]  # episode length, seconds of simulated time (read at every reset: a task may set it per episode)
    control_hz: ClassVar[float] = 20.0  # control and data rate the env runs the task at unless told otherwise
    physics_timestep: ClassVar[float | None] = None  # physics step (s) unless the rig config names one; None: the rig's
    privileged_dim: ClassVar[int]
    initial_states_file: ClassVar[Path | None] = None  # JSON list of evaluation initial states

    @abc.abstractmethod
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        """Adds the task's props (bodies, sites, materials) to the rig spec."""

    @abc.abstractmethod
    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        """Resolves the task's element names to ids in the compiled model, once."""

    @abc.abstractmethod
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Draws a random initial-state record (object poses and variants)."""

    @abc.abstractmethod
    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        """Places the props of `state` into freshly reset data (before `mj_forward`)."""

    @abc.abstractmethod
    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        """Instantaneous milestone predicates on the current state (the env latches them)."""

    @abc.abstractmethod
    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        """End-to-end completion: every milestone reached and the final state holds now."""

    @abc.abstractmethod
    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        """Object state for experts and RL (layout documented by the task)."""

    @abc.abstractmethod
    def make_expert(self, env: EgosimEnv) -> Policy:
        """A scripted expert that solves the task through physics, using privileged state."""

    # -------------------------------------------------------------- optional hooks (no-op defaults)
    def configure(self, options: Mapping[str, Any]) -> None:
        """Applies task options given to the env (`task_options=`); a task without options rejects any.

        Cloth tasks take `pinch` (see `egosim.tasks.cloth`). Raise `InvalidChoiceError` for a bad value.
        """
        if options:
            raise ConfigError(f"task {self.name!r} takes no options; got {sorted(options)}")

    def options(self) -> dict[str, Any]:
        """The task's options in effect, merged into every step's `info` (empty for most tasks)."""
        return {}

    def before_step(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Called once per control step after the action is applied and before physics (e.g. a pinch model)."""

    def is_unstable(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """Task-specific instability (e.g. a cloth exploding or sinking through the table); ends the
        episode with `sim_unstable` like a MuJoCo divergence."""
        return False

    def eval_initial_states(self) -> list[InitialState]:
        """The task's fixed, versioned evaluation initial states (independent of workers or batches)."""
        if self.initial_states_file is None:
            raise ConfigError(f"task {self.name!r} ships no evaluation initial states")
        return load_initial_states(self.initial_states_file, self.name, self.version)

    def generate_eval_states(self, n: int, seed: int) -> list[InitialState]:
        """Draws `n` states from `seed`; used once to write `initial_states_file`."""
        rng = np.random.default_rng(seed)
        return [{"id": i, **self.sample_initial_state(rng)} for i in range(n)]


def load_initial_states(path: Path, task: str, version: int) -> list[InitialState]:
    """Reads a task's evaluation-state file and checks it belongs to this task version."""
    doc = json.loads(Path(path).read_text())
    if doc.get("task") != task or doc.get("version") != version:
        raise ConfigError(
            f"{path} holds states for task {doc.get('task')!r} v{doc.get('version')}, expected {task!r} v{version}"
        )
    states = doc["states"]
    if [s["id"] for s in states] != list(range(len(states))):
        raise ConfigError(f"{path}: state ids must be 0..{len(states) - 1} in order")
    return states


def dump_initial_states(path: Path, task: str, version: int, seed: int, states: Sequence[InitialState]) -> None:
    """Writes evaluation states with the seed they were drawn from (so they can be checked)."""
    doc = {"task": task, "version": version, "seed": seed, "states": list(states)}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")
