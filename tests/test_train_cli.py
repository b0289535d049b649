"""`egosim train` on a tiny collected dataset: checkpoint eval loads, CSV + TensorBoard, resume, mixture, errors."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from egosim.cli import main
from egosim.data.loader import ChunkDataset
from egosim.policies.vla.checkpoint import load_checkpoint
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.train import latest_checkpoint
from egosim.policies.vla.train_cli import FrameCache, MixtureBatches, TrainConfig, resize_uint8, run_train

torch.set_num_threads(1)
EMB = "unitree_dex3"
TINY_MODEL = ("model={image_size:[24,32],image_channels:[8,8,16,16],image_grid:[2,2],text_len:16,text_layers:1,"
              "d_model:32,heads:2,dit_layers:1,future_tokens:2,execute_steps:2}")
TINY_DICT = dict(image_size=[24, 32], image_channels=[8, 8, 16, 16], image_grid=[2, 2], text_len=16, text_layers=1,
                 d_model=32, heads=2, dit_layers=1, future_tokens=2, execute_steps=2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two short random-policy card_sort episodes on the Dex3 hand, collected through the CLI."""
    out = tmp_path_factory.mktemp("demos")
    rc = main(["collect", "tasks=[card_sort]", f"embodiments=[{EMB}]", "policy=random", "episodes=2", "max_steps=8",
               "keep=all", "image_size=[48,64]", "workers=1", f"output_dir={out}"])
    assert rc == 0
    return out / EMB


def tiny_cfg(data: list, out: Path, **kw) -> TrainConfig:
    base = dict(stage="finetune", data=data, steps=4, batch_size=4, horizon=4, save_every=2, keep_last=3,
                log_every=1, output_dir=str(out), device="cpu", warmup_steps=2, model=dict(TINY_DICT))
    return TrainConfig.from_mapping({**base, **kw})


def test_train_command_writes_an_evaluable_checkpoint_csv_and_events(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rc = main(["train", "stage=finetune", f"data=[{{path:{dataset},weight:1.0}}]", "steps=4", "batch_size=4",
               "horizon=4", "save_every=2", "log_every=1", "device=cpu", f"output_dir={run}", TINY_MODEL])
    assert rc == 0
    ck = latest_checkpoint(run)
    assert ck is not None and ck.name == "step_00000004"
    loaded = load_checkpoint(ck)
    assert loaded.provenance.stages[-1]["stage"] == "finetune" and loaded.provenance.stages[-1]["steps_done"] == 4
    stats = loaded.statistics[EMB]  # computed from the dataset: its states lie within [min, max]
    ds = ChunkDataset(dataset, horizon=4, cameras=())
    assert np.all(ds._states >= stats.state.min - 1e-6) and np.all(ds._states <= stats.state.max + 1e-6)
    assert np.allclose(stats.state.min, ds._states.min(0), atol=1e-6)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and all(np.isfinite(float(r["loss"])) for r in rows)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert {"train/loss", "train/samples_per_s_total", "train/lr"} <= set(acc.Tags()["scalars"])
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert np.allclose([e.value for e in events], [float(r["loss"]) for r in rows], rtol=1e-5)

    out = tmp_path / "eval"
    rc = main(["eval", "tasks=[card_sort]", f"embodiments=[{EMB}]", "policy=vla", f"checkpoint={ck}", "episodes=1",
               "max_steps=3", "workers=1", f"output_dir={out}"])
    assert rc == 0 and (out / "summary.json").is_file()


def test_rerun_after_a_lost_checkpoint_resumes_to_identical_weights(dataset: Path, tmp_path: Path) -> None:
    """A rerun resumes from the newest checkpoint left (as after a kill) and ends bit-for-bit where the first did."""
    cfg = tiny_cfg([str(dataset)], tmp_path / "run", cache_frames=False)
    first = run_train(cfg, log=False)
    ref = load_file(str(first.checkpoint / "model.safetensors"))
    shutil.rmtree(first.checkpoint)  # the run "died" after its step-2 checkpoint
    again = run_train(cfg, log=False)
    assert again.resumed_from == 2 and again.checkpoint.name == "step_00000004"
    got = load_file(str(again.checkpoint / "model.safetensors"))
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))]
    assert steps == [1, 2, 3, 4]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]  # purge_step dropped the lost rows


