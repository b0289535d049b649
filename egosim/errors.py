"""egosim's exception hierarchy: every error egosim raises derives from `EgosimError`.

Messages name the bad value and, where there is a finite set, the valid choices, so a typo on the
command line is fixed from the message alone.
"""

from __future__ import annotations

from collections.abc import Iterable


class EgosimError(Exception):
    """Root of every error egosim raises."""


class InvalidChoiceError(EgosimError, KeyError, ValueError):
    """A name (task, embodiment, policy, camera...) that is not among the registered choices."""

    def __init__(self, kind: str, value: object, choices: Iterable[object]) -> None:
        self.kind = kind
        self.value = value
        self.choices = sorted(str(c) for c in choices)
        super().__init__(f"unknown {kind} {value!r}; valid choices: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class InvalidActionError(EgosimError, ValueError):
    """An action of the wrong shape, dtype or with non-finite values."""


class ConfigError(EgosimError, ValueError):
    """A configuration value outside its valid range."""


def reject_unknown_keys(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raises `ConfigError` listing the unknown keys and the valid ones (config dataclasses use it)."""
    valid = sorted(known)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {what} keys {unknown}; valid keys: {', '.join(valid)}")


class AssetError(EgosimError, FileNotFoundError):
    """A model file or a named MJCF element that cannot be found."""


class RenderingUnavailableError(EgosimError, RuntimeError):
    """Headless rendering could not start; the message says what is missing and how to install it."""
