import io

import numpy as np
import pytest
import soundfile as sf

from services.common.audio import (check_audio, load_audio, mel_filterbank, resample, to_analysis_rate,
                                   wav2lip_mel, _hz_to_mel_slaney, _mel_to_hz_slaney)
from services.common.errors import InvalidInput
from services.common.types import AudioClip


def _tone(freq: float, seconds: float = 1.0, sr: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_mel_of_pure_tone_peaks_in_the_bin_whose_band_holds_it(freq):
    mel = wav2lip_mel(_tone(freq))
    assert mel.shape == (80, 81)  # 1 + 16000 // 200 frames: 80 per second
    peak = int(mel[:, 5:-5].mean(axis=1).argmax())
    # Filter `peak` spans the mel points peak..peak+2; the tone must sit inside it.
    edges = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(55.0), _hz_to_mel_slaney(7600.0), 82))
    assert edges[peak] < freq < edges[peak + 2]
    assert -4.0 <= mel.min() and mel.max() <= 4.0


def test_mel_frame_count_and_range():
    for n in (200, 3199, 16_000, 23_456):
        assert wav2lip_mel(np.zeros(n, np.float32)).shape[1] == 1 + n // 200
    assert np.all(wav2lip_mel(np.zeros(1600, np.float32)) == -4.0)  # silence is the floor


def test_mel_filterbank_is_slaney_normalised():
    fb = mel_filterbank()
    assert fb.shape == (80, 401)
    # Slaney norm: each triangle has area 1 in Hz (height 2 / width): sum·bin_width ≈ 1.
    areas = fb.sum(axis=1) * (8000 / 400)
    assert np.allclose(areas[10:], 1.0, atol=0.05)


def test_mel_rejects_wrong_rate():
    with pytest.raises(InvalidInput):
        wav2lip_mel(np.zeros(100, np.float32), sample_rate=22_050)


def test_resample_round_trip_is_transparent():
    x = _tone(440.0, 1.0, 16_000) + 0.3 * _tone(2500.0, 1.0, 16_000)
    up = resample(x, 16_000, 22_050)
    assert len(up) == 22_050
    back = resample(up, 22_050, 16_000)
    assert len(back) == len(x)
    err = np.abs(back - x)[200:-200]
    assert err.max() < 1e-3


def test_resample_keeps_frequency():
    y = resample(_tone(1000.0, 1.0, 44_100), 44_100, 16_000)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 1000) <= 1


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_load_audio_formats(fmt, subtype):
    stereo = np.stack([_tone(500.0, 0.5, 22_050)] * 2, axis=1)
    buf = io.BytesIO()
    sf.write(buf, stereo, 22_050, format=fmt, subtype=subtype)
    clip = load_audio(buf.getvalue())
    assert clip.sample_rate == 22_050 and clip.samples.ndim == 1
    assert abs(clip.duration - 0.5) < 0.06
    assert clip.samples.dtype == np.float32


def test_load_audio_m4a_through_pyav(tmp_path):
    import av

    path = tmp_path / "a.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16_000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_tone(700.0, 1.0).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 16_000
        frame.pts = 0
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    clip = load_audio(path)
    assert clip.sample_rate == 16_000 and 0.9 < clip.duration < 1.2
    assert np.argmax(np.abs(np.fft.rfft(clip.samples[2000:14000]))) == pytest.approx(700 * 12000 / 16000, abs=2)


@pytest.mark.parametrize("data,msg", [(b"", "empty"), (b"not audio at all" * 10, "decode")])
def test_load_audio_rejects_bad_bytes(data, msg):
    with pytest.raises(InvalidInput, match=msg):
        load_audio(data)


def test_check_audio_rejects_nan_and_overlong():
    with pytest.raises(InvalidInput, match="NaN"):
        check_audio(np.array([0.0, np.nan], np.float32), 16_000)
    with pytest.raises(InvalidInput, match="limit"):
        check_audio(np.zeros(16_000 * 3, np.float32), 16_000, max_seconds=2)
    with pytest.raises(InvalidInput, match="no samples"):
        check_audio(np.zeros(0, np.float32), 16_000)


def test_to_analysis_rate():
    clip = to_analysis_rate(AudioClip(_tone(300.0, 1.0, 22_050), 22_050))
    assert clip.sample_rate == 16_000 and len(clip.samples) == 16_000


