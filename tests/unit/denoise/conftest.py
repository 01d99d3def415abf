"""A tiny random-init ZipEnhancer saved as service weights, and a short speech clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from services.denoise.checkpoint import save_model
from services.denoise.zipenhancer import ZipEnhancer, ZipEnhancerConfig

TINY = ZipEnhancerConfig(channels=8, heads=2, ff=16, kernel=3, stacks=(1, 2), dense_depth=1,
                         attn_window=8)


@pytest.fixture(autouse=True)
def one_thread():
    """Intra-op threads spin badly when the cores are shared; these models are small."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_cfg() -> ZipEnhancerConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A weights dir where 'zipenhancer-small' is a tiny random-init model."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    model = ZipEnhancer(TINY)
    for head in (model.mag_decoder.head[-1], model.pha_decoder.real, model.pha_decoder.imag):
        torch.nn.init.normal_(head.weight, std=0.3)  # leave the identity init: a model that acts
    save_model(d / "zipenhancer-small", model)
    return d


@pytest.fixture(scope="session")
def speech16k() -> np.ndarray:
    """3 s of real TTS speech at 16 kHz."""
    from services.common.audio import resample
    from services.tts.service import TtsService

    s = TtsService().synthesize("The old captain found a yellow umbrella this morning.", "en")
    x = resample(s.audio.samples, s.audio.sample_rate, 16000)
    return (x / np.abs(x).max() * 0.5).astype(np.float32)
