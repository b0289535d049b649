"""The `sb3` baseline: a tiny PPO run writes a pickle-free checkpoint that reloads to the same actions,
plays through `egosim eval policy=sb3`, and every loading failure explains itself."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

import egosim.tasks  # noqa: E402
from egosim.cli import main  # noqa: E402
from egosim.errors import ConfigError, EgosimError, InvalidChoiceError  # noqa: E402
from egosim.policies import Policy, get_policy_kind, make_policy  # noqa: E402
from egosim.policies.sb3 import (  # noqa: E402
    SB3CheckpointError,
    build_policy,
    find_pickle_files,
    load_sb3_checkpoint,
    make_rl_env,
    save_sb3_checkpoint,
    train_sb3,
)

torch.set_num_threads(1)
TASK, HAND = "pen_in_bin", "unitree_dex3"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A 256-step PPO run (two 128-step rollouts, episodes cut at 40 steps): a few seconds."""
    out = tmp_path_factory.mktemp("sb3") / "ckpt"
    log = io.StringIO()
    path = train_sb3(TASK, HAND, "ppo", 256, 0, out, max_episode_steps=40, n_steps=128, net_arch=(32, 32),
                     stream=log)
    return path, log.getvalue()


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env(TASK, HAND, obs_mode="state", privileged=True)
    yield e
    e.close()


def _observations(env, n: int = 8) -> list[dict]:
    obs, _ = env.reset(seed=0, options={"initial_state": 1})
    out = [obs]
    env.action_space.seed(0)
    for _ in range(n - 1):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return out


def test_training_writes_a_pickle_free_folder(trained) -> None:
    path, log = trained
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "progress.csv",
                                                       "provenance.json"]
    assert find_pickle_files(path) == []
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["format"] == "egosim-sb3" and cfg["task"] == TASK and cfg["embodiment"] == HAND
    assert cfg["action_dim"] == 26 and cfg["max_episode_steps"] == 40
    prov = json.loads((path / "provenance.json").read_text())
    assert prov["steps"] == 256 and prov["steps_per_s"] > 0 and prov["stable_baselines3_version"]
    assert "sb3: step 256/256 (100%)" in log
    rows = (path / "progress.csv").read_text().splitlines()
    assert rows[0] == "steps,episodes,mean_return,success_rate,wall_s" and rows[-1].startswith("256,")


def test_save_load_identical_actions(tmp_path: Path, trained) -> None:
    cfg = {k: v for k, v in json.loads((trained[0] / "config.json").read_text()).items()
           if k not in ("format", "format_version", "egosim_version")}
    torch.manual_seed(3)
    policy = build_policy(cfg)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the init: the weights must really travel
    save_sb3_checkpoint(tmp_path / "ck", policy, cfg, {"steps": 0})
    loaded, cfg2, _ = load_sb3_checkpoint(tmp_path / "ck")
    assert cfg2["net_arch"] == [32, 32]
    obs = np.random.default_rng(0).normal(size=(16, cfg["observation_dim"])).astype(np.float32)
    a, _ = policy.predict(obs, deterministic=True)
    b, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    for k, v in policy.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_policy_kind_acts_deterministically(trained, env) -> None:
    kind = get_policy_kind("sb3")
    assert kind.needs_privileged and kind.takes_checkpoint and not kind.needs_images
    p = make_policy("sb3", env, seed=0, checkpoint=str(trained[0]))
    q = make_policy("sb3", env, seed=5, checkpoint=str(trained[0]))
    assert isinstance(p, Policy) and p.embodiments == (HAND,)
    for obs in _observations(env):
        a = p.act(obs)
        assert a.shape == (1, 32) and a.dtype == np.float64
        assert env.action_space.contains(a[0])
        np.testing.assert_array_equal(a, q.act(obs))


