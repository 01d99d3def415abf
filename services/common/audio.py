"""Audio I/O, resampling and the Wav2Lip mel front end (REFERENCE.md §4)."""

from __future__ import annotations

import io
import math
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from services.common.errors import InvalidInput, TalkingHeadError
from services.common.types import ANALYSIS_SAMPLE_RATE, MEL_FPS, AudioClip

#: Longest audio accepted by default (seconds); services may lower it.
MAX_AUDIO_SECONDS = 15 * 60
#: Container durations (FFmpeg's estimate from the header) may run this far over the real
#: decoded length (priming, padding, bitrate guesses); the decoded length decides.
_HEADER_SLACK_S = 0.5


def load_audio(source: str | Path | bytes, max_seconds: float = MAX_AUDIO_SECONDS,
               too_long: type[TalkingHeadError] = InvalidInput) -> AudioClip:
    """Decode wav/flac/ogg/mp3 (libsndfile) or anything FFmpeg reads (m4a, webm…) to mono float32.

    Raises InvalidInput for missing files, undecodable bytes, empty or non-finite audio, and
    `too_long` for audio over `max_seconds`: from the container header before decoding where it
    gives the length, else as soon as decoding passes the limit (never the whole file).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"audio file not found: {path}")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise InvalidInput("audio is empty (0 bytes)")
    try:
        samples, rate = _decode_soundfile(data, max_seconds, too_long)
    except TalkingHeadError:
        raise
    except Exception:  # libsndfile does not know the container: try FFmpeg
        try:
            samples, rate = _decode_av(data, max_seconds, too_long)
        except TalkingHeadError:
            raise
        except Exception as exc:
            raise InvalidInput(f"could not decode audio ({len(data)} bytes): not a known audio format") from exc
    return check_audio(samples, rate, max_seconds, too_long)


def too_long_message(seconds: float, max_seconds: float) -> str:
    return f"audio is {seconds:.1f} s long; the limit is {max_seconds:g} s"


def check_audio(samples: np.ndarray, sample_rate: int, max_seconds: float = MAX_AUDIO_SECONDS,
                too_long: type[TalkingHeadError] = InvalidInput) -> AudioClip:
    """Validate decoded samples: mono-ise, reject empty/NaN/inf/over-long, clip to [-1, 1]."""
    if sample_rate <= 0:
        raise InvalidInput(f"audio has no valid sample rate ({sample_rate})")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise InvalidInput("audio has no samples")
    duration = samples.size / sample_rate
    if duration > max_seconds:
        raise too_long(too_long_message(duration, max_seconds))
    if not np.all(np.isfinite(samples)):
        raise InvalidInput("audio contains NaN or infinite samples")
    return AudioClip(np.clip(samples, -1.0, 1.0), int(sample_rate))


def _frame_cap(max_seconds: float, rate: int) -> int:
    """Samples per channel that are still within `max_seconds` at `rate`."""
    return int(math.floor(max_seconds * rate))


def _decode_soundfile(data: bytes, max_seconds: float, too_long: type[TalkingHeadError]) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        rate = f.samplerate
        cap = _frame_cap(max_seconds, rate)
        if 0 < f.frames < 2**62 and f.frames > cap:  # the header's exact frame count
            raise too_long(too_long_message(f.frames / rate, max_seconds))
        samples = f.read(frames=cap + 1, dtype="float32", always_2d=False)  # one over: check_audio refuses
    return samples, rate


def _decode_av(data: bytes, max_seconds: float, too_long: type[TalkingHeadError]) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        stream = next(s for s in container.streams if s.type == "audio")
        rate = stream.codec_context.sample_rate
        if not rate:
            raise ValueError("no sample rate")
        header_s = None
        if stream.duration is not None and stream.time_base is not None:
            header_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            header_s = container.duration / av.time_base
        if header_s is not None and header_s > max_seconds + _HEADER_SLACK_S:
            raise too_long(too_long_message(header_s, max_seconds))
        cap = _frame_cap(max_seconds, rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts, n = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
                n += parts[-1].size
            if n > cap:  # over the limit: stop decoding; check_audio refuses
                break
        else:
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        raise ValueError("no audio frames")
    return np.concatenate(parts), rate


def save_wav(path: str | Path, clip: AudioClip) -> None:
    import soundfile as sf

    sf.write(str(path), clip.samples, clip.sample_rate, subtype="PCM_16")


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase (Kaiser-windowed sinc) resampling; output length = round(n·sr_out/sr_in)."""
    if sr_in == sr_out:
        return np.asarray(samples, dtype=np.float32)
    ratio = Fraction(sr_out, sr_in)
    out = resample_poly(np.asarray(samples, dtype=np.float64), ratio.numerator, ratio.denominator,
                        window=("kaiser", 8.0))
    n = int(round(len(samples) * sr_out / sr_in))
    if len(out) < n:
        out = np.pad(out, (0, n - len(out)))
    return out[:n].astype(np.float32)


