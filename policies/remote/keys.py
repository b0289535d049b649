"""Names on the wire: egosim's observation and action slices under GR00T's modality keys.

A GR00T server says which keys it wants (`get_modality_config`); the egosim client looks each one up
here, so one table serves several GR00T heads:

- GR00T N1.7 `real_r1_pro_sharpa_relative_eef` (the Sharpa default): video `ego_view_res320x240_freq20`,
  `left_wrist_view_res320x240_freq20`, `right_wrist_view_res320x240_freq20` (320x240, delta indices
  [-20, 0]), state and action `left_wrist_eef` (9), `left_hand_joints` (22), `right_wrist_eef`,
  `right_hand_joints`, language `annotation.human.coarse_action`, 40-step action chunks (keys as
  in the checkpoint's processor config, quoted by public GR00T N1.7 integration code).
- GR00T's G1 + Dex3 example (`getting_started/examples/unitree_g1_blocks__modality.json`): video
  `cam_right_high`, `cam_left_wrist`, `cam_right_wrist`, hands `left_hand`, `right_hand` (7 each),
  language `annotation.human.task_description`. Its arms are joint-space (`left_arm`, 7 joints), which
  egosim's floating wrists do not have; egosim's wrists travel as `left_wrist_eef` /
  `right_wrist_eef` (and N1.7's G1 head name `left_wrist_eef_9d` is accepted too).
"""

from __future__ import annotations

from dataclasses import dataclass

from egosim.actions import side_slices

SLICES = ("left_wrist_eef", "left_hand_joints", "right_wrist_eef", "right_hand_joints")

# GR00T key -> egosim slice name (state and action)
SLICE_ALIASES: dict[str, str] = {
    **{s: s for s in SLICES},
    "left_wrist_eef_9d": "left_wrist_eef", "right_wrist_eef_9d": "right_wrist_eef",
    "left_hand": "left_hand_joints", "right_hand": "right_hand_joints",
}
# GR00T video key -> egosim camera
CAMERA_ALIASES: dict[str, str] = {
    "ego_view": "ego_view", "left_wrist_view": "left_wrist_view", "right_wrist_view": "right_wrist_view",
    "ego_view_res320x240_freq20": "ego_view", "left_wrist_view_res320x240_freq20": "left_wrist_view",
    "right_wrist_view_res320x240_freq20": "right_wrist_view",
    "cam_right_high": "ego_view", "cam_left_wrist": "left_wrist_view", "cam_right_wrist": "right_wrist_view",
}
PRIVILEGED_KEY = "privileged"  # egosim-to-egosim only: object state for served experts


@dataclass(frozen=True)
class Modality:
    """What a GR00T head reads and writes: keys and delta indices per modality (its ModalityConfig)."""

    video_keys: tuple[str, ...]
    video_deltas: tuple[int, ...]
    state_keys: tuple[str, ...]
    state_deltas: tuple[int, ...]
    action_keys: tuple[str, ...]
    action_deltas: tuple[int, ...]
    language_key: str

    def as_configs(self) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
        """(modality_keys, delta_indices) per modality, in GR00T's order."""
        return {"video": (self.video_keys, self.video_deltas), "state": (self.state_keys, self.state_deltas),
                "action": (self.action_keys, self.action_deltas), "language": ((self.language_key,), (0,))}


R1_PRO_SHARPA = Modality(
    video_keys=("ego_view_res320x240_freq20", "left_wrist_view_res320x240_freq20", "right_wrist_view_res320x240_freq20"),
    video_deltas=(-20, 0), state_keys=SLICES, state_deltas=(0,), action_keys=SLICES,
    action_deltas=tuple(range(40)), language_key="annotation.human.coarse_action")
G1_DEX3 = Modality(
    video_keys=("cam_right_high", "cam_left_wrist", "cam_right_wrist"), video_deltas=(0,),
    state_keys=SLICES, state_deltas=(0,), action_keys=SLICES, action_deltas=tuple(range(16)),
    language_key="annotation.human.task_description")
DEFAULT_MODALITY = {"sharpa_wave": R1_PRO_SHARPA, "unitree_dex3": G1_DEX3}


def slice_of(hand_dof: int, key: str) -> slice:
    """The slice of a bimanual action/state vector that a GR00T state/action key names."""
    return side_slices(hand_dof)[SLICE_ALIASES[key]]


def modality_from_configs(configs: dict) -> Modality:
    """A `Modality` from a decoded `get_modality_config` reply (name -> ModalityConfig JSON)."""
    def part(name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
        cfg = configs.get(name) or {}
        return tuple(cfg.get("modality_keys") or ()), tuple(int(d) for d in (cfg.get("delta_indices") or (0,)))

    vk, vd = part("video")
    sk, sd = part("state")
    ak, ad = part("action")
    lk, _ = part("language")
    return Modality(vk, vd, sk, sd, ak, ad, lk[0] if lk else "annotation.human.task_description")
