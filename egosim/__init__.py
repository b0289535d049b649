"""egosim: a simulation-first benchmark for learning dexterous manipulation from human data."""

import os as _os

# MuJoCo picks its OpenGL backend when it is first imported; default to headless EGL (Mesa's
# software renderer on machines without a GPU) unless the user chose one.
_os.environ.setdefault("MUJOCO_GL", "egl")

from egosim.errors import EgosimError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["EgosimError", "__version__"]
