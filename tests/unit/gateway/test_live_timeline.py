"""The live timeline's one clock: ten minutes of alternating speech and idle, interrupts and
renders slower than real time, decided slot by slot — every speaking slot carries exactly
the audio of its own frame (A/V offset 0 by construction, no drift), video pts come from the
audio sample clock, and held slots pause audio and video together."""

from __future__ import annotations

import numpy as np

from services.gateway.live.idle import IdleLoop
from services.gateway.live.timeline import Timeline
from services.gateway.live.utterance import LIVE_SAMPLE_RATE, Utterance
from services.gateway.request import CheckedRequest
from services.gateway.stages import SubjectInfo

FPS = 25
SPF = LIVE_SAMPLE_RATE // FPS


def _idle() -> IdleLoop:
    loop = IdleLoop(SubjectInfo("s", FPS, (2, 2), "d"), 4)
    loop.frames.extend(np.zeros((4, 2, 2, 3), np.uint8))
    loop.complete.set()
    loop.first.set()
    return loop


def _frames(uid: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames tagged (utterance, frame number) in their pixels, and audio whose samples carry
    the same frame number, so a slot shows whether its picture and sound belong together."""
    j = np.arange(start, start + n)
    img = np.zeros((n, 2, 2, 3), np.uint8)
    img[:, 0, 0, 0] = uid + 1
    img[:, 0, 0, 1], img[:, 0, 0, 2] = j // 256, j % 256
    audio = np.repeat(j.astype(np.float32) / 10_000 + 1e-3, SPF)
    return img, audio


def test_ten_minutes_of_speech_and_idle_keep_audio_and_video_together():
    tl = Timeline(_idle(), FPS)
    rng = np.random.default_rng(0)
    slots = 10 * 60 * FPS
    uid, live, stats = 0, None, {"speaking": 0, "held": 0, "idle": 0}
    for k in range(slots):
        if live is None and rng.random() < 0.02:  # a new utterance of 1–6 s
            n = int(rng.integers(25, 150))
            live = [Utterance(uid, CheckedRequest(text="x"), SPF), 0, n]
            tl.enqueue(live[0])
            uid += 1
        if live is not None:
            u, made, n = live
            # renders come in batches of 8 at about 0.9 frames per slot: slower than real time
            if made < n and rng.random() < 0.11:
                b = min(8, n - made)
                u.push(*_frames(u.id, made, b))
                live[1] = made + b
            if live[1] >= n and not u.done:
                u.finish()
            if rng.random() < 0.002:  # barge-in
                tl.interrupt()
            if u.done and tl.pending == 0 or u.cancelled.is_set():
                live = None
        s = tl.slot(k)
        stats[s.state] += 1
        assert tl.video_pts(k) == k * SPF * 90_000 // LIVE_SAMPLE_RATE == k * 3600
        assert len(s.audio) == SPF
        if s.state == "speaking":
            j = int(s.image[0, 0, 1]) * 256 + int(s.image[0, 0, 2])
            assert s.image[0, 0, 0] == s.utterance + 1
            assert np.allclose(s.audio, j / 10_000 + 1e-3)  # its own frame's audio: offset 0
        else:
            assert not s.audio.any()  # idle and held slots are silent
    assert stats["speaking"] > 1000 and stats["held"] > 0 and stats["idle"] > 1000, stats


def test_interrupt_makes_the_next_slot_idle_and_drops_the_queue():
    tl = Timeline(_idle(), FPS)
    a, b = Utterance(0, CheckedRequest(text="x"), SPF), Utterance(1, CheckedRequest(text="y"), SPF)
    a.push(*_frames(0, 0, 50))
    b.push(*_frames(1, 0, 50))
    tl.enqueue(a)
    tl.enqueue(b)
    states = [tl.slot(k).state for k in range(1, 5)]
    assert "speaking" in states
    assert [u.id for u in tl.interrupt()] == [0, 1]
    assert a.cancelled.is_set() and b.cancelled.is_set()
    assert tl.slot(5).state == "idle" and tl.pending == 0


def test_an_utterance_waits_in_idle_for_its_first_frames_then_holds_for_a_cushion_when_late():
    tl = Timeline(_idle(), FPS, cushion_frames=3)
    u = Utterance(0, CheckedRequest(text="x"), SPF)
    tl.enqueue(u)
    assert [tl.slot(k).state for k in range(3)] == ["idle"] * 3  # nothing rendered yet
    u.push(*_frames(0, 0, 2))
    assert [tl.slot(k).state for k in range(3, 6)] == ["speaking", "speaking", "held"]
    held = tl.slot(5)
    assert np.array_equal(held.image, tl.slot(4).image)  # the last frame repeats
    u.push(*_frames(0, 2, 2))
    assert tl.slot(6).state == "held"  # two frames are not the cushion of three
    u.push(*_frames(0, 4, 1))
    s = tl.slot(7)
    assert s.state == "speaking" and int(s.image[0, 0, 2]) == 2  # resumes where it was
    u.finish()
    assert [tl.slot(k).state for k in range(8, 11)] == ["speaking", "speaking", "idle"]


def test_after_a_slow_utterance_the_next_starts_with_a_cushion():
    tl = Timeline(_idle(), FPS, cushion_frames=3)
    slow = Utterance(0, CheckedRequest(text="x"), SPF)
    slow.push(*_frames(0, 0, 2))
    slow.render_started_at -= 10.0  # two frames in ten seconds
    slow.finish()
    tl.enqueue(slow)
    assert [tl.slot(k).state for k in range(3)] == ["speaking", "speaking", "idle"]
    nxt = Utterance(1, CheckedRequest(text="y"), SPF)
    tl.enqueue(nxt)
    nxt.push(*_frames(1, 0, 2))
    assert tl.slot(3).state == "idle"  # two of three
    nxt.push(*_frames(1, 2, 1))
    assert tl.slot(4).state == "speaking"
