"""The VLA network: shapes per embodiment, the masked flow loss, flow times, the registry entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vla_fixtures import TINY, synthetic_batch

from egosim.errors import ConfigError, InvalidChoiceError
from egosim.policies import get_policy_kind, make_policy, policy_kinds
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.model import VLAModel, instruction_tokens
from egosim.policies.vla.train import normalize_batch, step_noise

EMBS = ["human", "sharpa_wave", "unitree_dex3"]


@pytest.fixture(scope="module")
def model() -> VLAModel:
    torch.manual_seed(0)
    return VLAModel(TINY).eval()


@pytest.mark.parametrize("name", EMBS)
def test_shapes_per_embodiment(model: VLAModel, name: str) -> None:
    batch = synthetic_batch(TINY, [name, name])
    out = model.sample(batch, torch.Generator().manual_seed(0))
    dim = TINY.spec(name).action_dim
    assert out.shape == (2, TINY.horizon, TINY.max_action_dim)
    assert torch.isfinite(out).all() and out[..., :dim].abs().sum() > 0
    assert (out[..., dim:] == 0).all()
    loss = model.loss(batch, torch.randn(2, TINY.horizon, TINY.max_action_dim), torch.rand(2))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_mixed_batch_matches_per_sample(model: VLAModel) -> None:
    """Routing samples to their embodiment's adapters does not mix samples."""
    batch = synthetic_batch(TINY, EMBS)
    noise, tau = torch.randn(3, TINY.horizon, TINY.max_action_dim), torch.rand(3)
    full = model.loss(batch, noise, tau) * batch["action_mask"].sum()
    parts = 0.0
    for i in range(3):
        one = {k: (v[i : i + 1] if torch.is_tensor(v) else {c: x[i : i + 1] for c, x in v.items()}
                   if isinstance(v, dict) else v[i : i + 1]) for k, v in batch.items()}
        parts += model.loss(one, noise[i : i + 1], tau[i : i + 1]) * one["action_mask"].sum()
    torch.testing.assert_close(full, parts, rtol=1e-4, atol=1e-4)


def test_masked_loss_ignores_padding(model: VLAModel) -> None:
    batch = synthetic_batch(TINY, ["unitree_dex3", "human", "sharpa_wave"], pad_steps=1)
    noise, tau = torch.randn(3, TINY.horizon, TINY.max_action_dim), torch.rand(3)
    ref = model.loss(batch, noise, tau)
    garbage = dict(batch)
    mask = batch["action_mask"]
    garbage["action"] = torch.where(mask, batch["action"], 1e3 * torch.randn(mask.shape))
    assert (~mask[0, 0, 32:]).all() and (~mask[:, -1]).all()  # padded dims and a padded step exist
    assert torch.equal(model.loss(garbage, noise, tau), ref)
    changed = dict(batch, action=batch["action"] + mask * 0.5)
    assert not torch.equal(model.loss(changed, noise, tau), ref)


def test_human_state_is_a_placeholder(model: VLAModel) -> None:
    batch = synthetic_batch(TINY, ["human", "sharpa_wave"])
    noise, tau = torch.randn(2, TINY.horizon, TINY.max_action_dim), torch.rand(2)
    a = model.encode_state(batch["embodiment"], batch["state"], batch["has_state"])
    b = model.encode_state(batch["embodiment"], batch["state"] + 1.0, batch["has_state"])
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    assert torch.equal(a[0, 0], model.state_placeholder)
    no_state = dict(batch, has_state=torch.tensor([False, False]))
    c = model.encode_state(no_state["embodiment"], no_state["state"], no_state["has_state"])
    assert torch.equal(c[1, 0], model.state_placeholder)
    assert torch.isfinite(model.loss(no_state, noise, tau))


def test_flow_time_follows_gr00t() -> None:
    """tau = (s - u) / s, u ~ Beta(1.5, 1), clamped to [0, 1]: mean 1 - 0.6/0.999 ~ 0.4 (noisy end favoured)."""
    _, tau = step_noise(VLAConfig(), seed=0, step=0, shape=(20000, 1, 1))
    assert tau.min() >= 0.0 and tau.max() <= 1.0
    assert abs(float(tau.mean()) - (1 - 0.6 / 0.999)) < 0.01
    n1, t1 = step_noise(VLAConfig(), seed=0, step=5, shape=(4, 2, 3))
    n2, t2 = step_noise(VLAConfig(), seed=0, step=5, shape=(4, 2, 3))
    assert torch.equal(n1, n2) and torch.equal(t1, t2)


def test_sampling_is_seeded(model: VLAModel) -> None:
    batch = synthetic_batch(TINY, ["sharpa_wave"])
    a = model.sample(batch, torch.Generator().manual_seed(3))
    b = model.sample(batch, torch.Generator().manual_seed(3))
    c = model.sample(batch, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_instruction_bytes() -> None:
    ids = instruction_tokens(["ab", "", "é" * 40], 8)
    assert ids[0].tolist() == [1, ord("a") + 2, ord("b") + 2, 0, 0, 0, 0, 0]
    assert ids[1, 0] == 1 and (ids[1, 1:] == 0).all() and (ids[2] > 0).all()


def test_unknown_embodiment_lists_known(model: VLAModel) -> None:
    batch = synthetic_batch(TINY, ["sharpa_wave"])
    batch["embodiment"] = ["allegro"]
    with pytest.raises(InvalidChoiceError, match="'allegro'.*human, sharpa_wave, unitree_dex3"):
        model.sample(batch)
    with pytest.raises(InvalidChoiceError, match="allegro"):
        normalize_batch(batch, {}, TINY)
    batch["embodiment"] = ["sharpa_wave"]
    with pytest.raises(ConfigError, match="no normalisation statistics for embodiment 'sharpa_wave' \\(have: none\\)"):
        normalize_batch(batch, {}, TINY)


def test_config_roundtrip_and_errors() -> None:
    cfg = VLAConfig()
    assert VLAConfig.from_dict(cfg.to_dict()) == cfg and VLAConfig.from_dict(cfg.to_dict()).hash() == cfg.hash()
    assert cfg.max_action_dim == 62 and cfg.max_state_dim == 62
    with pytest.raises(ConfigError, match="unknown VLA config keys \\['widht'\\]"):
        VLAConfig.from_dict({"widht": 3})
    with pytest.raises(ConfigError, match="execute_steps"):
        VLAConfig(execute_steps=17)


def test_registry_knows_vla() -> None:
    assert "vla" in policy_kinds()
    kind = get_policy_kind("vla")
    assert kind.needs_images and kind.takes_checkpoint
    with pytest.raises(InvalidChoiceError) as err:
        get_policy_kind("vlaa")
    for k in policy_kinds():
        assert k in str(err.value)
    with pytest.raises(ConfigError, match="needs checkpoint=PATH"):
        make_policy("vla", env=None, seed=0)


def test_default_size_and_speed() -> None:
    """The documented defaults: ~2.4 M parameters (a marker, not a benchmark)."""
    from egosim.policies.vla.model import parameter_count

    n = parameter_count(VLAModel(VLAConfig()))
    assert 2.0e6 < n < 3.0e6, n
    assert np.isfinite(n)
