"""Tiny real content models saved to local directories (random init, a few KB)."""

import json

import pytest
import torch

from services.encoder.content import tiny_ctc_config

PHONES = ["<blank>", "<unk>", "a", "b", "ɹ", "zh-", "-ang", "-i"]


def save_tiny_ctc(path, vocab, **overrides):
    from transformers import Wav2Vec2ForCTC

    cfg = tiny_ctc_config(len(vocab), hidden=16, layers=1, heads=2, conv_dim=(8,) * 7)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.architectures = ["Wav2Vec2ForCTC"]
    torch.manual_seed(0)
    Wav2Vec2ForCTC(cfg).save_pretrained(path, safe_serialization=True)
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    return path


@pytest.fixture(scope="session")
def tiny_ctc_dir(tmp_path_factory):
    return save_tiny_ctc(tmp_path_factory.mktemp("tiny_ctc"), PHONES)


@pytest.fixture(scope="session")
def make_tiny_ctc():
    """save_tiny_ctc as a fixture: make_tiny_ctc(path, vocab, **config_overrides) -> path."""
    return save_tiny_ctc
