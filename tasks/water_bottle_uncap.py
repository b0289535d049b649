"""Water bottle uncap (EgoScale task IX, "One-shot Bottle Cap Unscrewing").

Scene: a capped water bottle stands on the table in front of the robot, between the hands. One of
three water bottles per initial state (`SHAPES`: taller and slimmer than bottle_uncap's, with
narrower caps), at a random spot in an 8 x 8 cm square and a random yaw.
Instruction: "Unscrew the cap from the water bottle."

Mechanism: the same screw cap as bottle_uncap (tasks/screw_cap.py): a thread of 3.5 mm per turn that
lets go of the cap after 3 full counter-clockwise turns; the cap is then a free body resting on the
neck until a hand lifts it off.

Rubric (additive, EgoScale IX; the points sum to 1.2 and the score is clipped to 1):
- `bottle_grasped` (0.1): a hand touches the bottle.
- `rotated_once` (0.2): "one or two rotations": the thread hinge has turned >= 1 full turn.
- `rotated_three_times` (0.5): the thread hinge has turned >= 3 full turns.
- `cap_removed` (0.2): the thread has let go and the cap's skirt has cleared the neck.
- `cap_on_table` (0.2): the cap is removed, touches the table, touches neither a hand nor the
  bottle, and moves slower than 5 cm/s.
Success: all five reached and the cap lies on the table at the end. Horizon: 60 s (as
bottle_uncap: 7-11 regrasps of at most 150 degrees each; the expert finishes in 30-40 s).
"One-shot" refers to EgoScale's training data (one robot demonstration per bottle); the simulated
task is scored the same way as any other.

Privileged state (20): as bottle_uncap (tasks/bottle_uncap.py).

Objects: 500-750 ml water bottles, 30-34 mm in radius, 17-20 cm tall (body), 0.3-0.4 kg half full;
caps 14-15 mm in radius, 13-14 mm tall, 6 g, colliding as knurled hard caps (tasks/screw_cap.py).

Expert (tasks/bottle_uncap_expert.py, shared with bottle_uncap), measured on the 50 evaluation
states with `egosim eval tasks=[bottle_uncap,water_bottle_uncap] embodiments=[sharpa_wave,unitree_dex3]
policy=expert episodes=50 workers=1` (docs/results/expert50-bottles.json): Sharpa 46/50, Dex3 50/50.
The Sharpa misses: in states 4 and 10 (score 0.8) the loose cap is never lifted off the neck; in
states 2 and 43 (score 1.0: every milestone was reached at some time) the cap is not resting on
the table at the end.

Version history:
- v0: first version.
- v0, revised before release (the id stays v0): the screw-cap mechanism changes of bottle_uncap
  (release in `before_step`, tendon thread coupling, light hinge, knurled hard cap). Measured
  before/after: Sharpa 37/50 -> 46/50, Dex3 50/50 -> 50/50.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from egosim.task import Milestone, Rubric
from egosim.tasks.screw_cap import BottleShape, ScrewCapTask

SHAPES: tuple[BottleShape, ...] = (
    BottleShape("still", radius=0.032, height=0.18, neck_radius=0.0115, cap_radius=0.0145, cap_height=0.014, mass=0.35),
    BottleShape("sport", radius=0.034, height=0.17, neck_radius=0.012, cap_radius=0.015, cap_height=0.014, mass=0.4),
    BottleShape("slim", radius=0.030, height=0.20, neck_radius=0.011, cap_radius=0.014, cap_height=0.013, mass=0.3),
)


class WaterBottleUncap(ScrewCapTask):
    name: ClassVar[str] = "water_bottle_uncap"
    env_name: ClassVar[str] = "WaterBottleUncap"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"one_shot"})
    instruction: ClassVar[str] = "Unscrew the cap from the water bottle."
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=(
            Milestone("bottle_grasped", 0.1, "a hand holds the bottle"),
            Milestone("rotated_once", 0.2, "cap unscrewed one or two full turns"),
            Milestone("rotated_three_times", 0.5, "cap unscrewed at least 3 full turns"),
            Milestone("cap_removed", 0.2, "cap off the bottle's neck"),
            Milestone("cap_on_table", 0.2, "cap released, resting on the table"),
        ),
    )
    horizon_s: ClassVar[float] = 60.0
    shapes: ClassVar[tuple[BottleShape, ...]] = SHAPES
    bottle_rgba: ClassVar[list[float]] = [0.55, 0.75, 0.95, 0.5]
    cap_rgba: ClassVar[list[float]] = [0.1, 0.35, 0.85, 1.0]
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "water_bottle_uncap-v0.json"
    eval_seed: ClassVar[int] = 20261127
