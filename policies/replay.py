"""The `replay` policy kind: plays back recorded per-step actions (`checkpoint=FILE`).

A recording maps (task, embodiment, evaluation initial state) to the per-step env actions (T, D) of
one episode, exactly what `env.step` took. Readers are chosen by file suffix and are pluggable
(`register_replay_reader`), so the LeRobot datasets of `egosim collect` can get one without touching
this module. Built-in formats:

- `.npz`: one array per episode, named `<task>/<embodiment>/<initial_state>`, shape (T, D), e.g.
  `pen_in_bin/unitree_dex3/3` (`save_replay_npz` writes it; loaded with allow_pickle=False).
- `.jsonl`: one JSON object per line, `{"task": ..., "embodiment": ..., "initial_state": 3,
  "actions": [[...], ...]}` (`save_replay_jsonl` writes it).

Replaying is exact only in the same simulator build: the env is deterministic, so the same actions
from the same initial state give the same episode. Past the end of a recording the policy holds
(`at_end="hold"`: wrist still, last hand targets) or fails (`at_end="error"`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError, EgosimError, InvalidChoiceError

EpisodeKey = tuple[str, str, int]
Reader = Callable[[Path], dict[EpisodeKey, NDArray[np.float64]]]
AT_END = ("hold", "error")


class ReplayError(EgosimError, ValueError):
    """A recording that cannot be read, lacks the episode asked for, or ran out (at_end="error")."""


def _key_str(key: EpisodeKey) -> str:
    return f"{key[0]}/{key[1]}/{key[2]}"


def _read_npz(path: Path) -> dict[EpisodeKey, NDArray[np.float64]]:
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                parts = name.split("/")
                if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
                    raise ReplayError(f"{path}: array {name!r} is not named <task>/<embodiment>/<initial_state>")
                out[(parts[0], parts[1], int(parts[2]))] = np.asarray(data[name], dtype=np.float64)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ReplayError):
            raise
        raise ReplayError(f"cannot read replay file {path}: {exc}") from None
    return out


def _read_jsonl(path: Path) -> dict[EpisodeKey, NDArray[np.float64]]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = (str(rec["task"]), str(rec["embodiment"]), int(rec["initial_state"]))
                out[key] = np.asarray(rec["actions"], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as exc:
                raise ReplayError(f"{path} line {n}: expected {{task, embodiment, initial_state, actions}} ({exc})") from None
    return out


_READERS: dict[str, Reader] = {".npz": _read_npz, ".jsonl": _read_jsonl}


def register_replay_reader(suffix: str, reader: Reader) -> None:
    """Adds a reader for files ending in `suffix` (use "/" for folders, e.g. a LeRobot dataset)."""
    _READERS[suffix] = reader


def read_replay(path: str | Path) -> dict[EpisodeKey, NDArray[np.float64]]:
    """Every episode of a recording, keyed by (task, embodiment, initial_state)."""
    path = Path(path)
    suffix = "/" if path.is_dir() else path.suffix
    if suffix not in _READERS:
        raise InvalidChoiceError("replay file type", suffix or path.name, _READERS)
    episodes = _READERS[suffix](path)
    for key, actions in episodes.items():
        if actions.ndim != 2 or not np.isfinite(actions).all():
            raise ReplayError(f"{path}: episode {_key_str(key)} must be finite actions (T, D), got shape {actions.shape}")
    return episodes


def save_replay_npz(path: str | Path, episodes: Mapping[EpisodeKey, NDArray]) -> None:
    """Writes episodes in the `.npz` format above."""
    np.savez(path, **{_key_str(k): np.asarray(v, dtype=np.float64) for k, v in episodes.items()})


def save_replay_jsonl(path: str | Path, episodes: Mapping[EpisodeKey, NDArray]) -> None:
    """Writes episodes in the `.jsonl` format above."""
    with open(path, "w", encoding="utf-8") as fh:
        for (task, emb, state), actions in episodes.items():
            fh.write(json.dumps({"task": task, "embodiment": emb, "initial_state": int(state),
                                 "actions": np.asarray(actions, dtype=np.float64).tolist()}) + "\n")


class ReplayPolicy:
    """Plays the recorded actions of the episode the env was just reset to, one step per `act`.

    The episode is looked up at `reset` from the env's task, embodiment and evaluation initial state
    (the runner resets the env before the policy), so one recording serves a whole evaluation.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, checkpoint: str | None = None,
                 at_end: str = "hold") -> None:
        if checkpoint is None:
            raise ConfigError("policy kind 'replay' needs checkpoint=FILE (a .npz or .jsonl of recorded actions)")
        self.check_options(at_end=at_end)
        self._base = env.unwrapped
        self.embodiments = (self._base.embodiment.name,)
        self.path = checkpoint
        self.at_end = at_end
        self.episodes = read_replay(checkpoint)
        self._dim = int(self._base.action_space.shape[0])
        self._actions: NDArray[np.float64] | None = None
        self._k = 0

    @classmethod
    def check_options(cls, at_end: Any = "hold") -> None:
        """Validates `at_end` ("hold" or "error")."""
        if at_end not in AT_END:
            raise InvalidChoiceError("at_end", at_end, AT_END)

    def reset(self, seed: int | None = None) -> None:
        init = getattr(self._base, "initial_state", None) or {}
        if init.get("id") is None:
            raise ReplayError("replay needs the env reset to an evaluation initial state (options={'initial_state': i})")
        key = (self._base.task.name, self._base.embodiment.name, int(init["id"]))
        if key not in self.episodes:
            have = ", ".join(sorted(_key_str(k) for k in self.episodes)[:10])
            raise ReplayError(f"{self.path} has no episode {_key_str(key)}; it has {have}"
                              f"{' ...' if len(self.episodes) > 10 else ''}")
        actions = self.episodes[key]
        if actions.shape[1] != self._dim:
            raise ReplayError(f"{self.path}: episode {_key_str(key)} has {actions.shape[1]}-D actions; "
                              f"{key[1]} takes {self._dim}-D")
        self._actions, self._k = actions, 0

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        if self._actions is None:
            raise ReplayError("replay policy: reset() before act()")
        if self._k < len(self._actions):
            self._k += 1
            return self._actions[self._k - 1][None].copy()
        if self.at_end == "error":
            raise ReplayError(f"{self.path}: the recording ended after {len(self._actions)} steps")
        return hold_action(self._actions[-1], self._base.embodiment.dof)[None]


def hold_action(last: NDArray[np.float64], hand_dof: int) -> NDArray[np.float64]:
    """A step that keeps both wrists where they are commanded and the hands at `last`'s targets."""
    out = np.array(last, dtype=np.float64)
    for off in (0, 9 + hand_dof):
        out[off: off + 9] = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return out
