"""Shared fixtures: one TTS service per session (loading the voice takes a second or two)."""

from __future__ import annotations

import pytest
import torch

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
