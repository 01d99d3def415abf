"""Where talking-head keeps its data: $TALKING_HEAD_HOME, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root for datasets, trained subjects and caches (created on demand)."""
    env = os.environ.get("TALKING_HEAD_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("talking-head"))


def subjects_dir() -> Path:
    return home() / "subjects"


def datasets_dir() -> Path:
    return home() / "datasets"


def real_data_dir() -> Path:
    """Real recordings for measurements (never copied into the repo): $TALKING_HEAD_REAL_DATA,
    else ../shared/data/real beside the checkout. May be absent: callers skip."""
    env = os.environ.get("TALKING_HEAD_REAL_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
