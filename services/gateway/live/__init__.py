"""Live sessions: a WebRTC peer per session streaming audio and video continuously — an idle
loop while not speaking, queued speech, barge-in — from one media clock.

- `timeline.py`: the clock and what plays on it, one 40 ms slot (a frame and its audio) at a time.
- `utterance.py`: one speak request's frames and 48 kHz audio as its render makes them, and
  the `MediaSink` that fills it from `Pipeline.run`.
- `idle.py`: the idle loop (silence through the subject's encoder and renderer).
- `session.py`: a session and a process's `LiveSessions` (limits, timeouts, metrics).
- `host.py`: under Ray Serve, the actor holding one Avatar replica's sessions, and the
  routing of a session's calls to it from any replica.
- `peer.py`: the server's aiortc side (tracks, data channel, SDP); `client.py`: a Python
  client. Only these two import aiortc (the `live` extra).
"""
