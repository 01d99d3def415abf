"""Shared fixtures: one TTS service per session (loading the voice takes a second or two)."""

from __future__ import annotations

import os

import pytest
import torch

# The renderer's on-disk pose cache stays off unless a test turns it on: tests must not
# write into the user's cache directory, nor depend on what an earlier run left there.
os.environ.setdefault("TALKING_HEAD_POSE_CACHE", "off")
os.environ.setdefault("TALKING_HEAD_VOICE_CACHE", "off")  # likewise the TTS voice's patched copy

# Tests use tiny tensors: one intra-op thread avoids OpenMP spin-waiting, which makes
# small convolutions many times slower whenever another process shares the cores.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tts():
    from services.tts.service import TtsService

    return TtsService()
