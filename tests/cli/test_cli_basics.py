"""The installed console script starts, documents itself and reports usage errors with an exit code."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("hmr-fit") or shutil.which("hmr-fit", path=str(__import__("pathlib").Path(sys.executable).parent))
    if exe is None:
        pytest.skip("hmr-fit console script not installed")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_help():
    result = run("--help")
    assert result.returncode == 0
    assert "usage: hmr-fit" in result.stdout and "--model" in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("hmr-fit ")


def test_no_input_is_a_usage_error():
    result = run()
    assert result.returncode == 2
    assert "hmr-fit: error:" in result.stderr
