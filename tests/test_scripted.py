"""Grasp geometry measured on the hand models, which the scripted experts place against objects."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from egosim.embodiment import SIDES, embodiment_names, get_embodiment
from egosim.tasks.scripted import GraspGeometry, geom_extent


@pytest.mark.parametrize("embodiment", list(embodiment_names("robot")))
@pytest.mark.parametrize("side", SIDES)
def test_pinch_closes_and_reach_is_cumulative(embodiment: str, side: str) -> None:
    geo = GraspGeometry.measure(get_embodiment(embodiment), side)
    # Closing from pre_pinch to pinch narrows the thumb-to-partner gap down to (or past) contact.
    assert geo.pinch_gap[0] > 0.03
    assert geo.pinch_gap[-1] < 0.018 < geo.pinch_gap[0]
    assert np.all(np.diff(geo.pinch_reach) >= 0)
    # An object as thick as a marker is met before the end of closing, no deeper than the full reach.
    assert geo.pinch_reach[0] <= geo.reach_at_width(0.018) <= geo.pinch_reach[-1]
    # Wider than the open gap: met at once; thinner than the closed gap: the full reach.
    assert geo.reach_at_width(1.0) == geo.pinch_reach[0]
    assert geo.reach_at_width(-1.0) == geo.pinch_reach[-1]


def test_extent_matches_the_geom_shapes() -> None:
    model = mujoco.MjModel.from_xml_string(
        """<mujoco><worldbody>
             <geom name="s" type="sphere" size="0.1" pos="0 0 1"/>
             <geom name="c" type="capsule" size="0.1 0.5" pos="0 0 2"/>
             <geom name="b" type="box" size="0.1 0.2 0.3" pos="0 0 3" euler="0 90 0"/>
           </worldbody></mujoco>"""
    )
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    up = np.array([0.0, 0.0, 1.0])
    assert geom_extent(model, data, model.geom("s").id, up) == pytest.approx(1.1)
    assert geom_extent(model, data, model.geom("c").id, up) == pytest.approx(2.6)
    # Turned 90 degrees about y: the box's x half-size now lies along z.
    assert geom_extent(model, data, model.geom("b").id, up) == pytest.approx(3.1)


@pytest.mark.parametrize("embodiment", list(embodiment_names("robot")))
@pytest.mark.parametrize("side", SIDES)
def test_claw_reaches_past_the_palm(embodiment: str, side: str) -> None:
    """With the palm just above a canister's rim, the claw's centre (the canister's axis) lies ahead of
    the palm centre and several centimetres below the palm, so the fingertips and thumb grip the walls."""
    geo = GraspGeometry.measure(get_embodiment(embodiment), side)
    assert geo.claw_center[0] > geo.palm_center[0] + 0.02
    assert geo.claw_center[2] > geo.palm_center[2] + 0.03
    assert abs(geo.claw_center[1]) < 0.02


@pytest.mark.parametrize("embodiment", list(embodiment_names()))
@pytest.mark.parametrize("side", SIDES)
def test_tripod_puts_two_fingertips_against_the_thumb(embodiment: str, side: str) -> None:
    """The tripod closes two fingertips onto the thumb, spread apart: on a thin rim the second pad keeps
    the rim from turning about the line through the thumb and the first (which a two-pad pinch allows)."""
    emb = get_embodiment(embodiment)
    model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
    data = mujoco.MjData(model)
    data.qpos[[model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]] = emb.grasp_pose("tripod", side)
    mujoco.mj_kinematics(model, data)
    tip = {s: data.site_xpos[model.site(s).id] for s in emb.fingertip_sites}
    thumb = tip[emb.fingertip_sites[0]]
    partners = [s for s in emb.fingertip_sites[1:] if np.linalg.norm(tip[s] - thumb) < 0.035]
    assert len(partners) >= 2, {s: float(np.linalg.norm(p - thumb)) for s, p in tip.items()}
    assert max(np.linalg.norm(tip[a] - tip[b]) for a in partners for b in partners) > 0.015