def test_pad_to_frames_reaches_the_next_frame_boundary():
    from services.common.audio import pad_to_frames

    clip = AudioClip(np.ones(22050 + 10, np.float32), 22050)
    padded, n = pad_to_frames(clip, 25.0)
    assert n == 26 and len(padded.samples) == 26 * 882 and padded.samples[-1] == 0
    exact, n = pad_to_frames(AudioClip(np.ones(882 * 3, np.float32), 22050), 25.0)
    assert n == 3 and len(exact.samples) == 882 * 3
    longer, n = pad_to_frames(clip, 25.0, n_frames=30)
    assert n == 30 and len(longer.samples) == 30 * 882


def _encoded(seconds: float, fmt: str, sr: int = 16_000) -> bytes:
    """`seconds` of tone as a file: WAV/FLAC through libsndfile, mp4/adts (AAC) through FFmpeg."""
    samples = _tone(300.0, seconds, sr)
    buf = io.BytesIO()
    if fmt in ("WAV", "FLAC"):
        sf.write(buf, samples, sr, format=fmt, subtype="PCM_16")
        return buf.getvalue()
    import av

    with av.open(buf, "w", format=fmt) as c:
        s = c.add_stream("aac", rate=sr)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts = sr, 0
        for p in [*s.encode(frame), *s.encode(None)]:
            c.mux(p)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "mp4", "adts"])
def test_audio_over_the_limit_is_the_callers_error_however_far_over(fmt):
    # 0.5 s and 1 s over answer alike (the header check and the decode-time check agree),
    # with the error type the caller asks for (the server: ResourceExhausted → 429)
    from services.common.errors import ResourceExhausted

    for seconds in (2.5, 3.0, 30.0):
        with pytest.raises(ResourceExhausted, match="limit is 2 s"):
            load_audio(_encoded(seconds, fmt), max_seconds=2.0, too_long=ResourceExhausted)
    with pytest.raises(InvalidInput, match="limit is 2 s"):
        load_audio(_encoded(3.0, fmt), max_seconds=2.0)
    assert load_audio(_encoded(1.5, fmt), max_seconds=2.0).duration < 2.0


def test_pcm_over_the_limit_is_refused_from_its_length():
    from services.common.errors import ResourceExhausted
    from services.common.wire import audio_from_proto
    from services.protos.talkinghead.v1 import common_pb2

    msg = common_pb2.AudioClip(pcm_f32le=np.zeros(16_000 * 3, "<f4").tobytes(), sample_rate=16_000)
    with pytest.raises(ResourceExhausted, match="3.0 s long; the limit is 2 s"):
        audio_from_proto(msg, 2.0, ResourceExhausted)
    assert audio_from_proto(msg, 3.0).duration == 3.0


@pytest.mark.parametrize("rates", [(22_050, 16_000), (44_100, 16_000), (48_000, 16_000), (24_000, 16_000),
                                   (16_000, 22_050), (8_000, 16_000), (11_025, 16_000), (44_100, 48_000),
                                   (22_051, 16_000)])
@pytest.mark.parametrize("n", [1, 7, 4410, 66_157])
def test_resampling_gives_scipys_float32_samples(rates, n):
    """services.common.audio resamples in numpy (scipy.signal takes ~0.7 s to import) and
    gives resample_poly's samples: within an ulp or two of float64, equal in float32."""
    from fractions import Fraction

    import scipy.signal

    from services.common.audio import resample, resample_poly

    x = 0.3 * np.random.default_rng(n).standard_normal(n)
    r = Fraction(rates[1], rates[0])
    ours = resample_poly(x, r.numerator, r.denominator, window=("kaiser", 8.0))
    theirs = scipy.signal.resample_poly(x, r.numerator, r.denominator, window=("kaiser", 8.0))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-15)
    expected = np.pad(theirs, (0, max(0, round(n * rates[1] / rates[0]) - len(theirs))))
    np.testing.assert_array_equal(resample(x, *rates), expected[:round(n * rates[1] / rates[0])].astype(np.float32))


def test_pre_emphasis_is_lfilters_bit_for_bit():
    import scipy.signal

    from services.common.audio import pre_emphasis

    x = np.random.default_rng(0).standard_normal(5000)
    np.testing.assert_array_equal(pre_emphasis(x, 0.97), scipy.signal.lfilter([1.0, -0.97], [1.0], x))
