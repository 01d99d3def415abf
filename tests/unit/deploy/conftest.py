"""Fixtures for tests/unit/deploy; helpers live in k8s_checks.py (tests import it by path:
the test tree is not a package and pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_checks():
    key = "_talking_head_deploy_k8s_checks"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name("k8s_checks.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]


checks = _load_checks()
rendered = checks.rendered
crd_validators = checks.crd_validators
