"""VLA speed: parameter count, ms per action chunk on one CPU core, training samples/s on 2 cores.

Uses the default `VLAConfig` (untrained weights: speed does not depend on them) and inputs shaped
like the env's: three 240x320 uint8 cameras, the Sharpa state, an instruction. A chunk is one full
prediction (encoders once + K Euler steps of the DiT). Targets (issue #9): <= 25 ms per chunk on one
core. With a GPU present the same figures are measured there too. Wall times count only on an idle
machine; the CPU-time figures (process time) stay meaningful when other jobs share the cores.

    python benchmarks/policy.py --chunks 50 --train-steps 20 --batch 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.model import VLAModel, parameter_count
from egosim.policies.vla.normalize import EmbodimentStats, Stats
from egosim.policies.vla.train import StageConfig, make_optimizer, train_step


def _batch(cfg: VLAConfig, b: int, embodiment: str, g: torch.Generator) -> dict:
    spec = cfg.spec(embodiment)
    action = torch.zeros(b, cfg.horizon, cfg.max_action_dim)
    action[..., : spec.action_dim] = torch.rand(b, cfg.horizon, spec.action_dim, generator=g) * 2 - 1
    mask = torch.zeros_like(action, dtype=torch.bool)
    mask[..., : spec.action_dim] = True
    return {"embodiment": [embodiment] * b,
            "images": {c: torch.randint(0, 256, (b, 3, 240, 320), generator=g, dtype=torch.uint8) for c in cfg.cameras},
            "instruction": ["put the marker in the canister"] * b,
            "state": torch.rand(b, cfg.max_state_dim, generator=g), "has_state": torch.ones(b, dtype=torch.bool),
            "action": action, "action_mask": mask}


def measure(device: str, chunks: int, train_steps: int, batch: int, threads: int) -> dict:
    cfg = VLAConfig()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = VLAModel(cfg).to(device).eval()
    obs = _batch(cfg, 1, "sharpa_wave", g)
    obs = {k: ({c: x.to(device) for c, x in v.items()} if isinstance(v, dict) else
               v.to(device) if torch.is_tensor(v) else v) for k, v in obs.items()}
    torch.set_num_threads(1)
    times, cpu_times = [], []
    for i in range(chunks + 3):  # 3 warm-up chunks
        t0, c0 = time.perf_counter(), time.process_time()
        model.sample(obs, torch.Generator().manual_seed(i))
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(1e3 * (time.perf_counter() - t0))
            cpu_times.append(1e3 * (time.process_time() - c0))
    torch.set_num_threads(threads)
    stats = {n: EmbodimentStats(Stats.identity(s.action_dim), Stats.identity(s.state_dim) if s.state_dim else None)
             for n, s in cfg.embodiments.items()}
    opt, _ = make_optimizer(model, StageConfig("pretrain", steps=1))
    data = _batch(cfg, batch, "sharpa_wave", g)
    train_step(model, opt, data, stats, seed=0, step=0)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(train_steps):
        train_step(model, opt, data, stats, seed=0, step=step + 1)
    if device != "cpu":
        torch.cuda.synchronize()
    sps = batch * train_steps / (time.perf_counter() - t0)
    cpu_sps = batch * train_steps / max(1e-9, time.process_time() - c0)
    return {"device": device, "params": parameter_count(model), "ms_per_chunk_median": statistics.median(times),
            "ms_per_chunk_p90": sorted(times)[int(0.9 * (len(times) - 1))],
            "cpu_ms_per_chunk_median": statistics.median(cpu_times), "train_samples_per_s": sps,
            "train_samples_per_cpu_s": cpu_sps,
            "train_threads": threads, "batch": batch, "horizon": cfg.horizon, "euler_steps": cfg.inference_steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=50)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the training figure")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = [measure("cpu", args.chunks, args.train_steps, args.batch, args.threads)]
    if torch.cuda.is_available():
        rows.append(measure("cuda", args.chunks, args.train_steps, args.batch, args.threads))
    for r in rows:
        print(f"{r['device']}: {r['params'] / 1e6:.2f} M parameters; {r['ms_per_chunk_median']:.1f} ms per chunk "
              f"(median, p90 {r['ms_per_chunk_p90']:.1f}; H={r['horizon']}, K={r['euler_steps']}, 1 thread; "
              f"target <= 25 ms; CPU time {r['cpu_ms_per_chunk_median']:.1f} ms); training "
              f"{r['train_samples_per_s']:.1f} samples/s (batch {r['batch']}, {r['train_threads']} threads; "
              f"{r['train_samples_per_cpu_s']:.1f} per CPU-second)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
