"""A regular (non-editable) install runs the main job from any folder (stations ship as data)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_isolation() -> list[str]:
    """Build with this environment's setuptools when it meets pyproject's build requirement (the
    test extra brings one): pip's isolated build environment costs a download and install of
    setuptools on every run, and builds the same wheel."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return []
    return ["--no-build-isolation"] if major >= 68 else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without its dependencies) into a folder."""
    work = tmp_path_factory.mktemp("wheel")
    # From a clean copy of the sources: setuptools builds in the source folder, and a build/ left
    # there by an earlier build would carry files the project no longer has into the wheel.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs", "*.h5"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            *_build_isolation(), "-w", str(work), str(source)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-300:]}")
    wheel = next(work.glob("qlink_hil-*.whl"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    return target


def test_installed_package_carries_stations_profiles_and_type_marker(installed):
    for name in ("stations/twin.yaml", "stations/twin_profile_b.yaml", "sim_profiles/lab.yaml",
                 "hil/py.typed", "instruments/py.typed", "hil/dash/static/run.html",
                 "hil/dash/static/dash.js"):
        assert (installed / name).is_file(), name


def test_hil_run_chain_from_an_empty_folder_with_a_regular_install(installed, tmp_path):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = ("import sys, hil; assert hil.__file__.startswith(sys.argv[1]), hil.__file__; "
            "from hil.cli import main; sys.argv = ['hil', 'run', 'chain', '--out', 'chain.h5']; main()")
    done = subprocess.run([sys.executable, "-c", code, str(installed)], cwd=empty, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with h5py.File(empty / "chain.h5", "r", swmr=True) as f:
        assert f.attrs["status"] == "completed"
        assert "added_noise" in f