@lru_cache(maxsize=8)
def _kaiser_lowpass(up: int, down: int, beta: float) -> tuple[np.ndarray, int]:
    """scipy.signal.resample_poly's filter, firwin(20·r + 1, 1/r, ("kaiser", beta))·up with
    r = max(up, down), and its half length."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    m = np.arange(2 * half_len + 1) - float(half_len)
    cutoff = 1.0 / max_rate
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(2 * half_len + 1, beta)
    return h / np.sum(h) * up, half_len


def resample_poly(x: np.ndarray, up: int, down: int, window: tuple[str, float] = ("kaiser", 5.0)) -> np.ndarray:
    """scipy.signal.resample_poly(x, up, down, window=("kaiser", beta)) of a 1-D signal
    (zero padding) in numpy: the two agree to an ulp or two of float64, so the float32
    audio `resample` returns is the same. Importing scipy.signal costs a new process ~0.7 s of
    interpreter time that `say` needs for loading torch and its voice."""
    kind, beta = window
    if kind != "kaiser":
        raise ValueError(f"only a Kaiser window is supported, not {kind!r}")
    x = np.asarray(x, dtype=np.float64)
    n_in = len(x)
    n_out = -(-n_in * up // down)
    h, half_len = _kaiser_lowpass(up, down, float(beta))
    pre_pad = down - half_len % down  # centres the outputs, as scipy does
    taps = -(-(pre_pad + len(h)) // up)  # filter taps per output
    hp = np.zeros(taps * up)
    hp[pre_pad:pre_pad + len(h)] = h
    # Output k is sample j = (k + skip)·down of the upsampled, filtered signal:
    # y[j] = sum over t of x[j // up − t]·hp[j % up + t·up]. Outputs k, k + up, k + 2·up ...
    # share one phase (their filter) and step `down` inputs: one matrix-vector product each.
    j = (np.arange(n_out, dtype=np.int64) + (half_len + pre_pad) // down) * down
    newest, phase = np.divmod(j, up)
    tail = max(0, int(newest[-1]) + 1 - n_in) if n_out else 0
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate((np.zeros(taps), x, np.zeros(tail))), taps)
    oldest_first = np.arange(taps - 1, -1, -1) * up
    out = np.empty(n_out)
    for k in range(min(up, n_out)):
        rows = windows[newest[k] + 1::down][:len(range(k, n_out, up))]
        out[k::up] = rows @ hp[phase[k] + oldest_first]
    return out


def pre_emphasis(x: np.ndarray, coefficient: float) -> np.ndarray:
    """y[n] = x[n] − c·x[n−1]: scipy.signal.lfilter([1, −c], [1], x), bit for bit."""
    y = x.copy()
    y[1:] -= coefficient * x[:-1]
    return y


def pad_to_frames(clip: AudioClip, fps: float, n_frames: int | None = None) -> tuple[AudioClip, int]:
    """Zero-pad a clip to a whole number of video frames (the next frame boundary, or exactly
    `n_frames` when given and longer), so each sentence starts on a frame boundary."""
    n = n_frames if n_frames is not None else max(1, math.ceil(len(clip.samples) * fps / clip.sample_rate - 1e-9))
    target = int(round(n * clip.sample_rate / fps))
    return AudioClip(np.pad(clip.samples, (0, max(0, target - len(clip.samples)))), clip.sample_rate), n


def to_analysis_rate(clip: AudioClip) -> AudioClip:
    """The 16 kHz mono clip every analysis stage expects."""
    return AudioClip(resample(clip.samples, clip.sample_rate, ANALYSIS_SAMPLE_RATE), ANALYSIS_SAMPLE_RATE)


# --- Wav2Lip mel ---------------------------------------------------------------------

MEL_N_FFT = 800
MEL_HOP = 200
MEL_BINS = 80
MEL_FMIN = 55.0
MEL_FMAX = 7600.0


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep,
                    hz / f_sp)


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = ANALYSIS_SAMPLE_RATE, n_fft: int = MEL_N_FFT, n_mels: int = MEL_BINS,
                   fmin: float = MEL_FMIN, fmax: float = MEL_FMAX) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters [n_mels, 1 + n_fft//2] (librosa's default)."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_pts = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    hz_pts = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return weights.astype(np.float32)


def stft_magnitude(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| with a periodic Hann window, centred frames and reflect padding: [1 + n_fft//2, T]."""
    x = np.asarray(samples, dtype=np.float64)
    pad = n_fft // 2
    if len(x) <= pad:  # reflect needs more samples than the pad: fall back to zeros
        x = np.pad(x, (pad, pad))
    else:
        x = np.pad(x, (pad, pad), mode="reflect")
    n_frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(x[idx] * window, axis=1)).T


def wav2lip_mel(samples: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """Wav2Lip's normalised log-mel: [80, T] float32 at 80 frames/s in [-4, 4], T = 1 + n // 200."""
    if sample_rate != ANALYSIS_SAMPLE_RATE:
        raise InvalidInput(f"the mel front end needs {ANALYSIS_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    emphasised = pre_emphasis(np.asarray(samples, dtype=np.float64), 0.97)
    spec = stft_magnitude(emphasised, MEL_N_FFT, MEL_HOP)
    mel = mel_filterbank() @ spec
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - 20.0
    return np.clip(8.0 * (db + 100.0) / 100.0 - 4.0, -4.0, 4.0).astype(np.float32)


def mel_frame_rate() -> int:
    return MEL_FPS
