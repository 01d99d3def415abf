"""TtsService: picks a backend per language/voice and speaks text sentence by sentence."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from services.common.errors import InvalidInput, NotFound
from services.common.text import check_text
from services.common.types import Speech, SynthesisOptions, join_speech
from services.tts.backend import TtsBackend
from services.tts.normalize import normalize
from services.tts.text import split_sentences


def _piper() -> TtsBackend:
    from services.tts.piper_backend import PiperBackend

    return PiperBackend()


#: voice name → (factory, languages). Factories run once, on first use.
VOICES: dict[str, tuple[Callable[[], TtsBackend], tuple[str, ...]]] = {
    "joe": (_piper, ("en", "zh")),
}
DEFAULT_VOICE = {"en": "joe", "zh": "joe"}


class TtsService:
    """Loads voices lazily and answers typed requests; safe to share between threads."""

    def __init__(self) -> None:
        self._backends: dict[str, TtsBackend] = {}

    def voices(self) -> dict[str, tuple[str, ...]]:
        return {name: langs for name, (_, langs) in VOICES.items()}

    def backend(self, lang: str, voice: str | None = None) -> TtsBackend:
        name = voice or DEFAULT_VOICE.get(lang, "")
        if name not in VOICES:
            raise NotFound(f"unknown voice {voice!r}: available voices are {', '.join(VOICES)}")
        factory, langs = VOICES[name]
        if lang not in langs:
            raise NotFound(f"voice {name!r} does not speak {lang!r} (it speaks {', '.join(langs)})")
        if name not in self._backends:
            self._backends[name] = factory()
        return self._backends[name]

    def sentences(self, text: str, lang: str = "en", voice: str | None = None,
                  options: SynthesisOptions | None = None) -> Iterator[Speech]:
        """Validate everything first, then yield one Speech per sentence as it is made.

        The text is normalised to its spoken words before it is split (so "$3.50" or "Dr."
        cannot end a sentence); each Speech's text is the spoken sentence."""
        checked = check_text(text, lang)
        return backend_sentences(self.backend(lang, voice), checked, lang, options)

    def synthesize(self, text: str, lang: str = "en", voice: str | None = None,
                   options: SynthesisOptions | None = None) -> Speech:
        """The whole text as one Speech; timings stay contiguous across sentences."""
        checked = check_text(text, lang)
        return backend_speech(self.backend(lang, voice), checked, lang, options)


def backend_sentences(backend: TtsBackend, text: str, lang: str,
                      options: SynthesisOptions | None = None) -> Iterator[Speech]:
    """`text` checked, normalised and split, then one Speech per sentence from `backend`
    (any backend, registered in VOICES or not: training data makers use others)."""
    checked = check_text(text, lang)
    opts = options or SynthesisOptions()
    parts = split_sentences(normalize(checked, lang))
    if not parts:
        raise InvalidInput("text is empty once symbols are dropped: give at least one word to say")
    return (_numbered(backend.synthesize_sentence(s, lang, opts), i) for i, s in enumerate(parts))


def backend_speech(backend: TtsBackend, text: str, lang: str, options: SynthesisOptions | None = None) -> Speech:
    """The whole text as one Speech from `backend`; timings stay contiguous across sentences."""
    return join_speech(list(backend_sentences(backend, text, lang, options)))


def _numbered(speech: Speech, index: int) -> Speech:
    return Speech(speech.audio, speech.phonemes, speech.text, speech.lang, speech.voice,
                  sentence=index, syllables=speech.syllables)
