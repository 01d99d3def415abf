"""espeak-ng formant speech (Debian's `espeak-ng`, read through libespeak-ng with ctypes).

A deliberately different source from the neural Piper voice: formant synthesis, many
voice variants (female `+f1`..`+f5`, `+Annie`, male `+m1`..`+m7`, Klatt...), Mandarin
with voiced tones. English is espeak's `en-us` (the same phonemiser Piper uses, so the
IPA labels share one inventory); Mandarin goes through the project's pinyin front end and
is spoken by `cmn-latn-pinyin`, one syllable per word, so every syllable is timed.

Timings are the synthesiser's own: with phoneme events on, libespeak-ng reports the
sample at which each phoneme starts (`espeak_EVENT.sample`) and the input character it
came from (`text_position`), so phonemes and syllables tile the audio exactly with no
alignment step. The library keeps global state: one lock serialises every call. That
state (pitch flutter, noise, buffer phase) carries from one call to the next, so the same
sentence comes out with the same phonemes but not the same samples twice in a process;
a fresh process making the same calls makes the same audio.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from services.common.errors import InvalidInput, NotFound
from services.common.pinyin_phones import PinyinSyllable
from services.common.types import AudioClip, PhonemeTiming, Speech, SynthesisOptions
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.timings import SILENCE, symbols_to_timings

#: espeak's voice per language; a variant is appended as "+name".
LANGUAGE_VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin"}
#: espeak's default speaking rate (words per minute); length_scale divides it.
DEFAULT_RATE = 175

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA, _INIT_DONT_EXIT = 0x0001, 0x0002, 0x8000
_EVENT_PHONEME = 7
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_PAUSE = "_"  # a boundary symbol for symbols_to_timings: becomes "sil"
_PAUSE_MARKS = {",", ";", ":", ".", "!", "?"}


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def espeak_available() -> bool:
    """Is libespeak-ng (Debian: espeak-ng / libespeak-ng1) installed?"""
    return ctypes.util.find_library("espeak-ng") is not None


@dataclass(frozen=True)
class _Phone:
    """A phoneme event: its IPA ("" = pause), first sample, and source character (1-based)."""

    ipa: str
    sample: int
    text_position: int


class _Library:
    """libespeak-ng in synchronous mode, collecting audio and phoneme events per call."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng")
        if name is None:
            raise NotFound("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        self._lib = ctypes.CDLL(name)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                           ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = int(self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT))
        if self.sample_rate <= 0:
            raise NotFound("libespeak-ng failed to initialise (is espeak-ng-data installed?)")
        self._chunks: list[np.ndarray] = []
        self._phones: list[_Phone] = []
        self._callback = _CALLBACK(self._collect)  # kept alive as long as the library
        self._lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._phones.append(_Phone(bytes(e.id).split(b"\0")[0].decode("utf-8", "replace"),
                                           int(e.sample), int(e.text_position)))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
              ) -> tuple[np.ndarray, list[_Phone]]:
        """int16 samples and phoneme events of `text` (call with `lock` held)."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise NotFound(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._phones = [], []
        data = text.encode("utf-8") + b"\0"
        if self._lib.espeak_Synth(data, len(data), 0, 1, 0, _CHARS_UTF8, None, None) != 0:
            raise InvalidInput(f"espeak-ng could not speak {text!r}")
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._phones


@lru_cache(maxsize=1)
def _library() -> _Library:
    return _Library()


class EspeakBackend:
    """One espeak-ng voice variant at a fixed pitch (0-100, espeak's default 50) and pitch
    range (0-100); `SynthesisOptions.length_scale` slows the speaking rate, the noise scales
    (Piper's) do not apply. Thread-safe."""

    name = "espeak"
    languages = ("en", "zh")

    def __init__(self, variant: str = "", pitch: int = 50, pitch_range: int = 50) -> None:
        self._lib = _library()
        self.sample_rate = self._lib.sample_rate
        self.variant, self.pitch, self.pitch_range = variant, int(pitch), int(pitch_range)

    def voice(self, lang: str) -> str:
        if lang not in LANGUAGE_VOICES:
            raise InvalidInput(f"the espeak backend cannot speak {lang!r}")
        return LANGUAGE_VOICES[lang] + (f"+{self.variant}" if self.variant else "")

    def synthesize_sentence(self, sentence: str, lang: str, options: SynthesisOptions) -> Speech:
        voice = self.voice(lang)
        rate = int(round(DEFAULT_RATE / (options.length_scale or 1.0)))
        if lang == "zh":
            units = text_to_syllables(sentence)
            if not any(isinstance(u, PinyinSyllable) for u in units):
                raise InvalidInput(f"no Mandarin syllables in {sentence!r}: zh needs hanzi or pinyin")
            text, owners = _pinyin_text(units)
        else:
            text, owners = sentence, {}
        with self._lib.lock:
            pcm, phones = self._lib.synth(text, voice, rate, self.pitch, self.pitch_range)
        if len(pcm) == 0 or not any(_is_sound(p) for p in phones):
            raise InvalidInput(f"nothing to say in {sentence!r}")
        audio = (pcm.astype(np.float32) / 32768.0)
        bounds = _segment_bounds(phones, len(pcm))
        phonemes = _phoneme_timings(phones, bounds, self.sample_rate)
        syllables = _syllable_timings(phones, bounds, owners, self.sample_rate) if lang == "zh" else []
        return Speech(audio=AudioClip(audio, self.sample_rate), phonemes=phonemes, text=sentence, lang=lang,
                      voice=f"espeak-{voice}", syllables=syllables)

    def phonemize(self, sentence: str, lang: str) -> list[str]:
        """The IPA symbols espeak speaks for one sentence (synthesises it: espeak's events
        are the only record of its phonemes)."""
        return [t.phoneme for t in self.synthesize_sentence(sentence, lang, SynthesisOptions()).phonemes
                if t.phoneme != SILENCE]


def _pinyin_text(units: list[PinyinSyllable | str]) -> tuple[str, dict[int, tuple[int, str]]]:
    """The pinyin espeak reads ("ni3 hao3 , wo3") and, for each syllable's first character
    (1-based, as espeak counts), its index and pinyin."""
    words: list[str] = []
    owners: dict[int, tuple[int, str]] = {}
    pos = 1
    for k, u in enumerate(units):
        word = u.pinyin if isinstance(u, PinyinSyllable) else (u if u in _PAUSE_MARKS else ",")
        if isinstance(u, PinyinSyllable):
            owners[pos] = (k, u.pinyin)
        words.append(word)
        pos += len(word) + 1
    return " ".join(words), owners


def _segment_bounds(phones: list[_Phone], n: int) -> list[tuple[int, int]]:
    """[start, end) samples of each event: it lasts until the next event starts (the last
    until the end), clipped into [0, n]. espeak sometimes reports a phoneme at the same
    sample as the next one ("eɪ l z": the l inside the glide); such a run shares the span
    of the sound before it evenly, so no spoken phoneme is lost from the labels."""
    starts = np.maximum.accumulate(np.clip([p.sample for p in phones], 0, n)).tolist()
    bounds = list(zip(starts, starts[1:] + [n]))
    i = 0
    while i < len(phones):
        j = i + 1
        while j < len(phones) and bounds[j][0] == bounds[j][1] and _is_sound(phones[j]):
            j += 1
        if j > i + 1 and _is_sound(phones[i]) and bounds[i][1] > bounds[i][0]:
            cuts = np.linspace(bounds[i][0], bounds[j - 1][1], j - i + 1).round().astype(int).tolist()
            bounds[i:j] = list(zip(cuts[:-1], cuts[1:]))
        i = j
    return bounds


def _phoneme_timings(phones: list[_Phone], bounds: list[tuple[int, int]], rate: int) -> list[PhonemeTiming]:
    """One symbol per IPA code point (as Piper spells them: "eɪ" is "e", "ɪ"), each event's
    samples split evenly over its code points; pauses and the lead-in become "sil"."""
    symbols, samples = [_PAUSE], [bounds[0][0] if bounds else 0]
    for p, (a, b) in zip(phones, bounds):
        chars = [c for c in p.ipa if c != "\u0361"] if _is_sound(p) else [_PAUSE]
        cuts = np.linspace(a, b, len(chars) + 1).round().astype(int)
        symbols += chars
        samples += np.diff(cuts).tolist()
    return symbols_to_timings(symbols, samples, rate)


def _syllable_timings(phones: list[_Phone], bounds: list[tuple[int, int]],
                      owners: dict[int, tuple[int, str]], rate: int) -> list[PhonemeTiming]:
    """Pinyin syllables timed from their phonemes (each event names the syllable it came
    from); the lead-in and pauses between syllables become "sil". Two equal neighbours
    ("chang2 chang2") stay two syllables. [] if some syllable was not spoken."""
    keys = [owners[p.text_position][0] if _is_sound(p) and p.text_position in owners else -1 for p in phones]
    for i, k in enumerate(keys):  # a pause inside one syllable belongs to it
        if k == -1:
            before = next((keys[j] for j in range(i - 1, -1, -1) if keys[j] != -1), None)
            after = next((keys[j] for j in range(i + 1, len(keys)) if keys[j] != -1), None)
            if before is not None and before == after:
                keys[i] = before
    labels = {k: label for k, label in owners.values()}
    if set(keys) - {-1} != set(labels):
        return []
    spans: list[list] = [[-1, 0, bounds[0][0]]] if bounds else []  # [key, start, end]
    for k, (a, b) in zip(keys, bounds):
        if b <= a:
            continue
        if spans and spans[-1][0] == k:
            spans[-1][2] = b
        else:
            spans.append([k, a, b])
    return [PhonemeTiming(labels.get(k, SILENCE), a / rate, b / rate) for k, a, b in spans if b > a]


def _is_sound(p: _Phone) -> bool:
    """A phoneme rather than a pause ("") or a language switch mark ("(en)")."""
    return bool(p.ipa) and not p.ipa.startswith("(")
