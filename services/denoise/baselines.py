"""Classical denoisers the service also offers and the benchmark compares against:
RNNoise (pyrnnoise's C library, 48 kHz, 10 ms frames) and spectral gating (noisereduce)."""

from __future__ import annotations

import numpy as np

from services.common.audio import resample
from services.common.extras import optional_import

RNNOISE_RATE = 48_000
#: RNNoise's algorithmic delay (one 10 ms frame of output latency + 10 ms window lookahead).
RNNOISE_DELAY_S = 0.020


class RnnoiseStream:
    """Frame-by-frame RNNoise at 48 kHz on int16-scaled floats; keeps its own state."""

    def __init__(self) -> None:
        rnnoise = optional_import("pyrnnoise.rnnoise", "baselines")
        self._lib = rnnoise
        self._state = rnnoise.create()
        self.frame = rnnoise.FRAME_SIZE
        self._pending = np.zeros(0, np.float32)

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state is not None:
            self._lib.destroy(state)

    def push(self, samples48k: np.ndarray) -> np.ndarray:
        """Denoise whole frames of the input seen so far; the remainder waits for more."""
        import ctypes

        buf = np.concatenate([self._pending, samples48k.astype(np.float32)])
        n = len(buf) // self.frame * self.frame
        out = np.empty(n, np.float32)
        for i in range(0, n, self.frame):
            frame = np.ascontiguousarray(buf[i:i + self.frame] * 32767.0, dtype=np.float32)
            self._lib.lib.rnnoise_process_frame(
                self._state, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
            out[i:i + self.frame] = frame / 32767.0
        self._pending = buf[n:]
        return out


def rnnoise(samples: np.ndarray, sample_rate: int, compensate_delay: bool = True) -> np.ndarray:
    """Whole-signal RNNoise; output aligned with the input (its 20 ms delay removed)."""
    x = resample(samples, sample_rate, RNNOISE_RATE)
    delay = int(round(RNNOISE_DELAY_S * RNNOISE_RATE)) if compensate_delay else 0
    stream = RnnoiseStream()
    tail = (-(len(x) + delay)) % stream.frame + delay  # flush the delay line with zeros
    y = stream.push(np.concatenate([x, np.zeros(tail, np.float32)]))[delay:delay + len(x)]
    return np.clip(resample(y, RNNOISE_RATE, sample_rate), -1.0, 1.0)


def spectral_gating(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """noisereduce's non-stationary spectral gating (no noise clip needed)."""
    noisereduce = optional_import("noisereduce", "baselines")
    y = noisereduce.reduce_noise(y=samples.astype(np.float32), sr=sample_rate, stationary=False,
                                 n_jobs=1)
    return np.clip(y.astype(np.float32), -1.0, 1.0)