def test_eval_cli(trained, tmp_path: Path, capsys) -> None:
    rc = main(["eval", f"tasks=[{TASK}]", f"embodiments=[{HAND}]", "policy=sb3", f"checkpoint={trained[0]}",
               "episodes=1", "max_steps=20", "workers=1", f"output_dir={tmp_path / 'out'}"])
    assert rc == 0, capsys.readouterr().err
    (ep,) = [json.loads(x) for x in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    assert ep["policy"] == "sb3" and ep["steps"] == 20 and not ep["sim_unstable"]


def test_eval_wrong_embodiment_explains(trained) -> None:
    e = egosim.tasks.make_env(TASK, "sharpa_wave", obs_mode="state", privileged=True)
    try:
        with pytest.raises(SB3CheckpointError, match="embodiment 'unitree_dex3'.*'sharpa_wave'.*embodiments="):
            make_policy("sb3", e, checkpoint=str(trained[0]))
    finally:
        e.close()
    with pytest.raises(ConfigError, match="needs checkpoint=DIR"):
        make_policy("sb3", None)


class _Mark:
    """Unpickling this creates the file at `path`: proof that a load unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("name", ["policy.pkl", "model.safetensors", "weights.pt"])
def test_pickle_refused(trained, tmp_path: Path, name: str) -> None:
    ck = _copy(trained[0], tmp_path / "ck")
    mark = tmp_path / "UNPICKLED"
    (ck / name).write_bytes(pickle.dumps(_Mark(str(mark)), protocol=4))
    with pytest.raises(SB3CheckpointError, match=f"pickle-format files.*{name}"):
        load_sb3_checkpoint(ck)
    assert not mark.exists()


def test_sb3_zip_refused(tmp_path: Path, trained) -> None:
    """SB3's own save format (a zip with pickled members) is refused, never opened as pickle."""
    ck = _copy(trained[0], tmp_path / "ck")
    with zipfile.ZipFile(ck / "ppo_model.zip", "w") as zf:
        zf.writestr("data", "{}")
        zf.writestr("policy.optimizer.pkl", pickle.dumps({"lr": 1}))
    with pytest.raises(SB3CheckpointError, match=r"ppo_model\.zip \(zip archive with a \.pkl member"):
        load_sb3_checkpoint(ck)


def test_safetensors_header_is_not_a_pickle(tmp_path: Path) -> None:
    """A safetensors header of 0x480 bytes starts with 0x80 0x04, like pickle protocol 4: not a pickle."""
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    for k in range(1000, 1200):  # metadata padding until the header is 0x480 bytes long
        save_file({"w": torch.zeros(2)}, str(path), metadata={"pad": "x" * k})
        if path.read_bytes()[:2] == b"\x80\x04":
            break
    assert path.read_bytes()[:2] == b"\x80\x04"
    assert find_pickle_files(tmp_path) == []
    (tmp_path / "other.bin.safetensors").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    assert [f.split(" (")[0] for f in find_pickle_files(tmp_path)] == ["other.bin.safetensors"]


def test_loading_failures_explain(trained, tmp_path: Path) -> None:
    with pytest.raises(SB3CheckpointError, match="is not a folder"):
        load_sb3_checkpoint(tmp_path / "nope")
    ck = _copy(trained[0], tmp_path / "ck")
    (ck / "provenance.json").unlink()
    with pytest.raises(SB3CheckpointError, match=r"lacks \['provenance.json'\]"):
        load_sb3_checkpoint(ck)
    (ck / "provenance.json").write_text("{}")
    cfg = json.loads((ck / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps({**cfg, "format": "egosim-vla"}))
    with pytest.raises(SB3CheckpointError, match="format 'egosim-vla' is not 'egosim-sb3'"):
        load_sb3_checkpoint(ck)
    (ck / "config.json").write_text(json.dumps({**cfg, "activation": "gelu"}))
    with pytest.raises(SB3CheckpointError, match="unknown activation 'gelu'; valid choices: tanh, relu"):
        load_sb3_checkpoint(ck)
    (ck / "config.json").write_text(json.dumps({**cfg, "net_arch": [16, 16]}))
    with pytest.raises(SB3CheckpointError, match="does not fit config.json: tensor .* has shape"):
        load_sb3_checkpoint(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(SB3CheckpointError, match="config.json is not valid JSON"):
        load_sb3_checkpoint(ck)


def test_trainer_errors_and_cli(tmp_path: Path, capsys) -> None:
    with pytest.raises(InvalidChoiceError, match="unknown sb3 algo 'sac'; valid choices: ppo"):
        train_sb3(TASK, HAND, "sac", 10, 0, tmp_path)
    with pytest.raises(EgosimError, match="unknown task 'pen_in_box'"):
        train_sb3("pen_in_box", HAND, "ppo", 10, 0, tmp_path)
    from egosim.policies.sb3 import main as sb3_main

    assert sb3_main(["--task", "pen_in_box", "--steps", "10", "--out", str(tmp_path / "x")]) == 2
    assert "unknown task 'pen_in_box'" in capsys.readouterr().err


def test_sb3_env_checker() -> None:
    """SB3's own checker accepts the wrapped env (float32 [-1, 1] actions, flat Box observations)."""
    from stable_baselines3.common.env_checker import check_env

    e = make_rl_env(TASK, HAND, max_episode_steps=5)
    try:
        check_env(e, warn=True)
    finally:
        e.close()


@pytest.mark.slow
def test_subprocess_envs(tmp_path: Path) -> None:
    """Two spawned env processes (each imports egosim and MuJoCo: slow to start, hence marked)."""
    log = io.StringIO()
    path = train_sb3(TASK, HAND, "ppo", 64, 0, tmp_path / "ck", max_episode_steps=10, n_envs=2, n_steps=16,
                     net_arch=(16,), vec_env="subproc", stream=log)
    assert json.loads((path / "provenance.json").read_text())["vec_env"] == "subproc"
    assert load_sb3_checkpoint(path)[1]["net_arch"] == [16]
    with pytest.raises(InvalidChoiceError, match="unknown vec_env 'threads'; valid choices: dummy, subproc"):
        train_sb3(TASK, HAND, "ppo", 64, 0, tmp_path / "x", vec_env="threads")
