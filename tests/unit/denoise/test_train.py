"""The denoiser trainer end to end on a tiny speech cache: it trains, exports, resumes and
fine-tunes from given weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.denoise import train
from services.denoise.checkpoint import load_model


def _cache(root: Path) -> Path:
    """Three voiced 'utterances' (harmonic stacks with a syllable envelope) in the cache layout."""
    sr, t = 16000, np.arange(16000) / 16000
    utts = []
    for f0 in (110.0, 160.0, 220.0):
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
        wave *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
        utts.append(np.round(wave / np.abs(wave).max() * 0.8 * 32767).astype(np.int16))
    d = root / "train"
    d.mkdir(parents=True)
    np.save(d / "speech.npy", np.concatenate(utts))
    index = [{"start": i * sr, "length": sr, "text": f"u{i}", "lang": "en"} for i in range(3)]
    (d / "index.json").write_text(json.dumps({"sample_rate": sr, "utterances": index}))
    return root


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--size", "small", "--cache", str(tmp_path / "cache"), "--run", str(tmp_path / "run"),
            "--export", str(tmp_path / "export"), "--batch", "1", "--seconds", "0.25",
            "--save-every", "1", "--warmup", "1", "--val-mixtures", "1", *extra]


def test_trains_exports_and_resumes(tmp_path: Path) -> None:
    _cache(tmp_path / "cache")
    assert train.main(_args(tmp_path, "--steps", "2")) == 0
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 2 and len(state["history"]["val_loss"]) == 2
    assert (tmp_path / "run" / "curves.png").exists()
    exported = load_model(tmp_path / "export" / "zipenhancer-small")  # the best so far
    assert exported.cfg == train.SMALL
    assert train.main(_args(tmp_path, "--steps", "3")) == 0  # same command: continues
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 3


def test_init_starts_from_given_weights_and_checks_the_size(tmp_path: Path) -> None:
    _cache(tmp_path / "cache")
    assert train.main(_args(tmp_path, "--steps", "1")) == 0
    stem = tmp_path / "run" / "model"
    with pytest.raises(SystemExit, match="does not fit --size paper: configs differ"):
        train.main([*_args(tmp_path, "--steps", "1", "--init", str(stem)), "--size", "paper",
                    "--run", str(tmp_path / "run-paper")])
    args = _args(tmp_path, "--steps", "1", "--save-every", "5", "--lr", "0")
    args[args.index("--run") + 1] = str(tmp_path / "run-ft")
    assert train.main([*args, "--init", str(stem)]) == 0  # lr 0: the weights stay the initial ones
    a, b = load_model(stem).state_dict(), load_model(tmp_path / "run-ft" / "model").state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    args[args.index("--run") + 1] = str(tmp_path / "run-grown")
    assert train.main([*args, "--init", str(stem), "--stacks", "2,4,2"]) == 0
    assert load_model(tmp_path / "run-grown" / "model").cfg.stacks == (2, 4, 2)
    with pytest.raises(SystemExit, match="not a subsequence"):
        train.main([*args, "--init", str(stem), "--stacks", "4,2", "--run", str(tmp_path / "x")])


def test_only_new_trains_just_what_was_added(tmp_path: Path) -> None:
    _cache(tmp_path / "cache")
    assert train.main(_args(tmp_path, "--steps", "1")) == 0
    stem = tmp_path / "run" / "model"
    args = _args(tmp_path, "--steps", "2", "--lr", "1e-2", "--init", str(stem), "--stacks", "2,4,2")
    args[args.index("--run") + 1] = str(tmp_path / "run-new")
    with pytest.raises(SystemExit, match="needs --init"):
        train.main([a for a in args if a != str(stem) and a != "--init"] + ["--only-new"])
    assert train.main([*args, "--only-new"]) == 0
    before, after = load_model(stem), load_model(tmp_path / "run-new" / "model")
    a, b = before.state_dict(), after.state_dict()
    moved = {k for k in b if not k.startswith("stacks.1.")
             and not np.array_equal(a[k.replace("stacks.2.", "stacks.1.")].numpy(), b[k].numpy())}
    assert not moved  # everything the weights already had is frozen
    assert after.stacks[1].bypass.scale.ne(0.1).any()  # the new stack learned

    args = _args(tmp_path, "--steps", "2", "--lr", "1e-2", "--init", str(stem), "--refine", "2", "--only-new")
    args[args.index("--run") + 1] = str(tmp_path / "run-refine")
    assert train.main(args) == 0
    a, b = before.state_dict(), load_model(tmp_path / "run-refine" / "model").state_dict()
    moved = {k for k in b if k not in a or not np.array_equal(a[k].numpy(), b[k].numpy())}
    assert moved and all(".refine.1." in k for k in moved)  # only the added (second) block moved


def test_device_choice(tmp_path: Path) -> None:
    import torch

    assert train._device("cpu") == torch.device("cpu")
    assert train._device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        _cache(tmp_path / "cache")
        with pytest.raises(SystemExit, match="no CUDA device"):
            train.main(_args(tmp_path, "--steps", "1", "--device", "cuda"))
        assert not (tmp_path / "run" / "state.json").exists()  # refused before any work


def test_paper_size_takes_a_training_step(tmp_path: Path) -> None:
    """The GPU job (`--size paper`) runs end to end here too, one short step on the CPU."""
    _cache(tmp_path / "cache")
    assert train.main([*_args(tmp_path, "--steps", "1"), "--size", "paper"]) == 0
    assert load_model(tmp_path / "export" / "zipenhancer").cfg == train.PAPER
