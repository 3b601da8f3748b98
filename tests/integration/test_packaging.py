"""The wheel ships the package with the built-in workflows and themes, ``py.typed`` (users type
their workflows against the API) and the MIT LICENSE."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_builtin_workflows_and_themes(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("loopcraft-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "loopcraft/cli.py" in names
    assert "loopcraft/py.typed" in names
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license_name).startswith(b"MIT License")
    assert any(n.startswith("loopcraft/_builtin/workflows/") and n.endswith(".py") for n in names)
    assert any(n.startswith("loopcraft/_builtin/themes/") and n.endswith(".toml") for n in names)

    # Install it on its own (deps come from this interpreter's environment) and check that
    # the installed package finds its built-ins inside itself, not in the source tree.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import loopcraft, loopcraft.paths as p; "
        "print(loopcraft.__file__); print(p.builtin_dir('workflows')); print(p.builtin_dir('themes')); "
        "import importlib.resources as r; print(r.files('loopcraft').joinpath('py.typed').is_file())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    pkg, workflows, themes, typed = out.stdout.split()
    assert typed == "True"
    assert pkg.startswith(str(target))
    assert Path(workflows).is_dir() and any(Path(workflows).glob("*.py"))
    assert Path(themes).is_dir() and any(Path(themes).glob("*.toml"))
