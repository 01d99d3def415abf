"""Content path: a transformers CTC / wav2vec2 / HuBERT checkpoint from a local directory
→ 50 Hz phonetic posteriors (or hidden states).

- Only local directories are accepted (``local_files_only``): never a hub id.
- A wav2vec2 CTC checkpoint in safetensors (the bundled model) is read by
  services.encoder.wav2vec2 without importing transformers (~2 s per process); other
  models go through transformers.
- Frame t is centred on t·20 ms: the waveform is padded by half the receptive field on
  both sides, so a clip of n samples gives floor(n / 320) + 1 frames.
- CTC models give posteriors. A character-level Mandarin vocabulary is reduced to pinyin
  units (services.encoder.pinyin) automatically. A phone vocabulary that holds both
  English phones and pinyin units (the bundled model) is restricted to the language of
  the input when `lang` is given (Mandarin input → blank + pinyin units).
- Other models (HuBERT, wav2vec2 without a CTC head) give hidden states of one layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.common.errors import InvalidInput, NotFound, RateMismatch
from services.common.types import ANALYSIS_SAMPLE_RATE, CONTENT_FPS, AudioClip
from services.encoder import wav2vec2
from services.encoder.features import ContentFrames
from services.encoder.phone_space import SPACES, PhoneSpace
from services.encoder.pinyin import PinyinReducer, is_character_vocab
from services.encoder.units import language_units

#: The bundled content model (trained by services.training.content_model).
DEFAULT_CONTENT_MODEL = Path(__file__).parent / "weights" / "content_ctc"


def tiny_ctc_config(vocab_size: int, hidden: int = 192, layers: int = 3, heads: int = 4,
                    conv_dim: tuple[int, ...] = (32, 32, 32, 64, 64, 64, 64)):
    """A small Wav2Vec2ForCTC: 7-layer conv front end (total stride 320 → 50 Hz) + transformer.

    The narrow early conv layers and GroupNorm-on-the-first-layer-only ("group") keep the
    high-rate front end cheap on a CPU; the transformer is pre-LN ("stable layer norm").
    """
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 3, conv_dim=conv_dim,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16,
        feat_extract_norm="group", do_stable_layer_norm=True, feat_proj_dropout=0.0,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.05, final_dropout=0.1,
        layerdrop=0.0, mask_time_prob=0.05, mask_time_length=5, ctc_loss_reduction="mean",
        pad_token_id=0, ctc_zero_infinity=True)


def _load_native(path: Path) -> tuple[torch.nn.Module | None, Any]:
    """(model, its spec) through services.encoder.wav2vec2 when that module reproduces the
    checkpoint (a wav2vec2 CTC in safetensors with a vocab); else (None, None)."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    weights = path / "model.safetensors"
    if not (wav2vec2.supports(config) and weights.is_file() and (path / "vocab.json").is_file()):
        return None, None
    from safetensors.torch import load_file

    model = wav2vec2.load_wav2vec2_ctc(config, load_file(weights))
    return (model, model.config) if model is not None else (None, None)


def receptive_field(config) -> tuple[int, int]:
    """(receptive field, total stride) of a wav2vec2-family conv feature encoder, in samples."""
    rf, jump = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride):
        rf += (k - 1) * jump
        jump *= s
    return rf, jump


def load_vocab(path: Path) -> list[str]:
    """vocab.json ({token: id}) → tokens in id order."""
    data = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    if data and all(isinstance(v, dict) for v in data.values()):  # {lang: {token: id}}
        data = next(iter(data.values()))
    vocab = [""] * (max(data.values()) + 1)
    for tok, i in data.items():
        vocab[i] = tok
    return vocab


