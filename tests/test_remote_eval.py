"""`egosim eval policy=remote` end to end over both protocols, `egosim serve`, and the config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from remote_helpers import HOST, serving

from egosim.cli import main
from egosim.policies import make_policy
from egosim.tasks import make_env


@pytest.mark.parametrize("protocol", ["gr00t", "openpi"])
def test_eval_policy_remote_end_to_end(protocol: str, tmp_path: Path) -> None:
    with serving("random", "unitree_dex3", protocol) as server:
        rc = main(["eval", "policy=remote", f"protocol={protocol}", f"host={HOST}", f"port={server.port}",
                   "embodiments=[unitree_dex3]", "episodes=1", "max_steps=10", "workers=1",
                   "policy_args={timeout_s:30}", f"output_dir={tmp_path}"])
    assert rc == 0
    (row,) = json.loads((tmp_path / "summary.json").read_text())
    assert row["policy"] == "remote" and row["episodes"] == 1 and row["mean_steps"] == 10
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["protocol"] == protocol and run["config"]["port"] == server.port


@pytest.mark.parametrize("args, message", [
    (["protocol=grpc", "port=5555"], "unknown protocol 'grpc'; valid choices: gr00t, openpi"),
    (["protocol=gr00t"], "policy=remote needs port=P"),
    (["port=5555"], "policy=remote needs protocol=<gr00t|openpi>"),
    (["protocol=openpi", "port=70000"], "port must be an integer in 1..65535, got 70000"),
    (["protocol=openpi", "port=80", "policy_args={wrist_actions:world}"],
     "unknown wrist_actions 'world'; valid choices: absolute, auto, chunk_relative"),
    (["protocol=openpi", "port=80", "policy_args={speed:2}"], "takes no option(s) ['speed']; its options: protocol"),
    (["policy=random", "protocol=gr00t"], "policy kind 'random' takes no option(s) ['protocol']; its options: none"),
])
def test_remote_config_errors(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["eval", "policy=remote", "embodiments=[unitree_dex3]", "episodes=1", f"output_dir={tmp_path}", *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run.json").exists()  # refused before any run starts


def test_serve_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "protocol=zmq"]) == 2
    assert "unknown protocol 'zmq'; valid choices: gr00t, openpi" in capsys.readouterr().err
    assert main(["serve", "speed=3"]) == 2
    assert "unknown serve config keys ['speed']; valid keys: checkpoint, embodiment, host" in capsys.readouterr().err


def test_egosim_serve_command_serves_the_expert() -> None:
    """`egosim serve` in its own process; the remote expert's first chunks equal the local expert's."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "egosim.cli", "serve", "policy=expert", "embodiment=unitree_dex3", "protocol=gr00t",
         f"host={HOST}", "port=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    try:
        line = proc.stdout.readline()
        assert "serving policy 'expert'" in line, line + proc.stderr.read()
        port = int(line.split(" on ")[1].split(";")[0].rsplit(":", 1)[1])
        env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
        lenv = make_env("pen_in_bin", "unitree_dex3", obs_mode="state", privileged=True)
        remote = make_policy("remote", env, protocol="gr00t", host=HOST, port=port, timeout_s=30)
        local = make_policy("expert", lenv, seed=0)
        obs, _ = env.reset(seed=5, options={"initial_state": 5})
        lobs, _ = lenv.reset(seed=5, options={"initial_state": 5})
        remote.reset(seed=5)
        local.reset(seed=5)
        for _ in range(5):
            a = remote.act(obs)
            assert np.array_equal(a, local.act(lobs))
            obs, *_ = env.step(a[0])
            lobs, *_ = lenv.step(a[0])
        remote.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_remote_load_benchmark_smoke(tmp_path: Path) -> None:
    """benchmarks/remote.py end to end at a tiny size: 4 clients, every request answered."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "remote.py"
    out_json = tmp_path / "remote.json"
    out = subprocess.run([sys.executable, str(script), "--requests", "40", "--clients", "4", "--embodiment",
                          "unitree_dex3", "--json", str(out_json)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    rows = json.loads(out_json.read_text())["rows"]
    assert [(r["protocol"], r["requests"], r["dropped"]) for r in rows] == [("gr00t", 40, 0), ("openpi", 40, 0)]


@pytest.mark.parametrize("protocol", ["gr00t", "openpi"])
def test_served_vla_equals_local(protocol: str, tmp_path: Path) -> None:
    """A VLA checkpoint served with its cameras gives the local policy's chunks, bit for bit."""
    import torch
    import vla_fixtures

    from egosim.policies.remote.server import PolicyService, make_server
    from egosim.policies.vla.checkpoint import save_checkpoint
    from egosim.policies.vla.model import VLAModel

    torch.manual_seed(0)
    ckpt = str(save_checkpoint(tmp_path / "vla", VLAModel(vla_fixtures.TINY), {}))
    senv = make_env("pen_in_bin", "unitree_dex3", obs_mode="rgb")
    server = make_server(PolicyService(make_policy("vla", senv, seed=1, checkpoint=ckpt), senv, name="vla"),
                         protocol, HOST, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = make_env("pen_in_bin", "unitree_dex3", obs_mode="rgb", privileged=True)
        remote = make_policy("remote", env, protocol=protocol, host=HOST, port=server.port)
        local = make_policy("vla", env, seed=1, checkpoint=ckpt)
        obs, _ = env.reset(seed=4, options={"initial_state": 4})
        remote.reset(seed=4)
        local.reset(seed=4)
        for _ in range(3):
            a = remote.act(obs)
            assert a.shape == (2, 32) and np.array_equal(a, local.act(obs))
            obs, *_ = env.step(a[0])
        remote.close()
    finally:
        server.shutdown()
        thread.join(10)
