"""Headless rendering: one offscreen renderer per env, created inside the process that uses it."""

from __future__ import annotations

import ctypes.util
import os

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.errors import RenderingUnavailableError

_APT_LINE = "apt-get install -y --no-install-recommends libegl1 libgl1-mesa-dri libopengl0 libosmesa6"


def _diagnose(exc: Exception) -> str:
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    libs = {"EGL": "libegl1", "OpenGL": "libopengl0", "OSMesa": "libosmesa6"}
    missing = [pkg for lib, pkg in libs.items() if ctypes.util.find_library(lib) is None]
    hint = f"missing system libraries: {', '.join(missing)}; install with: {_APT_LINE}" if missing else (
        "the libraries are present; try MUJOCO_GL=osmesa (set before Python starts), or run with obs_mode='state'"
    )
    return f"cannot start headless rendering with MUJOCO_GL={backend} ({type(exc).__name__}: {exc}); {hint}"


class CameraRenderer:
    """Renders named cameras of one model to uint8 RGB arrays of a fixed size.

    Shadows are off by default: in software rendering they cost ~10x (reference/toolchain.md).
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int, shadows: bool = False) -> None:
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:  # noqa: BLE001 - every backend failure reads differently
            raise RenderingUnavailableError(_diagnose(exc)) from exc
        self._shadows = shadows

    def render(self, data: mujoco.MjData, camera: int | str) -> NDArray[np.uint8]:
        self._renderer.update_scene(data, camera=camera)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self._shadows
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