class ContentModel:
    """A loaded content model; thread-compatible for inference (no state between calls)."""

    def __init__(self, model: torch.nn.Module, config, vocab: list[str] | None, normalize: bool,
                 hidden_layer: int = -1, name: str = "") -> None:
        self.model = model.eval()
        self.config = config
        self.vocab = vocab
        self.normalize = normalize
        self.hidden_layer = hidden_layer
        self.name = name
        self.rf, self.stride = receptive_field(config)
        if ANALYSIS_SAMPLE_RATE / self.stride != CONTENT_FPS:
            raise RateMismatch(f"content model {name!r} makes {ANALYSIS_SAMPLE_RATE / self.stride:g} frames/s, "
                               f"the encoder needs {CONTENT_FPS}")
        self.is_ctc = vocab is not None
        self.reducer = PinyinReducer(vocab, blank_id=getattr(config, "pad_token_id", 0) or 0) \
            if self.is_ctc and is_character_vocab(vocab) else None
        self._phone_space: PhoneSpace | None = None

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CONTENT_MODEL, hidden_layer: int = -1) -> ContentModel:
        path = Path(path)
        if not path.is_dir() or not (path / "config.json").is_file():
            raise NotFound(f"content model directory not found (need a local dir with config.json): {path}")
        model, config = _load_native(path)
        is_ctc = model is not None
        if model is None:
            from transformers import AutoConfig, AutoModel, AutoModelForCTC
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the CLI's output
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            archs = config.architectures or []
            is_ctc = any(a.endswith("ForCTC") for a in archs) and (path / "vocab.json").is_file()
            loader = AutoModelForCTC if is_ctc else AutoModel
            model = loader.from_pretrained(path, local_files_only=True, use_safetensors=None)
        normalize = True
        prep = path / "preprocessor_config.json"
        if prep.is_file():
            normalize = bool(json.loads(prep.read_text()).get("do_normalize", True))
        vocab = load_vocab(path) if is_ctc else None
        return cls(model, config, vocab, normalize, hidden_layer, name=path.name)

    @property
    def units(self) -> list[str]:
        if self.reducer is not None:
            return self.reducer.units
        return list(self.vocab) if self.vocab is not None else []

    @property
    def dim(self) -> int:
        return len(self.units) if self.is_ctc else int(self.config.hidden_size)

    def prepare(self, samples: np.ndarray) -> torch.Tensor:
        """Normalise (as the feature extractor would) and pad half a receptive field each side."""
        x = samples.astype(np.float32)
        if self.normalize:
            x = (x - x.mean()) / math.sqrt(x.var() + 1e-7)
        pad = self.rf // 2
        return torch.from_numpy(np.pad(x, (pad, self.rf - pad)))

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.stride + 1

    def language_mask(self, lang: str | None) -> list[int] | None:
        """Token ids allowed for `lang` in a mixed English-phone / pinyin-unit vocabulary."""
        if lang is None or self.vocab is None or self.reducer is not None:
            return None
        ids = language_units(self.vocab, lang)
        return ids if 1 < len(ids) < len(self.vocab) else None

    @torch.no_grad()
    def logits(self, clip: AudioClip) -> torch.Tensor:
        clip.require_rate(ANALYSIS_SAMPLE_RATE, "content model")
        if clip.samples.size == 0:
            raise InvalidInput("audio has no samples")
        out = self.model(self.prepare(clip.samples)[None], output_hidden_states=not self.is_ctc)
        if self.is_ctc:
            return out.logits[0]
        return out.hidden_states[self.hidden_layer][0]

    def phone_space(self) -> PhoneSpace:
        """The shared phone space of this model's units (CTC models only)."""
        if not self.is_ctc:
            raise InvalidInput(f"content model {self.name!r} gives hidden states: no phone space")
        if self._phone_space is None:
            self._phone_space = PhoneSpace(self.units)
        return self._phone_space

    def dim_for(self, space: str = "units") -> int:
        """Columns of `frames(..., space=space)`."""
        return self.phone_space().dim if space == "phones" else self.dim

    def frames(self, clip: AudioClip, lang: str | None = None, space: str = "units") -> ContentFrames:
        """[T, C] at 50 Hz: posteriors (pinyin-reduced / language-restricted) or hidden states;
        with space="phones", posteriors over the shared phone columns (services.encoder.phone_space)."""
        if space not in SPACES:
            raise InvalidInput(f"unknown content space {space!r}; choose one of {', '.join(SPACES)}")
        raw = self.logits(clip)
        t = self.n_frames(len(clip.samples))
        raw = raw[:t]
        if raw.shape[0] < t:  # conv edge effects: repeat the last frame
            raw = torch.cat([raw, raw[-1:].expand(t - raw.shape[0], -1)])
        if not self.is_ctc:
            return ContentFrames(raw.float().numpy(), CONTENT_FPS, (), "hidden")
        allowed = self.language_mask(lang)
        if allowed is not None:
            masked = torch.full_like(raw, float("-inf"))
            masked[:, allowed] = raw[:, allowed]
            raw = masked
        post = torch.softmax(raw.float(), dim=-1).numpy()
        if self.reducer is not None:
            post = self.reducer(post)
        if space == "phones":
            ps = self.phone_space()
            return ContentFrames(ps(post), CONTENT_FPS, tuple(ps.columns), "posteriors")
        return ContentFrames(post.astype(np.float32), CONTENT_FPS, tuple(self.units), "posteriors")

    def frames_long(self, clip: AudioClip, segments: Sequence[tuple[float, float, str | None]] = (),
                    chunk_seconds: float = 10.0, space: str = "units") -> ContentFrames:
        """Content frames for a long recording (a training dataset's whole audio track).

        Each (start, end, lang) segment — e.g. one TTS sentence — is run on its own, as
        the pipeline runs one sentence at a time at inference; audio outside every segment
        goes in `chunk_seconds` pieces with no language. Attention cost stays bounded.
        """
        n = len(clip.samples)
        total = self.n_frames(n)
        pieces: list[tuple[int, int, str | None]] = []
        cursor = 0
        bounds = sorted((max(0, int(round(a * clip.sample_rate))), min(n, int(round(b * clip.sample_rate))), lang)
                        for a, b, lang in segments)
        step = max(self.stride, int(chunk_seconds * clip.sample_rate))
        for start, end, lang in [*bounds, (n, n, None)]:
            while cursor < start:  # uncovered audio before this segment
                pieces.append((cursor, min(start, cursor + step), None))
                cursor = pieces[-1][1]
            if end > max(start, cursor):
                pieces.append((max(start, cursor), end, lang))
                cursor = end
        out: np.ndarray | None = None
        meta: ContentFrames | None = None
        written = np.zeros(total, dtype=bool)
        for start, end, lang in pieces:
            if end - start < self.stride:
                continue
            meta = self.frames(AudioClip(clip.samples[start:end], clip.sample_rate), lang, space)
            if out is None:
                out = np.zeros((total, meta.values.shape[1]), dtype=np.float32)
            first = start // self.stride
            take = min(len(meta.values), total - first)
            out[first:first + take] = meta.values[:take]
            written[first:first + take] = True
        if out is None or meta is None:
            return self.frames(clip, space=space)
        for t in np.flatnonzero(~written):  # slivers shorter than a frame: repeat a neighbour
            out[t] = out[t - 1] if t > 0 else out[np.argmax(written)]
        return ContentFrames(out, CONTENT_FPS, meta.units, meta.kind)
