"""tabletop_play (procedural human play): scenes, the motion grammar, the demonstrator, and
`egosim collect source=procedural hours=H`."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import numpy as np
import pytest
from egosim.data.collect import CollectConfig, collect
from egosim.data.loader import load_episodes_table, read_episode
from egosim.data.validate import validate_dataset
from egosim.errors import ConfigError
from egosim.rig import TABLE_HEIGHT
from egosim.tasks import make_env, task_names
from egosim.tasks.play_grammar import GAP, GRAMMAR, MAX_STEPS, REGION, TRAY_RADIUS, BIN_RADIUS, sample_episode
from egosim.tasks.play_objects import COLOURS, KINDS, footprint_radius, grasp_kind
from egosim.tasks.tabletop_play import N_SLOTS, TabletopPlay

FAST = "unitree_dex3"  # collection mechanics on the lighter hand; the demonstrator on both


def _footprints(ep: dict) -> list[tuple[list[float], float]]:
    out = [(o["xy"], footprint_radius(o["kind"], o["dims"])) for o in ep["objects"]]
    for prop, radius in (("tray", TRAY_RADIUS), ("bin", BIN_RADIUS)):
        if ep["props"][prop] is not None:
            out.append((ep["props"][prop]["xy"], radius))
    return out


def test_scenes_are_valid_and_do_not_overlap_across_seeds() -> None:
    kinds, grasps, verbs, n_objects = set(), set(), set(), set()
    for seed in range(300):
        ep = sample_episode(np.random.default_rng(seed), N_SLOTS)
        json.dumps(ep)  # the initial-state record is stored with the episode
        objs = ep["objects"]
        assert 1 <= len(objs) <= N_SLOTS and [o["slot"] for o in objs] == list(range(len(objs)))
        assert len({o["colour"] for o in objs}) == len(objs) and all(o["colour"] in COLOURS for o in objs)
        for o in objs:
            assert o["kind"] in KINDS and o["grasp"] == grasp_kind(o["kind"], o["dims"])
            assert o["mass"] > 0 and 0.5 < o["friction"] < 1.3
            kinds.add(o["kind"])
            grasps.add(o["grasp"])
        prints = _footprints(ep)
        for a, (pa, ra) in enumerate(prints):
            assert REGION[0][0] <= pa[0] <= REGION[0][1] and REGION[1][0] <= pa[1] <= REGION[1][1]
            for pb, rb in prints[a + 1:]:
                assert math.dist(pa, pb) >= ra + rb + GAP - 1e-3, (seed, pa, pb)
        if ep["beads_in"] is not None:
            assert objs[ep["beads_in"]]["kind"] in ("mug", "cup")
        n_objects.add(len(objs))
        for step in ep["program"]:
            verbs.add(step["verb"])
    assert kinds == set(KINDS) and grasps == {"pinch", "claw", "power", None}
    assert verbs == set(GRAMMAR) and n_objects == set(range(1, N_SLOTS + 1))


def test_programs_are_valid_and_their_instruction_says_each_step() -> None:
    for seed in range(300):
        ep = sample_episode(np.random.default_rng(seed), N_SLOTS)
        objs = {o["slot"]: o for o in ep["objects"]}
        prog = ep["program"]
        assert 1 <= len(prog) <= MAX_STEPS
        text = ep["instruction"]
        assert text.endswith(".") and text[0].isupper() and len(text) < 512 and set(text) <= set(string.printable)
        for step in prog:
            assert step["verb"] in GRAMMAR and step["obj"] in objs and step["hand"] in ("left", "right")
            assert step["text"] in text.lower() or step["text"][0].upper() + step["text"][1:] in text
            obj = objs[step["obj"]]
            assert f"{obj['colour']} " in step["text"]  # names the object by its colour
            if step["verb"] in ("pick_place", "rotate", "hand_over"):
                assert obj["grasp"] is not None and step["grasp"] == obj["grasp"]
            if step["verb"] == "hand_over":
                assert obj["kind"] == "bar" and step["taker"] != step["hand"]
            if step["verb"] == "pour":
                assert step["obj"] == ep["beads_in"]
            dest = step.get("dest")
            if dest is not None and dest["kind"] in ("tray", "bin"):
                assert ep["props"][dest["kind"]] is not None
            if dest is not None and dest["kind"] in ("on", "in"):
                assert objs[dest["slot"]]["kind"] in ("tile", "plate", "bowl") and dest["slot"] != step["obj"]
        assert ep["horizon_s"] > 0
    a, b = (sample_episode(np.random.default_rng(7), N_SLOTS) for _ in range(2))
    assert a == b  # drawn from the seed alone


def test_task_is_procedural_not_a_benchmark_task_and_runs_at_30_hz() -> None:
    assert "tabletop_play" not in task_names() and task_names("procedural") == ("tabletop_play",)
    env = make_env("tabletop_play", FAST, obs_mode="state")
    assert env.control_hz == 30.0 and env.n_substeps * env.model.opt.timestep == pytest.approx(1 / 30)
    obs, _ = env.reset(seed=3)
    assert obs["instruction"] == env.task.instruction != TabletopPlay.instruction
    assert env.horizon == round(env.initial_state["horizon_s"] * 30)
    assert list(env.task.rubric.names) == [f"step{k + 1}" for k in range(len(env.task.program))]


def test_slots_take_each_episodes_shapes_and_unused_ones_are_out_of_the_scene() -> None:
    """Sizes, masses and collision bounds set at reset are MuJoCo's own for that shape; objects rest
    on the table (shapes larger than the compiled placeholder collide: bounds were refreshed); parked
    slots and props touch nothing."""
    env = make_env("tabletop_play", FAST, obs_mode="state")
    task: TabletopPlay = env.task  # type: ignore[assignment]
    m, d = env.model, env.data
    hold = np.concatenate([np.r_[0, 0, 0, 1, 0, 0, 0, 1, 0], env.embodiment.grasp_pose("open", "left"),
                           np.r_[0, 0, 0, 1, 0, 0, 0, 1, 0], env.embodiment.grasp_pose("open", "right")])
    seen: set[str] = set()
    for seed in (1, 4, 9, 12, 20, 33):
        env.reset(seed=seed)
        objs = task.scene["objects"]
        for i, o in objs.items():
            seen.add(o["kind"])
            b = task._slot_body[i]
            assert m.body_mass[b] == pytest.approx(o["mass"])
            assert m.body_gravcomp[b] == 0.0
        for i in range(N_SLOTS):
            if i not in objs:
                assert m.body_gravcomp[task._slot_body[i]] == 1.0
                assert all(m.geom_contype[g] == 0 for g in task._slot_geoms[i])
        for _ in range(15):  # half a second
            env.step(hold)
        table = env.rig.table_geom
        for i, o in objs.items():
            p, _ = task.object_pose(d, i)
            assert abs(p[2] - TABLE_HEIGHT) < 0.004, (seed, o["kind"], p)  # resting on the table, not through it
            assert math.dist(p[:2], o["xy"]) < 0.01, (seed, o["kind"])
        parked = {task._slot_body[i] for i in range(N_SLOTS) if i not in objs}
        for c in d.contact[: d.ncon]:
            bodies = {int(m.geom_bodyid[c.geom[0]]), int(m.geom_bodyid[c.geom[1]])}
            assert not bodies & parked
            assert c.dist > -0.004 or table not in c.geom  # no deep penetration of the table
    assert len(seen) >= 5


def test_a_shape_in_a_slot_matches_the_same_shape_compiled_by_mujoco() -> None:
    from egosim.tasks.play_objects import shape_geoms
    from egosim.tasks.tabletop_play import _compile_shape

    env = make_env("tabletop_play", FAST, obs_mode="state")
    task: TabletopPlay = env.task  # type: ignore[assignment]
    env.reset(seed=2)
    for i, o in task.scene["objects"].items():
        geoms = shape_geoms(o["kind"], o["dims"])
        ref = _compile_shape(geoms, o["mass"])
        ids = task._slot_geoms[i][: len(geoms)]
        for f in ("geom_size", "geom_pos", "geom_quat", "geom_rbound", "geom_aabb", "geom_type"):
            np.testing.assert_allclose(getattr(env.model, f)[ids], getattr(ref, f)[: len(geoms)], atol=1e-9)
        b = task._slot_body[i]
        for f in ("body_inertia", "body_ipos", "body_iquat"):
            np.testing.assert_allclose(getattr(env.model, f)[b], getattr(ref, f)[1], atol=1e-9)
        assert all(env.model.geom_contype[g] == 0 for g in task._slot_geoms[i][len(geoms):])


def _play(emb: str, state: int) -> tuple[dict, int]:
    env = make_env("tabletop_play", emb, obs_mode="state")
    expert = env.task.make_expert(env)
    obs, info = env.reset(seed=state, options={"initial_state": state})
    expert.reset(seed=state)
    steps, done = 0, False
    while not done:
        obs, _, term, trunc, info = env.step(expert.act(obs)[0])
        steps += 1
        done = term or trunc
    return info, steps


@pytest.mark.parametrize("emb", ["sharpa_wave", FAST])
def test_demonstrator_carries_out_a_short_program(emb: str) -> None:
    """Reference state 5 is one step (move a stick): done through physics, and the episode ends when
    the activity does (hands lifted clear), well inside the horizon."""
    info, steps = _play(emb, 5)
    assert info["is_success"] and info["score"] == 1.0, info
    assert steps < 0.5 * round(TabletopPlay().eval_initial_states()[5]["horizon_s"] * 30)


def _collect(out: Path, hours: float, **kw) -> list[dict]:
    from egosim.cli import CollectEnvFactory, CollectPolicyFactory

    env_factory = kw.pop("env_factory", CollectEnvFactory(False, True))
    cfg = CollectConfig(tasks=["tabletop_play"], embodiments=[FAST], seed=kw.pop("seed", 1), output_dir=str(out),
                        source="procedural", hours=hours, video=kw.pop("video", False), image_size=(32, 48), **kw)
    return collect(cfg, env_factory, CollectPolicyFactory("expert"), log=None)


def test_procedural_collection_writes_exactly_the_hours_asked_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "play"
    rows = _collect(out, 0.001, video=True)  # 108 frames at 30 fps
    root = out / FAST
    summary = validate_dataset(root)
    info = json.loads((root / "meta/info.json").read_text())
    assert info["fps"] == 30 and info["total_frames"] == 108 == rows[0]["frames"] == summary.frames
    attempts = [json.loads(line) for line in (root / "meta/egosim_attempts.jsonl").read_text().splitlines()]
    assert all(a["kept"] for a in attempts) and [a["attempt"] for a in attempts] == list(range(len(attempts)))
    # Each episode's task text is its own program's instruction.
    table = {r["episode_index"]: r for r in load_episodes_table(root)}
    for a in attempts:
        assert table[a["episode_index"]]["tasks"] == [a["initial_state"]["instruction"]]
    # Rerunning does nothing; asking for more hours goes on from there, no attempt twice.
    assert _collect(out, 0.001, video=True)[0]["frames"] == 108
    rows = _collect(out, 0.002, video=True)
    attempts = [json.loads(line) for line in (root / "meta/egosim_attempts.jsonl").read_text().splitlines()]
    assert rows[0]["frames"] == 216 == validate_dataset(root).frames
    assert [a["attempt"] for a in attempts] == list(range(len(attempts)))


class _DiesAfter:
    """An env factory whose envs raise after `n` steps in all: a collection killed mid-episode."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, task, emb, video, image_size):
        from egosim.cli import CollectEnvFactory

        env = CollectEnvFactory(False, True)(task, emb, video, image_size)
        step, left = env.step, [self.n]

        def dying_step(action):
            left[0] -= 1
            if left[0] < 0:
                raise KeyboardInterrupt("killed")
            return step(action)

        env.step = dying_step
        return env


