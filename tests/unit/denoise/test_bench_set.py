"""The denoise benchmark's held-out set: seeded, at the stated SNRs, every kind reported."""

import numpy as np

from services.bench.denoise import BENCH_KINDS, SNRS, _breakdown, mixtures


def _speech(n: int, seconds: float = 0.5) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(int(16000 * seconds)) / 16000
    return [(0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + 0.1 * rng.standard_normal(len(t))))
            .astype(np.float32) for i in range(n)]


def test_mixtures_are_seeded_and_at_the_stated_snr():
    speech = _speech(3)
    a, b = mixtures(speech), mixtures(speech)
    assert len(a) == len(speech) * len(BENCH_KINDS) * len(SNRS)
    for x, y in zip(a, b):
        assert x["kind"] == y["kind"] and np.array_equal(x["noisy"], y["noisy"])
        noise = x["noisy"] - x["clean"]
        snr = 10 * np.log10(np.mean(x["clean"].astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert abs(snr - x["snr"]) < 0.05
    # fully crossed: every utterance meets every kind at every SNR
    assert {(m["clean"].tobytes(), m["kind"], m["snr"]) for m in a} == {
        (c.tobytes(), k, s) for c in speech for k in BENCH_KINDS for s in SNRS}


def test_breakdown_groups_by_snr_and_kind():
    items = [{"snr": 0.0, "kind": "pink"}, {"snr": 5.0, "kind": "pink"}, {"snr": 0.0, "kind": "hum"}]
    rows = [{"si_sdr": 1.0}, {"si_sdr": 3.0}, {"si_sdr": 5.0}]
    out = _breakdown(rows, items)
    assert out["by_snr"] == {"0.0": {"si_sdr": 3.0}, "5.0": {"si_sdr": 3.0}}
    assert out["by_kind"] == {"pink": {"si_sdr": 2.0}, "hum": {"si_sdr": 5.0}}


def test_heldout_speech_is_the_same_in_every_process():
    import subprocess
    import sys

    code = ("import hashlib; from services.bench.denoise import heldout_speech; "
            "print(hashlib.sha256(heldout_speech(1, 0)[0].tobytes()).hexdigest())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-500:]
    assert runs[0].stdout.split()[-1] == runs[1].stdout.split()[-1]


def test_real_noise_mixtures_are_seeded_crossed_and_at_the_stated_snr():
    from services.bench.denoise import real_noise_mixtures

    speech = _speech(2, seconds=1.0)
    rng = np.random.default_rng(5)
    noises = {"long": rng.standard_normal(40_000).astype(np.float32),
              "short": rng.standard_normal(3_000).astype(np.float32)}  # shorter than the speech: looped
    a, b = real_noise_mixtures(speech, noises), real_noise_mixtures(speech, noises)
    assert len(a) == len(speech) * len(noises) * len(SNRS)
    assert {(m["kind"], m["snr"]) for m in a} == {(k, s) for k in noises for s in SNRS}
    for x, y in zip(a, b):
        assert np.array_equal(x["noisy"], y["noisy"]) and len(x["noisy"]) == len(x["clean"])
        noise = x["noisy"] - x["clean"]
        snr = 10 * np.log10(np.mean(x["clean"].astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert abs(snr - x["snr"]) < 0.05
    n0, n1 = (a[i]["noisy"] - a[i]["clean"] for i in (0, 1))  # same clip and noise, two SNRs
    assert not np.allclose(n0 / n0.std(), n1 / n1.std(), atol=1e-3)  # each mixture its own crop


def test_breakdown_names_the_kinds_it_is_given():
    items = [{"snr": 0.0, "kind": "exercise_bike"}, {"snr": 5.0, "kind": "doing_the_dishes"}]
    out = _breakdown([{"si_sdr": 1.0}, {"si_sdr": 2.0}], items)
    assert out["by_kind"] == {"exercise_bike": {"si_sdr": 1.0}, "doing_the_dishes": {"si_sdr": 2.0}}
