"""Versions and settings every result carries (field lesson: a MuJoCo upgrade moves success rates)."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np


def gl_renderer() -> str:
    """The OpenGL renderer and version behind MuJoCo's offscreen contexts (best effort)."""
    try:
        import mujoco
        from OpenGL import GL

        ctx = mujoco.GLContext(16, 16)
        try:
            ctx.make_current()
            return f"{GL.glGetString(GL.GL_RENDERER).decode()}; OpenGL {GL.glGetString(GL.GL_VERSION).decode()}"
        finally:
            ctx.free()
    except Exception as exc:  # noqa: BLE001 - any backend failure is just recorded
        return f"unavailable ({type(exc).__name__}: {exc})"


def versions(renders: bool = False) -> dict[str, Any]:
    """egosim, MuJoCo, Gymnasium, numpy and Python versions, the platform, and the GL renderer.

    The renderer is queried only when the run renders (state-only runs need no GL at all).
    """
    import gymnasium
    import mujoco

    import egosim

    return {
        "egosim": egosim.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mujoco_gl": os.environ.get("MUJOCO_GL", "<unset>"),
        "renderer": gl_renderer() if renders else "not used (state observations, no video)",
    }
