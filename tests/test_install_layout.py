"""A non-editable install imports every part and finds every asset from the installed location.

Builds the project from a copy of the source tree with `pip install --no-deps --target`, then imports it
in a fresh interpreter whose path holds only that target and the dependencies' site-packages (no
editable finder, not the repo, a working directory elsewhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "outputs", "*.egg-info", "__pycache__", "*.pyc",
                                ".pytest_cache", ".whl", ".gl")

CHECK = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    target = Path(sys.argv[1]).resolve()
    import egosim, egosim.tasks, egosim.policies, egosim.eval, egosim.cli
    from egosim.embodiment import embodiment_names, get_embodiment
    from egosim.paths import asset_root
    import mujoco
    for mod in (egosim, egosim.tasks, egosim.policies, egosim.eval, egosim.cli):
        assert Path(mod.__file__).resolve().is_relative_to(target), (mod.__name__, mod.__file__)
    assert asset_root().resolve().is_relative_to(target), asset_root()
    for name in embodiment_names():
        emb = get_embodiment(name)
        for side in ("left", "right"):
            path = Path(emb.hand_xml(side)).resolve()
            assert path.is_relative_to(target), path
            mujoco.MjModel.from_xml_path(str(path))
    for task in egosim.tasks.task_names():
        for name in embodiment_names():
            env = egosim.tasks.make_env(task, name, obs_mode="state")
            env.reset(seed=0, options={"initial_state": 0})
    rc = egosim.cli.main(["eval", "policy=random", "episodes=1", "max_steps=2", "output_dir=out"])
    assert rc == 0 and len(json.loads(Path("out/summary.json").read_text())) == len(embodiment_names("robot"))
    print("ok")
    """
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(REPO, src, ignore=IGNORE)
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(src)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return target


def test_no_top_level_parts(installed: Path) -> None:
    top = {p.name for p in installed.iterdir() if not p.name.endswith((".dist-info", ".egg-info"))}
    for name in ("tasks", "policies", "eval", "assets", "tests", "benchmarks", "conf"):
        assert name not in top, f"a top-level {name!r} package landed in site-packages"
    assert "egosim" in top
    pkg = installed / "egosim"
    for part in ("tasks", "policies", "eval", "assets", "conf"):
        assert (pkg / part / "__init__.py").is_file(), f"egosim.{part} is not installed"
    assert (pkg / "conf" / "eval.yaml").is_file()
    for folder in (pkg / "assets").iterdir():
        if folder.is_dir() and any(folder.glob("*_hand.xml")):
            for f in ("scene.xml", "README.md", "LICENSE", "CHANGELOG.md"):
                assert (folder / f).is_file(), f"assets/{folder.name}/{f} is not installed"


def test_installed_package_imports_and_finds_assets(installed: Path, tmp_path: Path) -> None:
    deps = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), deps]), "PYTHONNOUSERSITE": "1",
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    # -S: no site processing, so the repo's editable-install finder (a .pth hook) is not loaded
    out = subprocess.run([sys.executable, "-S", "-c", CHECK, str(installed)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-3000:]
