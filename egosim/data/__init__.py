"""Datasets: the LeRobot v3.0 format with GR00T's modality file (writer, reader, schema check) for robot
and human data, robot demo collection and the EgoDex import (DESIGN.md "Data").

Core only: nothing here imports `egosim.tasks`, `egosim.policies` or `egosim.eval`; collection takes
env and policy factories, which the CLI supplies. Submodules import pyarrow/av/torch lazily.
"""

from egosim.data.format import CODEBASE_VERSION, DatasetError

__all__ = ["CODEBASE_VERSION", "DatasetError"]