def test_procedural_collection_killed_mid_episode_resumes_to_the_same_dataset(tmp_path: Path) -> None:
    hours = 0.004  # 432 frames: attempts 9 (204 frames) and 10 (240, cut to 228) on this hand
    ref = _collect(tmp_path / "ref", hours, seed=9)
    first = load_episodes_table(tmp_path / "ref" / FAST)[0]["length"]
    assert ref[0]["episodes"] >= 2
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):  # dies 20 steps into the second episode
        _collect(killed, hours, seed=9, env_factory=_DiesAfter(first + 20))
    partial = validate_dataset(killed / FAST)  # valid at the kill, holding what was committed
    assert partial.episodes == 1 and partial.frames == first
    resumed = _collect(killed, hours, seed=9)
    assert resumed[0]["frames"] == ref[0]["frames"] == 432
    assert [r["tasks"] for r in load_episodes_table(killed / FAST)] == [
        r["tasks"] for r in load_episodes_table(tmp_path / "ref" / FAST)]
    for k in range(validate_dataset(killed / FAST).episodes):
        a, b = read_episode(tmp_path / "ref" / FAST, k), read_episode(killed / FAST, k)
        np.testing.assert_array_equal(a["action"], b["action"])


@pytest.mark.slow
def test_procedural_collection_with_two_workers_cuts_the_last_episode_the_same_way(tmp_path: Path) -> None:
    one = _collect(tmp_path / "w1", 0.003, seed=9)
    two = _collect(tmp_path / "w2", 0.003, seed=9, workers=2)
    assert one[0]["episodes"] == 2  # attempt 10 is cut: a worker played it whole, it was replayed cut
    assert one[0]["frames"] == two[0]["frames"] == 324
    for k in range(one[0]["episodes"]):
        a, b = read_episode(tmp_path / "w1" / FAST, k), read_episode(tmp_path / "w2" / FAST, k)
        np.testing.assert_array_equal(a["action"], b["action"])


def test_procedural_settings_are_checked(tmp_path: Path) -> None:
    from egosim.cli import main

    with pytest.raises(ConfigError, match="needs hours"):
        CollectConfig(source="procedural").validate()
    with pytest.raises(ConfigError, match="keeps every episode"):
        CollectConfig(source="procedural", hours=0.1, keep="success").validate()
    with pytest.raises(ConfigError, match="for source=procedural"):
        CollectConfig(hours=0.1).validate()
    assert CollectConfig(source="procedural", hours=0.1).keep == "all" and CollectConfig().keep == "success"
    assert main(["collect", "tasks=[tabletop_play]", f"output_dir={tmp_path}"]) == 2  # procedural needs source=...
    assert main(["collect", "source=procedural", f"output_dir={tmp_path}"]) == 2  # ... and hours
    assert main(["collect", "source=procedural", "hours=0.0003", f"embodiments=[{FAST}]", "video=false", "workers=1",
                 f"output_dir={tmp_path}"]) == 0
    assert validate_dataset(tmp_path / FAST).frames == round(0.0003 * 3600 * 30)
