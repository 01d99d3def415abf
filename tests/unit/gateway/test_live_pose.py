"""The head pose across a live session's idle ↔ speech switches: speech renders from the
pose-track phase where the idle loop is (`Timeline.anchor`), the idle loop holds still
until it plays, and idle resumes at the loop frame nearest the speech's last pose — so the
pose step at every switch is no larger than the steps between consecutive frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from services.gateway.live.idle import IdleLoop
from services.gateway.live.timeline import Timeline
from services.gateway.live.utterance import Utterance
from services.gateway.request import CheckedRequest
from services.gateway.stages import SubjectInfo
from services.renderer.motion import replay_poses

FPS = 25
SPF = 48_000 // FPS
TRACK = 40  # pose-track frames
IDLE = 16   # idle frames rendered (the loop plays them forwards, then backwards)


def _track() -> np.ndarray:
    """A head that turns and sways at a varying speed: every step differs."""
    t = np.cumsum(np.random.default_rng(0).uniform(0.5, 1.5, TRACK))
    poses = np.repeat(np.eye(4)[None], TRACK, 0)
    a = 0.05 * np.sin(t / 5)
    poses[:, 0, 0], poses[:, 0, 2], poses[:, 2, 0], poses[:, 2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    poses[:, 0, 3], poses[:, 1, 3] = 0.02 * np.sin(t / 3), 0.01 * np.cos(t / 4)
    return poses


def _tagged(kind: int, n: int) -> np.ndarray:
    img = np.zeros((n, 2, 2, 3), np.uint8)
    img[:, 0, 0, 0] = kind
    img[:, 0, 0, 1] = np.arange(n)
    return img


def _step(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3]) + np.linalg.norm(a[:3, :3] - b[:3, :3]))


def test_a_pose_phase_is_the_same_in_every_call_that_reaches_it():
    track = _track()
    whole = replay_poses(track, 200, start=0)
    for start in (0, 5, 37, 60):
        np.testing.assert_allclose(replay_poses(track, 12, start=start), whole[start:start + 12], atol=1e-6)
    # phase -k: frame k walked backwards, the same poses as the walk's way back
    back = replay_poses(track, 12, start=-20)
    np.testing.assert_allclose(back, whole[2 * (TRACK - 1) - 20:][:12], atol=1e-6)


def test_the_pose_never_jumps_between_idle_and_speech():
    track = _track()
    idle = IdleLoop(SubjectInfo("s", FPS, (2, 2), "d", pose_frames=TRACK), IDLE)
    shown_track = track[:IDLE]  # live speech walks the track frames the idle loop shows (pose_span)
    idle_poses = replay_poses(shown_track, IDLE, start=0)  # what render_idle renders
    idle.frames.extend(_tagged(0, IDLE))
    idle.complete.set()
    idle.first.set()
    tl = Timeline(idle, FPS)
    poses: dict[int, np.ndarray] = {}  # utterance tag → its poses
    shown: list[tuple[int | None, np.ndarray]] = []  # (utterance or None: idle, pose) per slot

    def play(n: int) -> None:
        for _ in range(n):
            s = tl.slot(len(shown))
            kind, j = int(s.image[0, 0, 0]), int(s.image[0, 0, 1])
            shown.append((s.utterance, idle_poses[j] if kind == 0 else poses[kind][j]))

    def speak(uid: int) -> Utterance:
        u = Utterance(uid, CheckedRequest(text="x"), SPF)
        tl.enqueue(u)
        return u

    def render(u: Utterance, n: int) -> None:  # what the session's render loop does
        u.req = replace(u.req, pose_start=tl.anchor(u))
        poses[u.id + 1] = replay_poses(shown_track, n, start=u.req.pose_start)
        u.push(_tagged(u.id + 1, n), np.full(n * SPF, 0.1, np.float32))
        u.finish()

    play(7)
    u = speak(0)
    u.req = replace(u.req, pose_start=tl.anchor(u))  # its render starts; first frames come later
    play(5)  # the idle loop holds its pose meanwhile
    poses[1] = replay_poses(shown_track, 30, start=u.req.pose_start)
    u.push(_tagged(1, 30), np.full(30 * SPF, 0.1, np.float32))
    u.finish()
    play(50)  # 30 speaking, then idle again (through the loop's turn)
    render(speak(1), 40)
    play(12)
    tl.interrupt()  # barge-in mid-utterance
    play(25)
    a, b = speak(2), speak(3)
    render(a, 20)
    play(6)
    render(b, 15)  # queued behind one that still plays: it continues its pose
    play(60)

    who = [w for w, _ in shown]
    assert [who.count(k) for k in range(4)] == [30, 12, 20, 15]
    steps = [(who[i - 1] != who[i], _step(shown[i - 1][1], shown[i][1])) for i in range(1, len(shown))]
    within = max(d for switch, d in steps if not switch)
    at_switch = [d for switch, d in steps if switch]
    assert len(at_switch) == 7 and within > 0
    print(f"\npose step: largest at a switch {max(at_switch):.4f}, largest within idle or speech {within:.4f}")
    assert max(at_switch) <= within * 1.0001, (max(at_switch), within)
