"""EgoScale's validation-loss protocol on synthetic checkpoints whose error is known, and the scaling plot."""

from __future__ import annotations

import numpy as np
import pytest
from egosim.eval.offline import HeldOutEpisode, eval_timesteps, scaling_plot_svg, validation_loss
from egosim.eval.stats import fit_log_scaling

from egosim.actions import side_slices

DOF = 7
DIM = 2 * (9 + DOF)


def _episodes(n: int = 6, frames: int = 50, horizon: int = 4) -> list[HeldOutEpisode]:
    rng = np.random.default_rng(0)
    return [HeldOutEpisode([{"ep": e, "t": t} for t in range(frames)], rng.normal(size=(frames, horizon, DIM)))
            for e in range(n)]


def test_eval_timesteps_are_fixed_and_cover_the_episode() -> None:
    ts = eval_timesteps(100)
    assert len(ts) == 20 and ts[0] == 0 and ts[-1] == 99 and ts == eval_timesteps(100)
    assert eval_timesteps(5) == [0, 1, 2, 3, 4] and eval_timesteps(0) == []


def test_noise_averaged_over_16_flow_samples() -> None:
    """A sampler that returns the truth plus Gaussian noise (sd 0.4 on wrists, 0.8 on hands): the
    16-sample average has variance sd^2 / 16, so the MSEs come out near 0.01 and 0.04."""
    eps = _episodes()
    sl = side_slices(DOF)
    sd = np.zeros(DIM)
    sd[np.r_[sl["left_wrist_eef"], sl["right_wrist_eef"]]] = 0.4
    sd[np.r_[sl["left_hand_joints"], sl["right_hand_joints"]]] = 0.8

    def sample(obs, n, rng):
        truth = eps[obs["ep"]].action_chunks[obs["t"]]
        return truth + rng.normal(size=(n, *truth.shape)) * sd

    loss = validation_loss(sample, eps, DOF)
    assert loss.n_frames == 6 * 20
    assert loss.wrist_mse == pytest.approx(0.16 / 16, rel=0.15) and loss.hand_mse == pytest.approx(0.64 / 16, rel=0.15)
    assert validation_loss(sample, eps, DOF, seed=5) == validation_loss(sample, eps, DOF, seed=5)
    biased = validation_loss(lambda o, n, r: np.broadcast_to(eps[o["ep"]].action_chunks[o["t"]] + 0.5, (n, 4, DIM)),
                             eps, DOF)
    assert biased.mse == pytest.approx(0.25)


def test_bad_sampler_and_episodes() -> None:
    eps = _episodes(1, 5)
    with pytest.raises(ValueError, match="sampler returned"):
        validation_loss(lambda o, n, r: np.zeros((n, 3, DIM)), eps, DOF)
    with pytest.raises(ValueError, match="action_chunks must be"):
        validation_loss(lambda o, n, r: np.zeros((n, 4, DIM)), eps, 22)
    with pytest.raises(ValueError, match="no frames"):
        validation_loss(lambda o, n, r: np.zeros((n, 4, DIM)), [], DOF)


def test_scaling_plot() -> None:
    hours = [1000, 2000, 5000, 10000, 20000]
    loss = [0.9 - 0.05 * np.log(h) for h in hours]
    svg = scaling_plot_svg(hours, loss, fit_log_scaling(hours, loss))
    assert svg.startswith("<svg") and svg.count("<circle") == 5 and "R\u00b2 = 1.000" in svg and "-0.050 ln D" in svg
