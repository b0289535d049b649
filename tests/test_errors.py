"""Unknown names raise InvalidChoiceError listing the valid choices; the CLI exits 2 with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import egosim.tasks
import pytest
from egosim.policies import get_policy_kind, make_policy, policy_kinds

from egosim.cli import main
from egosim.embodiment import embodiment_names, get_embodiment
from egosim.errors import ConfigError, EgosimError, InvalidChoiceError


def test_unknown_task() -> None:
    with pytest.raises(InvalidChoiceError) as exc:
        egosim.tasks.make_env("no_such_task", "sharpa_wave")
    assert exc.value.kind == "task" and exc.value.value == "no_such_task"
    assert set(egosim.tasks.task_names()) <= set(exc.value.choices)
    assert "'no_such_task'" in str(exc.value) and "pen_in_bin" in str(exc.value)
    with pytest.raises(InvalidChoiceError):
        egosim.tasks.env_id("no_such_task", "sharpa_wave")


def test_unknown_embodiment() -> None:
    for call in (lambda: egosim.tasks.make_env("pen_in_bin", "shadow_hand"), lambda: get_embodiment("shadow_hand")):
        with pytest.raises(InvalidChoiceError) as exc:
            call()
        assert "shadow_hand" in str(exc.value)
        assert all(name in str(exc.value) for name in embodiment_names())


def test_unknown_policy_and_obs_mode() -> None:
    with pytest.raises(InvalidChoiceError) as exc:
        get_policy_kind("gr00t")
    assert all(k in str(exc.value) for k in policy_kinds())
    env = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    with pytest.raises(InvalidChoiceError, match="random"):
        make_policy("nope", env, seed=0)
    with pytest.raises(InvalidChoiceError, match="rgb"):
        egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="depth")


def test_initial_state_out_of_range() -> None:
    env = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    n = len(env.task.eval_initial_states())
    with pytest.raises(ConfigError, match=f"0..{n - 1}"):
        env.reset(seed=0, options={"initial_state": n})


def test_invalid_choice_is_catchable_broadly() -> None:
    err = InvalidChoiceError("task", "x", ["a", "b"])
    assert isinstance(err, EgosimError) and isinstance(err, KeyError) and isinstance(err, ValueError)
    assert str(err) == "unknown task 'x'; valid choices: a, b"


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("tasks=[no_such_task]", ["no_such_task", "pen_in_bin"]),
        ("embodiments=[sharpa_wave,shadow]", ["shadow", "sharpa_wave", "unitree_dex3"]),
        ("policy=gr00t", ["gr00t", "expert", "random"]),
        ("episodes=51", ["episodes=51", "50"]),
        ("episodes=0", ["episodes"]),
        ("no_such_key=1", ["no_such_key", "episodes"]),
        ("tasks=[pen", ["override"]),
        ("seed=abc", ["seed"]),
    ],
)
def test_cli_bad_values_exit_2(override: str, expect: list[str], capsys, tmp_path) -> None:
    rc = main(["eval", override, f"output_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("egosim eval: error:")
    for word in expect:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "summary.json").exists()


def test_cli_subprocess_no_traceback(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "egosim.cli", "eval", "embodiments=[allegro]", f"output_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "egosim eval: error: unknown embodiment 'allegro'; valid choices: " + ", ".join(sorted(embodiment_names()))
    )