def test_frame_cache_matches_per_sample_decoding(dataset: Path) -> None:
    ds = ChunkDataset(dataset, horizon=4, cameras=())
    cache = FrameCache(ds, ("ego_view", "right_wrist_view"), (24, 32))
    for i in (0, 5, len(ds) - 1):
        e = int(ds._ep[i])
        direct = ChunkDataset._frame(ds, e, "observation.images.ego_view", i - int(ds._starts[e]))
        assert np.array_equal(cache.images(i)["ego_view"].numpy(), resize_uint8(direct[None], (24, 32))[0])
    assert cache.frames["ego_view"].shape == (len(ds), 3, 24, 32)


def test_mixture_weights_set_the_sampling_frequencies(dataset: Path) -> None:
    ds = ChunkDataset(dataset, horizon=4, cameras=())
    cfg = VLAConfig.from_dict({**TINY_DICT, "horizon": 4})
    mix = MixtureBatches([ds, ds], [0.8, 0.2], cfg, batch_size=32, seed=3)
    draws = [d for step in range(200) for d, _ in mix.draws(step)]
    assert abs(np.mean(np.asarray(draws) == 0) - 0.8) < 0.02
    assert mix.draws(7) == MixtureBatches([ds, ds], [4, 1], cfg, batch_size=32, seed=3).draws(7)  # a function of step
    frames = [i for step in range(50) for _, i in mix.draws(step)]
    assert min(frames) >= 0 and max(frames) < len(ds) and len(set(frames)) > len(ds) // 2
    batch = mix(0)
    assert batch["action"].shape == (32, 4, cfg.max_action_dim) and batch["embodiment"] == [EMB] * 32


@pytest.mark.parametrize("args, expect", [
    (["bogus=1"], "unknown train config keys ['bogus']; valid keys: batch_size, cache_frames"),
    (["stage=posttrain", "data=[x]"], "unknown training stage 'posttrain'; valid choices: finetune, midtrain, pretrain"),
    (["device=tpu", "data=[x]"], "unknown device 'tpu'; valid choices: auto, cpu, cuda"),
    (["data=[{path:x,weight:-1}]"], "data[0] (x) has weight -1; weights must be numbers > 0"),
    (["data=[{path:x,wieght:1}]"], "unknown data[0] keys ['wieght']; valid keys: path, weight"),
    ([], "data is empty"),
    (["data=[/nonexistent/ds]"], "data path '/nonexistent/ds' is not a folder"),
    (["data=[x]", "steps=0"], "steps must be a positive integer, got 0"),
    (["data=[x]", "model={widht:3}"], "unknown model keys ['widht']"),
    (["data=[x]", "freeze=[decoder]"], "unknown parameter group 'decoder'; valid choices: adapters"),
])
def test_bad_settings_name_the_value_and_the_choices(args: list[str], expect: str, capsys) -> None:
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "egosim train: error:" in err and expect in err, err


KILL_CMD = [sys.executable, "-m", "egosim.cli", "train", "steps=40", "batch_size=4", "horizon=4", "save_every=5",
            "log_every=1", "device=cpu", "threads=1", "cache_frames=false", TINY_MODEL]


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_the_command(dataset: Path, tmp_path: Path) -> None:
    """`egosim train` killed with SIGKILL mid-run and rerun ends with the uninterrupted run's weights."""
    ref = run_train(TrainConfig.from_mapping(dict(data=[str(dataset)], steps=40, batch_size=4, horizon=4, save_every=5,
                                                  output_dir=str(tmp_path / "ref"), device="cpu",
                                                  cache_frames=False, model=dict(TINY_DICT))), log=False)
    run = tmp_path / "killed"
    cmd = [*KILL_CMD, f"data=[{dataset}]", f"output_dir={run}"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while (latest_checkpoint(run) is None or latest_checkpoint(run).name < "step_00000010") and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert latest_checkpoint(run).name < "step_00000040"
    assert subprocess.run(cmd, timeout=600, stderr=subprocess.DEVNULL).returncode == 0
    end = latest_checkpoint(run)
    assert end.name == ref.checkpoint.name == "step_00000040"
    a, b = load_file(str(ref.checkpoint / "model.safetensors")), load_file(str(end / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((end / "trainer_state.json").read_text())["step"] == 40
