"""The plain-PyTorch wav2vec2 CTC gives transformers' logits bit for bit, and loading the
bundled content model imports no transformers."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
from services.encoder.wav2vec2 import Wav2Vec2Ctc

PHONES = ["<blank>", "<unk>", "a", "b", "ɹ", "zh-", "-ang", "-i"]


def _same_logits(path, seconds=(0.3, 1.37)):
    from transformers import AutoModelForCTC

    ours = ContentModel.load(path)
    assert isinstance(ours.model, Wav2Vec2Ctc)
    theirs = AutoModelForCTC.from_pretrained(path, local_files_only=True).eval()
    rng = np.random.default_rng(1)
    for s in seconds:
        x = ours.prepare((0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32))[None]
        with torch.no_grad():
            a, b = ours.model(x).logits, theirs(x).logits
        assert torch.equal(a, b)


@pytest.mark.parametrize("overrides", [{}, {"feat_extract_norm": "layer", "do_stable_layer_norm": False},
                                       {"num_conv_pos_embeddings": 15}])
def test_tiny_ctc_logits_match_transformers(tmp_path, make_tiny_ctc, overrides):
    _same_logits(make_tiny_ctc(tmp_path, PHONES, **overrides))


def test_bundled_content_model_matches_transformers():
    _same_logits(DEFAULT_CONTENT_MODEL, seconds=(2.0,))


def test_other_layouts_stay_with_transformers(tmp_path, make_tiny_ctc):
    path = make_tiny_ctc(tmp_path, PHONES, hidden_act="relu")
    assert not isinstance(ContentModel.load(path).model, Wav2Vec2Ctc)


def test_loading_the_bundled_model_imports_no_transformers():
    code = ("import sys; from services.encoder.content import ContentModel; ContentModel.load(); "
            "print(sorted(m for m in ('transformers', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
