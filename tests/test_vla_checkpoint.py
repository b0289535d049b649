"""VLA checkpoints: save -> load gives the same actions; pickles are refused; each mismatch explains itself."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from vla_fixtures import TINY, fake_env, fake_obs, synthetic_batch

from egosim.errors import EgosimError
from egosim.policies import make_policy
from egosim.policies.vla.checkpoint import CheckpointError, Provenance, load_checkpoint, save_checkpoint
from egosim.policies.vla.model import VLAModel
from egosim.policies.vla.normalize import compute_statistics


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = VLAModel(TINY)
    batch = synthetic_batch(TINY, ["sharpa_wave", "unitree_dex3"] * 4)
    stats = compute_statistics({
        "sharpa_wave": (batch["state"][::2, :62].numpy(), batch["action"][::2, :, :62].numpy()),
        "unitree_dex3": (batch["state"][1::2, :32].numpy(), batch["action"][1::2, :, :32].numpy()),
    })
    path = tmp_path_factory.mktemp("ckpt") / "vla"
    save_checkpoint(path, model, stats, Provenance(data_hours={"robot_sim": 0.5}, stages=[{"stage": "finetune", "steps": 0}]))
    return path


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ck"
    shutil.copytree(src, dst)
    return dst


def test_save_load_same_actions(saved: Path) -> None:
    ck = load_checkpoint(saved)
    assert ck.embodiment_ids == {"human": 0, "sharpa_wave": 1, "unitree_dex3": 2}
    assert ck.provenance.data_hours == {"robot_sim": 0.5} and ck.provenance.config_hash == TINY.hash()
    assert ck.statistics["human"].state is None  # identity stats filled in for the human head
    for name, dim in (("sharpa_wave", 62), ("unitree_dex3", 32)):
        env = fake_env(name, dim)
        a = make_policy("vla", env, seed=7, checkpoint=str(saved))
        b = make_policy("vla", env, seed=7, checkpoint=str(saved))
        obs = fake_obs(dim)
        a.reset(seed=11)
        b.reset(seed=11)
        ca, cb = a.act(obs), b.act(obs)
        assert ca.shape == (TINY.execute_steps, dim) and ca.dtype == np.float64
        np.testing.assert_array_equal(ca, cb)
        steps = a.step_actions(obs)
        assert steps.shape == ca.shape and np.isfinite(steps).all()
        a.reset(seed=12)
        assert not np.array_equal(a.act(obs), cb)
    # the same weights as the saving model, bit for bit
    torch.manual_seed(1)
    ref = VLAModel(TINY).state_dict()
    for k, v in ck.model.state_dict().items():
        assert torch.equal(v, ref[k]), k


class _Mark:
    """Unpickling this creates the file at `path` (via open(path, 'w')): proof that a load unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["weights.pt", "weights.pth", "data.pkl", "pytorch_model.bin", "model.safetensors"])
def test_pickle_files_refused(saved: Path, tmp_path: Path, name: str) -> None:
    ck = copy(saved, tmp_path)
    mark = tmp_path / "UNPICKLED"
    (ck / name).write_bytes(pickle.dumps(_Mark(str(mark)), protocol=4))
    with pytest.raises(CheckpointError, match=f"pickle-format files.*{name}") as err:
        load_checkpoint(ck)
    if name == "model.safetensors":
        assert "pickle header 0x80 0x04" in str(err.value)
    assert not mark.exists()
    with pytest.raises(CheckpointError, match="pickle"):
        make_policy("vla", fake_env("sharpa_wave", 62), seed=0, checkpoint=str(ck))
    assert not mark.exists()


def test_torch_zip_save_refused(saved: Path, tmp_path: Path) -> None:
    ck = copy(saved, tmp_path)
    with zipfile.ZipFile(ck / "extra_weights", "w") as zf:  # what torch.save writes, under any name
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(CheckpointError, match="extra_weights \\(zip archive with a .pkl member"):
        load_checkpoint(ck)


def _edit_json(path: Path, fn) -> None:
    path.write_text(json.dumps(fn(json.loads(path.read_text()))))


def test_mismatch_messages(saved: Path, tmp_path: Path) -> None:
    def broken(edit) -> str:
        ck = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        shutil.copytree(saved, ck)
        edit(ck)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(ck)
        assert isinstance(err.value, EgosimError)
        return str(err.value)

    msg = broken(lambda ck: _edit_json(ck / "embodiment_id.json", lambda d: {**d, "allegro": 3}))
    assert "unknown embodiment(s) ['allegro']" in msg and "human, sharpa_wave, unitree_dex3" in msg

    def drop_tensor(ck: Path) -> None:
        t = load_file(str(ck / "model.safetensors"))
        del t["state_placeholder"]
        save_file(t, str(ck / "model.safetensors"))
    msg = broken(drop_tensor)
    assert f"missing tensor 'state_placeholder' (expected shape ({TINY.d_model},))" in msg

    def reshape_tensor(ck: Path) -> None:
        t = load_file(str(ck / "model.safetensors"))
        t["action_pos"] = torch.zeros(TINY.horizon + 1, TINY.d_model)
        save_file(t, str(ck / "model.safetensors"))
    msg = broken(reshape_tensor)
    assert f"'action_pos' has shape ({TINY.horizon + 1}, {TINY.d_model}), expected ({TINY.horizon}, {TINY.d_model})" in msg

    msg = broken(lambda ck: _edit_json(ck / "config.json", lambda d: {**d, "format_version": 99, "egosim_version": "9.0"}))
    assert "format_version 99 (written by egosim 9.0) is incompatible" in msg and "upgrade egosim" in msg

    msg = broken(lambda ck: (ck / "statistics.json").write_text("{not json"))
    assert "statistics.json is not valid JSON" in msg and "line 1" in msg

    msg = broken(lambda ck: (ck / "model.safetensors").write_bytes(b"\x10\x00garbage"))
    assert "model.safetensors is not a valid safetensors file" in msg

    msg = broken(lambda ck: (ck / "provenance.json").unlink())
    assert "lacks ['provenance.json']" in msg

    msg = broken(lambda ck: _edit_json(ck / "config.json", lambda d: {**d, "model": {**d["model"], "horizon": 8}}))
    assert "config_hash" in msg and "edited after" in msg

    msg = broken(lambda ck: _edit_json(ck / "statistics.json",
                                       lambda d: {**d, "unitree_dex3": {**d["unitree_dex3"], "action": d["sharpa_wave"]["action"]}}))
    assert "unitree_dex3.action has 62 dims; the config's action_dim is 32" in msg

    msg = broken(lambda ck: _edit_json(ck / "config.json", lambda d: {**d, "model": {**d["model"], "depth": 3}}))
    assert "unknown VLA config keys ['depth']" in msg

    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_env_embodiment_not_in_checkpoint(tmp_path: Path) -> None:
    from egosim.policies.vla.config import DEFAULT_EMBODIMENTS, VLAConfig

    cfg = VLAConfig(**{**TINY.__dict__, "embodiments": {"human": DEFAULT_EMBODIMENTS["human"],
                                                         "sharpa_wave": DEFAULT_EMBODIMENTS["sharpa_wave"]}})
    path = save_checkpoint(tmp_path / "two", VLAModel(cfg), {})
    with pytest.raises(CheckpointError, match="no head for embodiment 'unitree_dex3'; it knows human, sharpa_wave"):
        make_policy("vla", fake_env("unitree_dex3", 32), seed=0, checkpoint=str(path))
