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


def cache_dir() -> Path:
    """What can be rebuilt from the rest (e.g. the renderer's cached pose frames)."""
    return home() / "cache"


def real_media_dir() -> Path:
    """Real videos, photos and speech for development, tests and benchmarks:
    $TALKING_HEAD_REAL_MEDIA, else `../shared/data/real` beside the source checkout. It may
    be absent (its media are never part of the repository); callers skip without it."""
    env = os.environ.get("TALKING_HEAD_REAL_MEDIA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
