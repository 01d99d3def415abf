"""One request check and one set of limits for every entry point."""

import numpy as np
import pytest

from services.common.errors import InvalidInput, ResourceExhausted
from services.common.text import MAX_TEXT_CHARS
from services.common.types import AudioClip
from services.gateway.request import CheckedRequest, Limits, SpeakRequest, check_request


def _audio(seconds: float, rate: int = 16000) -> AudioClip:
    return AudioClip(np.zeros(int(seconds * rate), np.float32), rate)


def test_text_is_normalised_and_defaults_resolved():
    req = check_request(SpeakRequest(text="  Hello \t there  ", subject="demo"), Limits(frames_per_chunk=5))
    assert isinstance(req, CheckedRequest)
    assert req.text == "Hello there" and req.frames_per_chunk == 5 and req.denoise is False
    assert check_request(SpeakRequest(audio=_audio(1.0))).denoise is True
    assert check_request(SpeakRequest(audio=_audio(1.0), denoise=False)).denoise is False
    assert check_request(req) is req  # checked once
    assert req.exact is False and check_request(SpeakRequest(text="hi", exact=True)).exact is True


@pytest.mark.parametrize("req,err,words", [
    (SpeakRequest(), InvalidInput, "exactly one"),
    (SpeakRequest(text="hi", audio=_audio(1.0)), InvalidInput, "exactly one"),
    (SpeakRequest(text="  ... "), InvalidInput, "empty"),
    (SpeakRequest(text="hi", lang="fr"), InvalidInput, "unknown language"),
    (SpeakRequest(audio=_audio(1.0), lang="fr"), InvalidInput, "unknown language"),
    (SpeakRequest(text="x" * 101), ResourceExhausted, "limit is 100"),
    (SpeakRequest(audio=_audio(3.0)), ResourceExhausted, "limit is 2 s"),
    (SpeakRequest(audio=_audio(0.0)), InvalidInput, "empty"),
    (SpeakRequest(text="hi", subject="../etc"), InvalidInput, "subject id"),
    (SpeakRequest(text="hi", frames_per_chunk=251), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", voice=3), InvalidInput, "voice"),
])
def test_bad_requests_get_one_clear_error(req, err, words):
    with pytest.raises(err, match=words):
        check_request(req, Limits(max_text_chars=100, max_audio_seconds=2.0))


def test_limits_reject_unknown_keys_and_bad_values():
    assert Limits.from_dict({"max_streams": 2, "max_audio_seconds": 30}) == Limits(max_streams=2, max_audio_seconds=30.0)
    assert Limits.from_dict(None) == Limits()
    with pytest.raises(InvalidInput, match="unknown limit.*max_txt_chars"):
        Limits.from_dict({"max_txt_chars": 10})
    for bad in ({"max_streams": 0}, {"max_streams": 2.5}, {"max_streams": True}, {"max_audio_seconds": "9"},
                {"frames_per_chunk": 500}, {"max_text_chars": MAX_TEXT_CHARS + 1}):
        with pytest.raises(InvalidInput):
            Limits.from_dict(bad)


def test_the_tts_stage_and_the_server_share_one_text_cap():
    from services.common.text import check_text

    assert Limits().max_text_chars == MAX_TEXT_CHARS
    check_text("x" * MAX_TEXT_CHARS, "en")
    with pytest.raises(InvalidInput):
        check_text("x" * (MAX_TEXT_CHARS + 1), "en")
