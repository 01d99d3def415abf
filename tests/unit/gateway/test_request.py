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
    (SpeakRequest(text="hi", voice=["joe"]), InvalidInput, "voice must be a string"),
    (SpeakRequest(text="hi", frames_per_chunk="abc"), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", frames_per_chunk=float("inf")), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", frames_per_chunk=-1), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", frames_per_chunk=8.0), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", frames_per_chunk=True), InvalidInput, "frames_per_chunk"),
    (SpeakRequest(text="hi", seed=-1), InvalidInput, "seed"),
    (SpeakRequest(text="hi", seed=1.5), InvalidInput, "seed"),
    (SpeakRequest(text="hi", seed="7"), InvalidInput, "seed"),
    (SpeakRequest(text="hi", seed=2**63), InvalidInput, "seed"),
    (SpeakRequest(text="hi", static_pose="false"), InvalidInput, "static_pose must be true or false"),
    (SpeakRequest(text="hi", static_pose=1), InvalidInput, "static_pose"),
    (SpeakRequest(text="hi", denoise="yes"), InvalidInput, "denoise"),
    (SpeakRequest(text="hi", lang=["en"]), InvalidInput, "lang must be a string"),
    (SpeakRequest(text="hi", lang=5), InvalidInput, "lang must be a string"),
    (SpeakRequest(text=5), InvalidInput, "text must be a string"),
    (SpeakRequest(text="hi", subject=["demo"]), InvalidInput, "subject"),
    (SpeakRequest(text="hi", subject="demo\n"), InvalidInput, "subject id"),
    (SpeakRequest(audio=_audio(2.5)), ResourceExhausted, "limit is 2 s"),
    (SpeakRequest(audio=_audio(2.01)), ResourceExhausted, "limit is 2 s"),
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


def test_good_values_of_every_type_pass():
    req = check_request(SpeakRequest(text="hi", voice="en_US-lessac-medium", static_pose=True, denoise=True,
                                     frames_per_chunk=250, seed=2**63 - 1, lang="en"))
    assert (req.static_pose, req.denoise, req.frames_per_chunk, req.seed) == (True, True, 250, 2**63 - 1)
    assert check_request(SpeakRequest(audio=_audio(2.0)), Limits(max_audio_seconds=2.0)).audio is not None


def test_limits_derive_a_body_cap_from_the_audio_limit():
    small, large = Limits(max_audio_seconds=10), Limits(max_audio_seconds=120)
    assert 10 * 48_000 * 4 < small.max_body_bytes < large.max_body_bytes  # a 10 s 48 kHz stereo WAV fits
    assert Limits(max_body_bytes=1000).max_body_bytes == 1000
    assert Limits.from_dict({"max_body_bytes": 5000, "max_queued_jobs": 2}).max_queued_jobs == 2
    for bad in ({"max_body_bytes": -1}, {"max_queued_jobs": 0}, {"job_ttl_seconds": float("inf")}):
        with pytest.raises(InvalidInput):
            Limits.from_dict(bad)
