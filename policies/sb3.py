"""The `sb3` policy kind: a Stable-Baselines3 PPO baseline on privileged state, with pickle-free checkpoints.

The baseline sees what `egosim.wrappers.StateOnly` gives (robot state then privileged object state) and
acts through `egosim.wrappers.NormalizedAction` ([-1, 1] position, axis-angle and joint targets).

Why PPO rather than SAC: the cost of training here is the simulator (about a millisecond per control
step on one core), and PPO spends little compute per env step (a few epochs over each rollout, against
SAC's gradient step per env step), scales over parallel envs, and needs no replay buffer of
100k+ transitions. Its policy is one `ActorCriticPolicy` whose `state_dict` holds everything that acts,
so a checkpoint is that state_dict plus a JSON config.

Checkpoint folder (`train_sb3` writes it; SB3's own `.zip` is never written nor read, because it holds
pickled objects, and unpickling runs arbitrary code):

    config.json         {"format": "egosim-sb3", "format_version": 1, "algo", "task", "embodiment",
                         "observation_dim", "action_dim", "net_arch", "activation", "max_episode_steps"}
    model.safetensors   the policy network's state_dict (actor, critic, log_std)
    provenance.json     steps, seed, wall time, versions of egosim / SB3 / torch, creation time
    progress.csv        the learning curve: steps, episodes, mean return and success of recent episodes

Train with `python -m egosim.policies.sb3 --task pen_in_bin --embodiment unitree_dex3 --steps N
--out DIR`; evaluate with `egosim eval policy=sb3 checkpoint=DIR tasks=[pen_in_bin]
embodiments=[unitree_dex3]`. `stable-baselines3` is the optional extra `rl` and is imported lazily.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

import egosim
from egosim.errors import ConfigError, EgosimError, InvalidChoiceError
from egosim.pickle_guard import find_pickle_files
from egosim.wrappers import NormalizedAction, StateOnly, flat_state

FORMAT = "egosim-sb3"
FORMAT_VERSION = 1
ALGOS = ("ppo",)
VEC_ENVS = ("dummy", "subproc")
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
REQUIRED_FILES = ("config.json", "model.safetensors", "provenance.json")
DEFAULT_NET_ARCH = (256, 256)


class SB3CheckpointError(EgosimError, ValueError):
    """An sb3 checkpoint folder that cannot be loaded; the message names the file and what is wrong."""


def _sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError:
        raise ConfigError("policy kind 'sb3' needs stable-baselines3: pip install 'egosim[rl]'") from None
    return stable_baselines3


def make_rl_env(task: str, embodiment: str, max_episode_steps: int | None = None) -> gym.Env:
    """The env the baseline trains on: state-only, privileged, normalised actions, optional time limit."""
    from egosim.tasks import make_env  # policies may import tasks (DESIGN.md: tasks -> policies)

    env: gym.Env = StateOnly(NormalizedAction(make_env(task, embodiment, obs_mode="state", privileged=True)))
    if max_episode_steps is not None:
        if int(max_episode_steps) < 1:
            raise ConfigError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        env = gym.wrappers.TimeLimit(env, max_episode_steps=int(max_episode_steps))
    return env


def build_policy(config: Mapping[str, Any]) -> Any:
    """An untrained SB3 `ActorCriticPolicy` with the architecture `config` describes (no pickle involved)."""
    _sb3()
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space = gym.spaces.Box(-np.inf, np.inf, (int(config["observation_dim"]),), dtype=np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (int(config["action_dim"]),), dtype=np.float32)
    return ActorCriticPolicy(obs_space, act_space, lr_schedule=lambda _progress: 0.0,
                             net_arch=list(config["net_arch"]), activation_fn=ACTIVATIONS[config["activation"]])


# --------------------------------------------------------------------------- checkpoints
def save_sb3_checkpoint(folder: str | os.PathLike[str], policy: Any, config: Mapping[str, Any],
                        provenance: Mapping[str, Any]) -> Path:
    """Writes config.json, model.safetensors (the policy's state_dict) and provenance.json into `folder`."""
    from safetensors.torch import save_file

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    save_file(tensors, str(root / "model.safetensors"))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "egosim_version": egosim.__version__, **config}
    (root / "config.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (root / "provenance.json").write_text(json.dumps(dict(provenance), indent=2) + "\n", encoding="utf-8")
    return root


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SB3CheckpointError(f"{path.name} is not valid JSON text ({path}): {exc}") from None


def _check_config(meta: Any, root: Path) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise SB3CheckpointError(f"config.json in {str(root)!r} must hold an object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise SB3CheckpointError(f"config.json: format {meta.get('format')!r} is not {FORMAT!r} "
                                 "(is this another kind's checkpoint?)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise SB3CheckpointError(f"config.json: format_version {meta.get('format_version')!r}; this egosim "
                                 f"reads {FORMAT_VERSION}")
    missing = [k for k in ("algo", "task", "embodiment", "observation_dim", "action_dim", "net_arch", "activation")
               if k not in meta]
    if missing:
        raise SB3CheckpointError(f"config.json lacks keys {missing}")
    if meta["algo"] not in ALGOS:
        raise SB3CheckpointError(f"config.json: unknown algo {meta['algo']!r}; valid choices: {', '.join(ALGOS)}")
    if meta["activation"] not in ACTIVATIONS:
        raise SB3CheckpointError(f"config.json: unknown activation {meta['activation']!r}; valid choices: "
                                 f"{', '.join(ACTIVATIONS)}")
    return meta


def load_sb3_checkpoint(folder: str | os.PathLike[str]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Rebuilds the policy from config.json and loads model.safetensors: (policy, config, provenance).

    Refuses a folder holding any pickle-format file (the VLA checkpoint's detector: extension, pickle
    header, or a zip with a .pkl member, which is what SB3's own .zip is) without opening it as pickle.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(folder)
    if not root.is_dir():
        raise SB3CheckpointError(f"sb3 checkpoint {str(root)!r} is not a folder (python -m egosim.policies.sb3 "
                                 "writes one)")
    pickles = find_pickle_files(root)
    if pickles:
        raise SB3CheckpointError(
            f"sb3 checkpoint folder {str(root)!r} holds pickle-format files, which egosim refuses to load "
            f"(unpickling runs arbitrary code): {', '.join(pickles)}. Keep weights in model.safetensors only.")
    absent = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if absent:
        raise SB3CheckpointError(f"sb3 checkpoint {str(root)!r} lacks {absent}; expected {list(REQUIRED_FILES)}")
    config = _check_config(_read_json(root / "config.json"), root)
    provenance = _read_json(root / "provenance.json")
    policy = build_policy(config)
    try:
        tensors = load_file(str(root / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SB3CheckpointError(f"model.safetensors is not a valid safetensors file ({root}): {exc}") from None
    expected = policy.state_dict()
    problems = [f"missing tensor {k!r}" for k in expected if k not in tensors]
    problems += [f"tensor {k!r} has shape {tuple(tensors[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems += [f"unexpected tensor {k!r}" for k in sorted(set(tensors) - set(expected))]
    if problems:
        raise SB3CheckpointError(f"model.safetensors does not fit config.json: {'; '.join(problems)}")
    policy.load_state_dict(tensors, strict=True)
    policy.set_training_mode(False)
    return policy, config, provenance


# --------------------------------------------------------------------------- the policy kind
class SB3Policy:
    """Plays an sb3 checkpoint: `act` returns one step (a (1, D) chunk), the network's mean action.

    Deterministic (the Gaussian's mean), so `reset(seed)` has nothing to reseed. The env must be the
    checkpoint's task and embodiment: the privileged vector's meaning is task-specific.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, checkpoint: str | None = None) -> None:
        if checkpoint is None:
            raise ConfigError("policy kind 'sb3' needs checkpoint=DIR (python -m egosim.policies.sb3 writes one)")
        torch.set_num_threads(1)
        self.policy, self.config, self.provenance = load_sb3_checkpoint(checkpoint)
        base = env.unwrapped
        task, emb = base.task.name, base.embodiment.name
        if (task, emb) != (self.config["task"], self.config["embodiment"]):
            raise SB3CheckpointError(
                f"sb3 checkpoint {checkpoint!r} was trained on task {self.config['task']!r} with embodiment "
                f"{self.config['embodiment']!r}; the env is {task!r} / {emb!r} (pass tasks=[{self.config['task']}] "
                f"embodiments=[{self.config['embodiment']}])")
        self.actions = NormalizedAction(base)
        obs_dim = base.state_dim + base.task.privileged_dim
        if (obs_dim, self.actions.norm_dim) != (self.config["observation_dim"], self.config["action_dim"]):
            raise SB3CheckpointError(
                f"sb3 checkpoint {checkpoint!r} has observation/action dims {self.config['observation_dim']}/"
                f"{self.config['action_dim']}; the env gives {obs_dim}/{self.actions.norm_dim}")
        self.embodiments = (emb,)

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the policy is deterministic and memoryless."""

    def normalized_action(self, observation: Mapping[str, Any] | NDArray[np.float32]) -> NDArray[np.float32]:
        """The network's [-1, 1] action for a Dict observation or a `StateOnly` vector."""
        flat = observation if isinstance(observation, np.ndarray) else flat_state(dict(observation))
        action, _ = self.policy.predict(np.asarray(flat, dtype=np.float32), deterministic=True)
        return np.asarray(action, dtype=np.float32)

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        """One per-step env action, as a (1, action_dim) chunk."""
        return self.actions.action(self.normalized_action(observation))[None]


# --------------------------------------------------------------------------- training
def _progress_callback(total: int, csv_path: Path, every: int, stream: Any) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        """Prints a progress line and appends the learning curve to progress.csv."""

        def __init__(self) -> None:
            super().__init__()
            self.returns: deque[float] = deque(maxlen=20)
            self.successes: deque[float] = deque(maxlen=20)
            self.episodes = 0
            self.t0 = time.perf_counter()
            self.next_report = every
            self.fh = open(csv_path, "w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.fh)
            self.writer.writerow(["steps", "episodes", "mean_return", "success_rate", "wall_s"])

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"]):
                if done and "episode" in info:
                    self.episodes += 1
                    self.returns.append(float(info["episode"]["r"]))
                    self.successes.append(float(bool(info.get("is_success", False))))
            if self.num_timesteps >= self.next_report or self.num_timesteps >= total:
                self.next_report += every
                self.report()
            return True

        def report(self) -> None:
            wall = time.perf_counter() - self.t0
            ret = float(np.mean(self.returns)) if self.returns else float("nan")
            succ = float(np.mean(self.successes)) if self.successes else float("nan")
            self.writer.writerow([self.num_timesteps, self.episodes, f"{ret:.4f}", f"{succ:.3f}", f"{wall:.1f}"])
            self.fh.flush()
            print(f"sb3: step {self.num_timesteps}/{total} ({100 * self.num_timesteps / total:.0f}%)  "
                  f"episodes {self.episodes}  mean return {ret:.3f}  success {succ:.2f}  "
                  f"{self.num_timesteps / max(wall, 1e-9):.0f} steps/s", file=stream, flush=True)

        def _on_training_end(self) -> None:
            self.fh.close()

    return Progress()


def train_sb3(task: str, embodiment: str, algo: str = "ppo", steps: int = 100_000, seed: int = 0,
              out_dir: str | os.PathLike[str] = "outputs/sb3", *, max_episode_steps: int | None = None,
              n_envs: int = 1, n_steps: int = 2048, batch_size: int = 64, learning_rate: float = 3e-4,
              net_arch: Sequence[int] = DEFAULT_NET_ARCH, activation: str = "tanh", vec_env: str = "dummy",
              report_every: int | None = None, stream: Any = None) -> Path:
    """Trains the PPO baseline on `task` x `embodiment` and writes a checkpoint folder; returns its path.

    `n_steps` is PPO's rollout length per env (capped at `steps`, so tiny runs still update);
    `max_episode_steps` cuts episodes shorter than the task's horizon. `vec_env="subproc"` steps the
    `n_envs` envs in one spawned process each (one per core pays off from about 4 envs); "dummy" steps
    them in this process. Torch uses one thread: envs, not matrix products, are the bottleneck on CPU.
    """
    if algo not in ALGOS:
        raise InvalidChoiceError("sb3 algo", algo, ALGOS)
    if activation not in ACTIVATIONS:
        raise InvalidChoiceError("activation", activation, ACTIVATIONS)
    if vec_env not in VEC_ENVS:
        raise InvalidChoiceError("vec_env", vec_env, VEC_ENVS)
    if int(steps) < 1 or int(n_envs) < 1:
        raise ConfigError(f"steps and n_envs must be >= 1, got steps={steps} n_envs={n_envs}")
    sb3 = _sb3()
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    torch.set_num_threads(1)
    steps, n_envs = int(steps), int(n_envs)
    rollout = max(2, min(int(n_steps), -(-steps // n_envs)))
    # spawn, not fork: an EGL context or torch threads must not cross a fork (as in eval/backends.py)
    cls, kw = (SubprocVecEnv, {"start_method": "spawn"}) if vec_env == "subproc" else (DummyVecEnv, None)
    vec = make_vec_env(make_rl_env, n_envs=n_envs, seed=seed, vec_env_cls=cls, vec_env_kwargs=kw,
                       env_kwargs={"task": task, "embodiment": embodiment, "max_episode_steps": max_episode_steps})
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    model = sb3.PPO("MlpPolicy", vec, n_steps=rollout, batch_size=min(int(batch_size), rollout * n_envs),
                    learning_rate=learning_rate, seed=seed, device="cpu", verbose=0,
                    policy_kwargs={"net_arch": list(net_arch), "activation_fn": ACTIVATIONS[activation]})
    callback = _progress_callback(steps, root / "progress.csv", report_every or max(rollout * n_envs, steps // 20),
                                  stream or sys.stderr)
    t0 = time.perf_counter()
    try:
        model.learn(total_timesteps=steps, callback=callback)
    finally:
        vec.close()  # subprocess envs must not outlive a failed run
    wall = time.perf_counter() - t0
    obs_dim = int(model.observation_space.shape[0])
    act_dim = int(model.action_space.shape[0])
    config = {"algo": algo, "task": task, "embodiment": embodiment, "observation_dim": obs_dim,
              "action_dim": act_dim, "net_arch": list(net_arch), "activation": activation,
              "max_episode_steps": max_episode_steps}
    provenance = {"steps": int(model.num_timesteps), "seed": seed, "n_envs": n_envs, "vec_env": vec_env,
                  "n_steps": rollout,
                  "batch_size": min(int(batch_size), rollout * n_envs), "learning_rate": learning_rate,
                  "wall_s": round(wall, 2), "steps_per_s": round(model.num_timesteps / max(wall, 1e-9), 1),
                  "egosim_version": egosim.__version__, "stable_baselines3_version": sb3.__version__,
                  "torch_version": torch.__version__,
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return save_sb3_checkpoint(root, model.policy, config, provenance)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m egosim.policies.sb3`: trains the baseline and writes a checkpoint folder."""
    p = argparse.ArgumentParser(prog="python -m egosim.policies.sb3", description=__doc__.split("\n")[0])
    p.add_argument("--task", default="pen_in_bin")
    p.add_argument("--embodiment", default="unitree_dex3")
    p.add_argument("--algo", default="ppo", choices=ALGOS)
    p.add_argument("--steps", type=int, default=100_000, help="env steps in all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--max-episode-steps", type=int, default=None, help="cut episodes (default: the task's horizon)")
    p.add_argument("--n-envs", type=int, default=1)
    p.add_argument("--n-steps", type=int, default=2048, help="PPO rollout length per env")
    p.add_argument("--batch-size", type=int, default=64, help="PPO minibatch size")
    p.add_argument("--vec-env", default="dummy", choices=VEC_ENVS, help="subproc: one process per env")
    args = p.parse_args(argv)
    try:
        out = train_sb3(args.task, args.embodiment, args.algo, args.steps, args.seed, args.out,
                        max_episode_steps=args.max_episode_steps, n_envs=args.n_envs, n_steps=args.n_steps,
                        batch_size=args.batch_size, vec_env=args.vec_env)
    except EgosimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"sb3: checkpoint written to {out}", flush=True)
    return 0


__all__ = ["SB3CheckpointError", "SB3Policy", "build_policy", "load_sb3_checkpoint", "make_rl_env",
           "save_sb3_checkpoint", "train_sb3"]

if __name__ == "__main__":
    sys.exit(main())
