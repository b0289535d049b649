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

This package never imports `egosim.eval` (DESIGN.md: data flows policies -> eval).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """

    name: str
    module: str
    cls: str
    needs_images: bool = False
    needs_privileged: bool = False
    takes_checkpoint: bool = False
    description: str = ""

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


def policy_kinds() -> tuple[str, ...]:
    """Registered policy kind names, in registration order."""
    return tuple(_KINDS)


def get_policy_kind(name: str) -> PolicyKind:
    """The record of a policy kind; raises `InvalidChoiceError` listing the valid kinds."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        raise InvalidChoiceError("policy", name, _KINDS) from None


def make_policy(kind: str, env: gym.Env, seed: int | None = None, checkpoint: str | None = None) -> Policy:
    """Builds a policy of `kind` for `env` (imports the kind's module on first use).

    `checkpoint` is passed only to kinds that load one; giving it to any other kind is an error,
    since silently ignoring it would report an untrained policy under a checkpoint's name.
    """
    record = get_policy_kind(kind)
    if checkpoint is None:
        return record.load()(env, seed=seed)
    if not record.takes_checkpoint:
        raise ConfigError(f"policy kind {kind!r} takes no checkpoint (got checkpoint={checkpoint!r})")
    return record.load()(env, seed=seed, checkpoint=checkpoint)


__all__ = ["Policy", "PolicyKind", "get_policy_kind", "make_policy", "policy_kinds", "register_policy"]
