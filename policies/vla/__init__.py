"""egosim's VLA: GR00T N1's shape at a size that trains and runs on a CPU.

Modules (this package imports none of them itself, so `egosim.policies` stays torch-free until a
`vla` policy is built):
    config      `VLAConfig` (sizes, flow settings) and the embodiment table (`EmbodimentSpec`).
    model       `VLAModel`: image + instruction encoders, per-embodiment adapters, the DiT.
    normalize   per-embodiment min-max statistics (`statistics.json`).
    checkpoint  save / validated load of checkpoint folders; pickle files are refused.
    policy      `VLAPolicy`, the `vla` policy kind.
    train       the step function, the resumable loop and the pretrain/midtrain/finetune stages.

Architecture (GR00T N1, NVIDIA/Isaac-GR00T `gr00t/model/action_head/flow_matching_action_head.py`):
    - Vision: one small conv net (4 stride-2 stages, GroupNorm) shared by `ego_view`,
      `left_wrist_view` and `right_wrist_view`, images resized to 96x128, 3x4 = 12 tokens per camera,
      plus a learned camera embedding. (GR00T: a frozen/tuned Eagle/SigLIP encoder; not available here.)
    - Language: UTF-8 bytes (no tokenizer to download), a 2-layer transformer encoder.
    - Per-embodiment state encoder (MLP) and action encoder/decoder; a learned placeholder token
      replaces the state for samples without proprioception (human, EgoScale 1.5). Adding an
      embodiment is one `EmbodimentSpec` entry in the config.
    - A shared DiT (4 blocks: self-attention over `[state, 4 future tokens, H action tokens]`,
      cross-attention to the image + text tokens, MLP; adaLN-Zero on the flow time).
    - Flow matching as in GR00T: A_tau = tau A + (1 - tau) eps, target A - eps; tau = (s - u) / s with
      u ~ Beta(1.5, 1.0), s = 0.999 (`noise_beta_alpha`, `noise_beta_beta`, `noise_s`); tau bucketed
      into 1000 steps for its sinusoidal embedding; MSE summed over `action_mask` (padded action dims
      and time steps) and divided by its count; `num_inference_timesteps` Euler steps from tau = 0.

Defaults and why:
    - horizon 16: GR00T N1's action horizon and that of GR00T's G1/Dex3 example (0.8 s at 20 Hz);
      N1.7's 40 is its maximum, more than a CPU-size model needs for pen_in_bin-length skills.
    - execute_steps 8: the policy returns the first half of each chunk (receding horizon), so it
      reacts to what happened every 0.4 s while actions stay smooth within a chunk.
    - inference_steps 4: GR00T N1/N1.5/N1.7 use 4 and its README says 4 steps are sufficient.
    - max dims: state 62, action 62 (the widest embodiment, Sharpa bimanual); narrower embodiments pad.
    - width 128, 4 heads, 4 DiT blocks: 2.44 M parameters (`model.parameter_count`); about 20 ms of
      CPU time per chunk on one core (4 Euler steps, encoders run once), under the 25 ms target, and
      about 80 training samples per CPU-second (`benchmarks/policy.py`). Small enough that the
      pen_in_bin overfit and the stage chain train in minutes on the project's 2-core machines.
"""
