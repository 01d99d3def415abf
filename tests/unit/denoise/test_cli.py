from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile as sf

from services.common.errors import InvalidInput
from services.denoise import cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    return p


def test_denoise_command_writes_same_rate_wav(tmp_path, speech16k):
    src = tmp_path / "in.wav"
    x = speech16k[:16000] + 0.02 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(src, x, 16000)
    args = _parser().parse_args(["denoise", str(src), "--out", str(tmp_path / "out.wav"), "--model", "spectral"])
    assert args.func(args) == 0
    y, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and y.shape == (16000,)


def test_denoise_command_rejects_undecodable_input(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    args = _parser().parse_args(["denoise", str(bad), "--out", str(tmp_path / "o.wav")])
    with pytest.raises(InvalidInput):
        args.func(args)


def test_unknown_model_is_refused_by_the_parser(tmp_path):
    with pytest.raises(SystemExit):
        _parser().parse_args(["denoise", "x.wav", "--out", "y.wav", "--model", "wiener"])
