"""Exporting a content-model checkpoint with the units of another model (the bundled one)."""

import json

import numpy as np
import pytest
import torch

from services.common.types import AudioClip
from services.encoder.content import ContentModel, tiny_ctc_config
from services.training.content_model import keep_units, main, new_model, save_checkpoint

TRAINED = ["<blank>", "<unk>", "a", "b", "r", "ɹ", "ʔ", "zh-", "-ang"]
KEPT = ["<blank>", "<unk>", "a", "b", "ɹ", "zh-", "-ang"]


def _tiny(vocab):
    from transformers import Wav2Vec2ForCTC

    torch.manual_seed(0)
    return Wav2Vec2ForCTC(tiny_ctc_config(len(vocab), hidden=16, layers=1, heads=2, conv_dim=(8,) * 7)).eval()


def test_kept_units_keep_their_logits_and_the_rest_are_gone():
    model = _tiny(TRAINED)
    x = torch.randn(1, 16_000)
    with torch.no_grad():
        before = model(x).logits[0]
        vocab = keep_units(model, TRAINED, KEPT)
        after = model(x).logits[0]
    assert vocab == KEPT and model.config.vocab_size == len(KEPT) and after.shape[1] == len(KEPT)
    torch.testing.assert_close(after, before[:, [TRAINED.index(u) for u in KEPT]])


@pytest.mark.parametrize("keep, message", [
    (["<blank>", "a", "θ"], "no unit θ"),
    (["a", "<blank>"], "must start with the blank"),
])
def test_a_vocabulary_the_checkpoint_cannot_give_is_refused(keep, message):
    with pytest.raises(SystemExit, match=message):
        keep_units(_tiny(TRAINED), TRAINED, keep)


def test_export_with_the_units_of_another_model_loads_at_that_width(tmp_path):
    cache, old = tmp_path / "cache", tmp_path / "old"
    model = new_model(len(TRAINED))
    save_checkpoint(cache / "run", model, torch.optim.AdamW(model.parameters()), {"step": 3, "seconds": 1.0, "log": []})
    (cache / "run" / "vocab.json").write_text(json.dumps(TRAINED, ensure_ascii=False))
    held = cache / "data" / "heldout"
    held.mkdir(parents=True)
    items = [{"text": "x", "voice": "v", "labels": ["a", "ʔ", "b"], "spans": []}]
    np.savez(held / "en_0000.npz", audio=np.zeros(16_000, np.int16), offsets=np.array([0, 16_000]),
             meta=np.array(json.dumps({"lang": "en", "items": items})))
    old.mkdir()
    (old / "vocab.json").write_text(json.dumps({u: i for i, u in enumerate(KEPT)}, ensure_ascii=False))

    assert main(["export", "--cache", str(cache), "--out", str(tmp_path / "new"), "--units-of", str(old)]) == 0
    loaded = ContentModel.load(tmp_path / "new")
    assert loaded.units == KEPT and loaded.dim == len(KEPT)
    speech = AudioClip(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16_000)
    assert loaded.frames(speech, "en").values.shape[1] == len(KEPT)
    assert json.loads((tmp_path / "new" / "metrics.json").read_text())["train_steps"] == 3

