"""Policies: the `Policy` protocol and a registry of policy kinds, imported lazily (LeRobot style).

Each kind is registered by name with the module and class that implement it, plus what it needs from
the env (camera images, privileged object state), so a runner can build the right env before any
policy code is imported. `make_policy(kind, env, seed)` imports the kind's module on first use.

Kinds:
    random: samples the env's action space with its own seeded generator (one-step chunks).
    expert: the task's scripted expert (`task.make_expert(env)`), which uses privileged state.
    vla: the GR00T-shaped VLA (`egosim.policies.vla`), loaded from a checkpoint folder; reads the
        three cameras. The from-scratch baseline is the same kind, trained without pretraining
        (a training config, told apart in reports by `label=scratch`).
    remote: a policy served elsewhere (`egosim.policies.remote`): GR00T's ZMQ protocol or openpi's
        websocket protocol; options protocol, host, port (and timeout_s, execute_steps,
        wrist_actions, api_token). Its env renders the cameras and carries privileged state, and the
        client sends what the server asks for.
    replay: recorded per-step actions played back (`egosim.policies.replay`); checkpoint=FILE.
    sb3: the Stable-Baselines3 PPO baseline on privileged state (`egosim.policies.sb3`), loaded from a
        pickle-free checkpoint folder (checkpoint=DIR); needs the optional extra `rl`.

This package never imports `egosim.eval` (DESIGN.md: data flows policies -> eval).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egosim.errors import ConfigError, InvalidChoiceError
from egosim.policy import Policy

if TYPE_CHECKING:
    import gymnasium as gym


@dataclass(frozen=True)
class PolicyKind:
    """A registered policy kind: where its class lives and what it needs from the env.

    Attributes:
        name: Registry key, used on the command line (`policy=random`).
        module: Module that defines the policy class (imported on first use).
        cls: Class name inside `module`; constructed as `cls(env, seed=seed)`.
        needs_images: The policy reads camera images (the env must run with obs_mode="rgb").
        needs_privileged: The policy reads `observation["privileged"]` (env built with privileged=True).
        takes_checkpoint: The class is constructed as `cls(env, seed=seed, checkpoint=path)`.
        description: One line for `egosim list` and error messages.
        options: Keyword options the class takes (`policy_args`, or `protocol=...` for `remote`); the
            class may define a classmethod `check_options(**options)` that validates them without
            side effects, which `check_policy_options` calls before any episode runs.
    """

    name: str
    module: str
    cls: str
    needs_images: bool = False
    needs_privileged: bool = False
    takes_checkpoint: bool = False
    description: str = ""
    options: tuple[str, ...] = ()

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)


_KINDS: dict[str, PolicyKind] = {}


def register_policy(kind: PolicyKind) -> PolicyKind:
    """Adds a policy kind (names are unique; re-registering the same record is a no-op)."""
    if kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise ValueError(f"policy kind {kind.name!r} is already registered as {_KINDS[kind.name]}")
    _KINDS[kind.name] = kind
    return kind


register_policy(PolicyKind("random", "egosim.policies.random_policy", "RandomPolicy",
                           description="uniform samples of the env's action space (seeded)"))
register_policy(PolicyKind("expert", "egosim.policies.expert", "ExpertPolicy", needs_privileged=True,
                           description="the task's scripted expert (privileged state)"))
register_policy(PolicyKind("vla", "egosim.policies.vla.policy", "VLAPolicy", needs_images=True,
                           takes_checkpoint=True,
                           description="the flow-matching VLA from a checkpoint folder (checkpoint=PATH)"))
register_policy(PolicyKind("remote", "egosim.policies.remote.policy", "RemotePolicy", needs_images=True,
                           needs_privileged=True,
                           options=("protocol", "host", "port", "timeout_s", "execute_steps", "wrist_actions",
                                    "api_token"),
                           description="a policy served elsewhere (protocol=gr00t|openpi host=H port=P)"))
register_policy(PolicyKind("replay", "egosim.policies.replay", "ReplayPolicy", takes_checkpoint=True,
                           options=("at_end",),
                           description="recorded per-step actions played back (checkpoint=FILE.npz|.jsonl)"))
register_policy(PolicyKind("sb3", "egosim.policies.sb3", "SB3Policy", needs_privileged=True, takes_checkpoint=True,
                           description="the SB3 PPO baseline on privileged state (checkpoint=DIR)"))


def policy_kinds() -> tuple[str, ...]:
    """Registered policy kind names, in registration order."""
    return tuple(_KINDS)


def get_policy_kind(name: str) -> PolicyKind:
    """The record of a policy kind; raises `InvalidChoiceError` listing the valid kinds."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        raise InvalidChoiceError("policy", name, _KINDS) from None


def check_policy_options(kind: str, options: Mapping[str, Any]) -> None:
    """Checks option names (and values, where the kind validates them) before anything is built.

    Raises `ConfigError` naming the unknown options and the kind's valid ones, or the kind's own
    error for a bad value (e.g. `InvalidChoiceError` for an unknown protocol).
    """
    record = get_policy_kind(kind)
    unknown = sorted(set(options) - set(record.options))
    if unknown:
        valid = ", ".join(record.options) if record.options else "none"
        raise ConfigError(f"policy kind {kind!r} takes no option(s) {unknown}; its options: {valid}")
    if not record.options:
        return  # nothing to check, and no reason to import the kind's module (torch, for the VLA)
    check = getattr(record.load(), "check_options", None)
    if check is not None:
        check(**options)


def make_policy(kind: str, env: gym.Env, seed: int | None = None, checkpoint: str | None = None,
                **options: Any) -> Policy:
    """Builds a policy of `kind` for `env` (imports the kind's module on first use).

    `checkpoint` is passed only to kinds that load one; giving it to any other kind is an error,
    since silently ignoring it would report an untrained policy under a checkpoint's name. `options`
    go to kinds that declare them (`PolicyKind.options`), and are checked the same way.
    """
    record = get_policy_kind(kind)
    if checkpoint is not None and not record.takes_checkpoint:
        raise ConfigError(f"policy kind {kind!r} takes no checkpoint (got checkpoint={checkpoint!r})")
    check_policy_options(kind, options)
    if checkpoint is not None:
        options = {**options, "checkpoint": checkpoint}
    return record.load()(env, seed=seed, **options)


__all__ = ["Policy", "PolicyKind", "check_policy_options", "get_policy_kind", "make_policy", "policy_kinds",
           "register_policy"]
