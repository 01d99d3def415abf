"""A tiny subject end to end: oracle dataset → joint training → bundle → `say` → mp4."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from services.common.subject_store import LocalSubjectStore
from services.common.video import probe_mp4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from services.subjects.synth import SynthConfig, synth
    from services.training.presets import preset
    from services.training.speech import bundled_voice
    from services.training.subject import train_subject

    root = tmp_path_factory.mktemp("tiny")
    ds = synth("tiny", SynthConfig(minutes=0.04, size=32, video=False), out=root / "ds", progress=False,
               speak=bundled_voice())
    recipe = preset("tiny")
    recipe = replace(recipe, name="tiny-test", train=replace(recipe.train, head_iters=60, lips_iters=4,
                                                             torso_iters=4, eval_every=10_000))
    bundle = train_subject(ds, "tiny", preset=recipe, workdir=root / "run", progress=False)
    store = LocalSubjectStore(root / "subjects", bundled=None)
    store.save(bundle)
    return root, store, bundle


def test_training_raises_psnr_and_writes_curve(tiny):
    root, _, bundle = tiny
    import json

    history = json.loads((root / "run" / "summary.json").read_text())["history"]
    head = [h["train_psnr"] for h in history if h["stage_index"] == 0]
    assert len(head) >= 2 and head[-1] > head[0] + 1.0, head
    assert (root / "run" / "training_curve.png").stat().st_size > 1000
    assert bundle.manifest["renderer"]["head"]["encoder"]["grid"]["kind"] == "torch-ngp"


def test_say_on_tiny_subject_gives_synced_mp4(tiny, tmp_path):
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.gateway.sinks import Mp4FileSink

    _, store, _ = tiny
    out = tmp_path / "a.mp4"
    res = Pipeline(subjects=store).run(SpeakRequest(text="Hi there. Thanks!", subject="tiny"), Mp4FileSink(out))
    info = probe_mp4(out)
    assert info.n_frames == res.frames and info.fps == pytest.approx(25)
    assert (info.width, info.height) == (32, 32)
    assert abs(info.audio_seconds - info.video_seconds) <= 1 / 25
    assert res.sentences == 2 and res.times.render > 0


def test_streaming_chunks_form_one_mp4(tiny):
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.gateway.sinks import FragmentedMp4Sink

    _, store, _ = tiny
    chunks = []
    res = Pipeline(subjects=store).run(SpeakRequest(text="Good morning.", subject="tiny", frames_per_chunk=5),
                                       FragmentedMp4Sink(chunks.append))
    assert chunks[0].is_init and chunks[-1].is_last and len(chunks) >= 3
    info = probe_mp4(b"".join(c.data for c in chunks))
    assert info.n_frames == res.frames
    assert abs(info.audio_seconds - info.video_seconds) <= 1 / 25


def test_unknown_subject_and_empty_text(tiny):
    from services.common.errors import InvalidInput, NotFound
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.gateway.sinks import FragmentedMp4Sink

    _, store, _ = tiny
    with pytest.raises(NotFound):
        Pipeline(subjects=store).run(SpeakRequest(text="hi", subject="nobody"), FragmentedMp4Sink(lambda c: None))
    with pytest.raises(InvalidInput):
        Pipeline(subjects=store).run(SpeakRequest(text="  ", subject="tiny"), FragmentedMp4Sink(lambda c: None))


def test_rendered_frames_are_deterministic(tiny):
    from services.renderer.service import SubjectRenderer

    _, store, bundle = tiny
    r = SubjectRenderer(store.load("tiny"))
    codes = np.zeros((3, 64), np.float32)
    poses, blinks = r.conditions(3, static_pose=True)
    a = np.concatenate(list(r.render(codes, poses, blinks)))
    b = np.concatenate(list(r.render(codes, poses, blinks)))
    assert a.shape == (3, 32, 32, 3) and np.array_equal(a, b)


def test_csfm_subject_trains_on_content_features_and_speaks(tiny, tmp_path):
    """The full encoder: content posteriors of the bundled model at training and at inference."""
    from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.gateway.sinks import Mp4FileSink
    from services.training.presets import preset
    from services.training.subject import train_subject

    root, _, _ = tiny
    recipe = preset("tiny")
    recipe = replace(recipe, name="tiny-csfm", train=replace(recipe.train, head_iters=6, lips_iters=2, torso_iters=2,
                                                             audio_pretrain_steps=4, eval_every=10_000))
    bundle = train_subject(root / "ds", "tiny-csfm", preset=recipe, progress=False, encoder="csfm")
    cfg = bundle.manifest["audio_encoder"]["config"]
    assert cfg["variant"] == "csfm" and cfg["content_dim"] == ContentModel.load(DEFAULT_CONTENT_MODEL).dim
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    store.save(bundle)
    res = Pipeline(subjects=store).run(SpeakRequest(text="好的，谢谢。", subject="tiny-csfm", lang="zh"),
                                       Mp4FileSink(tmp_path / "zh.mp4"))
    assert probe_mp4(tmp_path / "zh.mp4").n_frames == res.frames > 10


def test_a_content_encoder_starts_from_the_mouth_prior_unless_told_not_to(tiny):
    """The cpu recipe's content encoder (phones) fits the bundled prior; the warm-up is then
    short and the encoder's rate in the NeRF stages low."""
    from services.training.mouth_prior import FINE_TUNE_LR_AUDIO, WARMUP_STEPS
    from services.training.presets import preset
    from services.training.subject import train_subject

    root, _, _ = tiny
    recipe = preset("tiny")
    recipe = replace(recipe, name="tiny-prior", train=replace(recipe.train, head_iters=2, lips_iters=2, torso_iters=2,
                                                              audio_pretrain_steps=WARMUP_STEPS + 100,
                                                              eval_every=10_000))
    short = replace(recipe, train=replace(recipe.train, audio_pretrain_steps=4))
    with_prior = train_subject(root / "ds", "p", preset=recipe, progress=False, encoder="content",
                               content_space="phones")
    without = train_subject(root / "ds", "s", preset=short, progress=False, encoder="content",
                            content_space="phones", prior=False)
    assert with_prior.manifest["training"]["audio_init"].startswith("mouth_prior ")
    assert without.manifest["training"]["audio_init"] == "scratch"
    assert with_prior.manifest["training"]["audio_warmup_steps"] == WARMUP_STEPS
    assert without.manifest["training"]["audio_warmup_steps"] == 4
    assert with_prior.manifest["training"]["audio_lr"] == FINE_TUNE_LR_AUDIO < recipe.train.lr_audio
    assert without.manifest["training"]["audio_lr"] == recipe.train.lr_audio


def test_unknown_encoder_variant_is_one_clear_error(tiny):
    from services.common.errors import InvalidInput
    from services.training.subject import train_subject

    root, _, _ = tiny
    with pytest.raises(InvalidInput, match="unknown encoder variant 'lstm'"):
        train_subject(root / "ds", "x", preset="tiny", progress=False, encoder="lstm")
