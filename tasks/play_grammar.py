"""The motion grammar of `tabletop_play`: scenes, activity programs and their instruction texts.

An episode is a scene (objects from `egosim.tasks.play_objects`, a tray, a bin, beads) and a program
of 1-3 steps. The grammar, in the form the expert expands it (`egosim.tasks.tabletop_play_expert`):

    activity   := step (", then " step){0,2}
    step       := pick_place | rotate | push | pour | hand_over
    pick_place := reach grasp lift move place release retreat            (dest: table spot, tray, bin,
                                                                           on a tile or plate, in a bowl)
    rotate     := reach grasp lift turn place release retreat            (a quarter or half turn in the air)
    push       := reach_behind lower push retreat                        (4-12 cm left/right/away/towards)
    pour       := reach grasp lift move tilt untilt move place release retreat
    hand_over  := giver: reach grasp lift present hold release retreat
                  taker: wait reach grasp take move place release retreat
    grasp      := pinch | claw | power                                   (by the object's size)

`GRAMMAR` below is that table. A program is drawn step by step from the steps the scene allows
then (an object in the bin is done with; a full bowl is not pushed; a destination must be free and
reachable by the hand that acts), each step acted by the hand on the object's side of the table
(y >= 0: left). Placement keeps footprint circles 2 cm apart inside `REGION`, which every
embodiment's wrists reach.

Everything here is plain Python and numpy on JSON-ready records: the episode record is the task's
initial state, so it is stored with every collected episode and replays exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from egosim.tasks.play_objects import (
    COLOURS,
    POUR_SOURCES,
    describe,
    footprint_radius,
    grasp_kind,
    mass_range,
    sample_dims,
)

MAX_STEPS = 3
REGION = ((0.36, 0.62), (-0.36, 0.36))  # (x range, y range) of footprint centres, rig frame (m)
GAP = 0.02  # free space between footprint circles
TRAY_RADIUS, BIN_RADIUS = 0.115, 0.105  # footprint circles of the props (with their walls)
GRAMMAR: dict[str, dict[str, tuple[str, ...]]] = {
    "pick_place": {"actor": ("reach", "grasp", "lift", "move", "place", "release", "retreat")},
    "rotate": {"actor": ("reach", "grasp", "lift", "turn", "place", "release", "retreat")},
    "push": {"actor": ("reach_behind", "lower", "push", "retreat")},
    "pour": {"actor": ("reach", "grasp", "lift", "move", "tilt", "untilt", "move", "place", "release", "retreat")},
    "hand_over": {"giver": ("reach", "grasp", "lift", "present", "hold", "release", "retreat"),
                  "taker": ("wait", "reach", "grasp", "take", "move", "place", "release", "retreat")},
}
# Nominal seconds per step, for the episode's horizon: about the longest a step took the demonstrator
# on the reference states (Sharpa Wave and Dex3 at 30 Hz); the horizon adds half again and 4 s.
DURATION_S = {"pick_place": 6.0, "rotate": 7.0, "push": 4.0, "pour": 14.0, "hand_over": 12.0}
KIND_WEIGHTS = {"box": 3.0, "cylinder": 2.0, "sphere": 1.0, "capsule": 2.0, "tile": 1.0, "plate": 1.0,
                "mug": 1.0, "cup": 1.0, "bowl": 1.0, "bar": 1.0}
DIRECTIONS = {"to the left": (0.0, 1.0), "to the right": (0.0, -1.0), "away from you": (1.0, 0.0),
              "towards you": (-1.0, 0.0)}


def side_of(xy: Sequence[float]) -> str:
    """The hand that acts on an object at `xy`: left for y >= 0."""
    return "left" if xy[1] >= 0 else "right"


def _rounded(v: Sequence[float]) -> list[float]:
    return [round(float(x), 4) for x in v]


def top_area(obj: Mapping[str, Any]) -> tuple[float, float, float]:
    """(half x, half y, height) of where things go on or in an object (tile, plate, bowl, mug or cup)."""
    d, kind = obj["dims"], obj["kind"]
    if kind == "tile":
        return d["hx"], d["hy"], 2 * d["hz"]
    if kind == "plate":
        return 0.7 * d["r"], 0.7 * d["r"], 2 * d["hz"]
    inner = d["r"] - d["wall"]
    return (0.75 if kind == "bowl" else 1.0) * inner, (0.75 if kind == "bowl" else 1.0) * inner, d["h"]


# ---------------------------------------------------------------------------------------------- scenes
def _free(xy: Sequence[float], radius: float, taken: Sequence[tuple[Sequence[float], float]]) -> bool:
    (x0, x1), (y0, y1) = REGION
    if not (x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1):
        return False
    return all(math.hypot(xy[0] - p[0], xy[1] - p[1]) >= radius + r + GAP for p, r in taken)


def _spot(rng: np.random.Generator, radius: float, taken: Sequence[tuple[Sequence[float], float]],
          x: tuple[float, float] | None = None, y: tuple[float, float] | None = None, tries: int = 200) -> list[float] | None:
    """A random free footprint centre (None when none is found)."""
    (x0, x1), (y0, y1) = REGION
    xr, yr = x or (x0, x1), y or (y0, y1)
    for _ in range(tries):
        xy = [float(rng.uniform(*xr)), float(rng.uniform(*yr))]
        if _free(xy, radius, taken):
            return _rounded(xy)
    return None


def sample_scene(rng: np.random.Generator, n_slots: int) -> dict[str, Any]:
    """Objects (1..n_slots) and props placed without overlap; some scenes are set up for a pour or a hand-over."""
    kinds: list[str] = []
    pour = rng.random() < 0.35
    if pour:
        kinds.append(str(rng.choice(sorted(POUR_SOURCES))))
    hand_over = rng.random() < 0.25
    if hand_over:
        kinds.append("bar")
    pour_into_bowl = pour and rng.random() < 0.6
    if pour_into_bowl:
        kinds.append("bowl")
    n = max(len(kinds), int(rng.integers(1, n_slots + 1)))
    names, w = list(KIND_WEIGHTS), np.array(list(KIND_WEIGHTS.values()))
    while len(kinds) < n:
        kinds.append(str(rng.choice(names, p=w / w.sum())))
    props = {"tray": rng.random() < 0.4, "bin": rng.random() < 0.4 or (pour and not pour_into_bowl)}
    colours = [str(c) for c in rng.permutation(sorted(COLOURS))]
    taken: list[tuple[list[float], float]] = []
    placed_props: dict[str, Any] = {"tray": None, "bin": None}
    for prop, radius in (("bin", BIN_RADIUS), ("tray", TRAY_RADIUS)):
        if props[prop]:
            xy = _spot(rng, radius, taken, x=(0.46, 0.6))
            if xy is not None:
                taken.append((xy, radius))
                placed_props[prop] = {"xy": xy, "yaw": round(float(rng.uniform(-0.4, 0.4)), 4)}
    objects = []
    records = []
    for slot, kind in enumerate(kinds):
        dims = sample_dims(kind, rng)
        grasp = grasp_kind(kind, dims)
        lo, hi = mass_range(kind, grasp)
        records.append({"slot": slot, "kind": kind, "dims": dims, "grasp": grasp, "colour": colours[slot],
                        "mass": round(float(rng.uniform(lo, hi)), 4),
                        "friction": round(float(rng.uniform(0.9 if kind in POUR_SOURCES else 0.6, 1.2)), 3),
                        "yaw": round(float(rng.uniform(-math.pi, math.pi)), 4)})
    for rec in sorted(records, key=lambda r: -footprint_radius(r["kind"], r["dims"])):
        radius = footprint_radius(rec["kind"], rec["dims"])
        xy = _spot(rng, radius, taken)
        if xy is None:
            continue  # no room: the scene has one object fewer
        taken.append((xy, radius))
        objects.append({**rec, "xy": xy})
    objects.sort(key=lambda r: r["slot"])
    for k, o in enumerate(objects):  # slots in use are 0..n-1
        o["slot"] = k
    beads_in = next((o["slot"] for o in objects if o["kind"] in POUR_SOURCES), None) if pour else None
    return {"objects": objects, "props": placed_props, "beads_in": beads_in}


# ---------------------------------------------------------------------------------------------- programs
def _where(delta: Sequence[float]) -> str:
    dx, dy = delta
    if abs(dy) >= abs(dx):
        return "to the left" if dy > 0 else "to the right"
    return "further away" if dx > 0 else "closer to you"


def _dest_text(dest: Mapping[str, Any], objects: Mapping[int, Mapping[str, Any]]) -> str:
    kind = dest["kind"]
    if kind in ("tray", "bin"):
        return f"{'on' if kind == 'tray' else 'in'} the {kind}"
    if kind in ("on", "in"):
        return f"{kind} {describe(objects[int(dest['slot'])])}"
    raise KeyError(kind)


def _text(step: Mapping[str, Any], objects: Mapping[int, Mapping[str, Any]], rng: np.random.Generator,
          start_xy: Sequence[float]) -> str:
    obj = describe(objects[int(step["obj"])])
    verb = step["verb"]
    pick = lambda options: str(options[int(rng.integers(len(options)))])  # noqa: E731
    if verb == "pick_place":
        dest = step["dest"]
        if dest["kind"] == "table":
            where = _where([dest["xy"][0] - start_xy[0], dest["xy"][1] - start_xy[1]])
            return pick([f"move {obj} {where}", f"pick up {obj} and put it down {where}", f"shift {obj} {where}"])
        d = _dest_text(dest, objects)
        return pick([f"put {obj} {d}", f"pick up {obj} and place it {d}", f"place {obj} {d}"])
    if verb == "rotate":
        turn = "a quarter turn" if abs(step["angle"]) < 2.0 else "halfway round"
        return pick([f"pick up {obj}, turn it {turn} and set it back down", f"turn {obj} {turn}",
                     f"lift {obj} and rotate it {turn}"])
    if verb == "push":
        return pick([f"push {obj} {step['dir_name']}", f"slide {obj} {step['dir_name']}"])
    if verb == "pour":
        d = _dest_text(step["dest"], objects).split(" ", 1)[1]
        return pick([f"pour the beads from {obj} into {d}", f"empty {obj} into {d}",
                     f"tip the beads out of {obj} into {d}"])
    if verb == "hand_over":
        g, t = step["hand"], step["taker"]
        return pick([f"pass {obj} from your {g} hand to your {t} hand and put it down",
                     f"hand {obj} over to your {t} hand and set it down on the {t}",
                     f"pick up {obj} with your {g} hand, give it to your {t} hand and put it down"])
    raise KeyError(verb)


def sample_program(rng: np.random.Generator, scene: Mapping[str, Any]) -> list[dict[str, Any]]:
    """1-3 steps the scene allows, drawn one after another on the predicted state of the scene."""
    objects = {int(o["slot"]): o for o in scene["objects"]}
    xy = {i: list(o["xy"]) for i, o in objects.items()}
    done: set[int] = set()  # objects in the bin or on the tray
    loaded: set[int] = set()  # tiles, plates and bowls with something on or in them
    beads = scene.get("beads_in")
    props = {p: r for p, r in scene["props"].items() if r is not None}

    def taken(skip: int | None = None) -> list[tuple[list[float], float]]:
        out = [(xy[i], footprint_radius(o["kind"], o["dims"])) for i, o in objects.items() if i != skip and i not in done]
        out += [(r["xy"], TRAY_RADIUS if p == "tray" else BIN_RADIUS) for p, r in props.items()]
        return out

    def reachable(side: str, point: Sequence[float]) -> bool:
        return point[1] >= -0.12 if side == "left" else point[1] <= 0.12

    program: list[dict[str, Any]] = []
    n_steps = int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))
    for _ in range(n_steps):
        options: list[tuple[float, dict[str, Any]]] = []
        for i, o in objects.items():
            if i in done:
                continue
            kind, side, grasp = o["kind"], side_of(xy[i]), o["grasp"]
            radius = footprint_radius(kind, o["dims"])
            if grasp is not None:
                dests: list[dict[str, Any]] = [{"kind": p} for p, r in props.items() if reachable(side, r["xy"])
                                               and radius < (0.06 if p == "tray" else 0.065)]
                for j, t in objects.items():
                    if j != i and j not in done and t["kind"] in ("tile", "plate", "bowl") and reachable(side, xy[j]):
                        hx, hy, _ = top_area(t)
                        if radius < min(hx, hy) + (0.015 if t["kind"] != "bowl" else 0.0):
                            dests.append({"kind": "in" if t["kind"] == "bowl" else "on", "slot": j})
                y_side = (0.03, REGION[1][1]) if side == "left" else (REGION[1][0], -0.03)
                spot = _spot(rng, radius, taken(skip=i), y=y_side, tries=60)
                if spot is not None and math.hypot(spot[0] - xy[i][0], spot[1] - xy[i][1]) > 0.08:
                    dests.append({"kind": "table", "xy": spot})
                if dests and not (i == beads):
                    options.append((2.0, {"verb": "pick_place", "obj": i, "hand": side, "grasp": grasp,
                                          "dest": dests[int(rng.integers(len(dests)))]}))
                if kind != "sphere" and i != beads:
                    angle = float(rng.choice([-1, 1]) * (math.pi / 2 if rng.random() < 0.7 else math.pi))
                    options.append((1.0, {"verb": "rotate", "obj": i, "hand": side, "grasp": grasp,
                                          "angle": round(angle, 4)}))
                other = "right" if side == "left" else "left"
                y_other = (0.06, REGION[1][1]) if other == "left" else (REGION[1][0], -0.06)
                drop = _spot(rng, radius, taken(skip=i), y=y_other, tries=60)
                if drop is not None and kind == "bar" and abs(xy[i][1]) > 0.08:  # two hands need a long object
                    options.append((4.0,
                                    {"verb": "hand_over", "obj": i, "hand": side, "taker": other, "grasp": grasp,
                                     "dest": {"kind": "table", "xy": drop}}))
            if i == beads:
                targets = [{"kind": "bin"}] if "bin" in props and reachable(side, props["bin"]["xy"]) else []
                targets += [{"kind": "in", "slot": j} for j, t in objects.items()
                            if t["kind"] == "bowl" and j not in done and reachable(side, xy[j])]
                if targets:
                    options.append((6.0, {"verb": "pour", "obj": i, "hand": side, "grasp": "power",  # from the side
                                          "dest": targets[int(rng.integers(len(targets)))]}))
            if kind != "sphere" and i not in loaded:
                names = list(DIRECTIONS)
                name = names[int(rng.integers(len(names)))]
                dist = round(float(rng.uniform(0.06, 0.12)), 4)
                d = DIRECTIONS[name]
                to = [xy[i][0] + d[0] * dist, xy[i][1] + d[1] * dist]
                # Pushing towards you takes the hand round to the far side: only near objects.
                near_enough = d[0] >= 0 or xy[i][0] <= 0.5
                if _free(to, radius, taken(skip=i)) and reachable(side, to) and near_enough:
                    options.append((1.0, {"verb": "push", "obj": i, "hand": side, "dir": list(d), "dir_name": name,
                                          "dist": dist}))
        if not options:
            break
        w = np.array([o[0] for o in options])
        step = options[int(rng.choice(len(options), p=w / w.sum()))][1]
        start = list(xy[int(step["obj"])])
        step["text"] = _text(step, objects, rng, start)
        program.append(step)
        i, verb = int(step["obj"]), step["verb"]
        if verb in ("pick_place", "hand_over"):
            dest = step["dest"]
            if dest["kind"] == "table":
                xy[i] = list(dest["xy"])
            else:
                done.add(i)
                if dest["kind"] in ("on", "in"):
                    loaded.add(int(dest["slot"]))
        elif verb == "push":
            xy[i] = _rounded([xy[i][0] + step["dir"][0] * step["dist"], xy[i][1] + step["dir"][1] * step["dist"]])
        elif verb == "pour":
            beads = None
            if step["dest"]["kind"] == "in":
                loaded.add(int(step["dest"]["slot"]))
    return program


def step_text(step: Mapping[str, Any]) -> str:
    """The instruction text of one program step."""
    return str(step["text"])


def instruction(program: Sequence[Mapping[str, Any]]) -> str:
    """The episode's instruction: its steps' texts joined with ", then "."""
    text = ", then ".join(str(s["text"]) for s in program) or "look at the objects on the table"
    return text[0].upper() + text[1:] + "."


def horizon_s(program: Sequence[Mapping[str, Any]]) -> float:
    """Episode length for a program: its steps' nominal durations with slack."""
    return round(4.0 + 1.5 * sum(DURATION_S[s["verb"]] for s in program), 2)


def sample_episode(rng: np.random.Generator, n_slots: int) -> dict[str, Any]:
    """A scene, a program for it, its instruction and horizon: the task's initial-state record."""
    for _ in range(20):
        scene = sample_scene(rng, n_slots)
        program = sample_program(rng, scene)
        if program:
            break
    return {**scene, "program": program, "instruction": instruction(program), "horizon_s": horizon_s(program)}


__all__ = ["GRAMMAR", "MAX_STEPS", "REGION", "horizon_s", "instruction", "sample_episode", "sample_program",
           "sample_scene", "side_of", "step_text", "top_area"]
