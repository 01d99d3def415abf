"""Close an fMP4 fragment now: libavformat's NULL-packet writes, which PyAV does not expose.

The mp4 muxer (movflags frag_keyframe) closes a fragment only when the next keyframe
arrives, so each frame batch would reach a client one batch late (the first media after
the second batch is rendered). `av_interleaved_write_frame(ctx, NULL)` empties the
interleaving queue and `av_write_frame(ctx, NULL)` writes the fragment built so far (the
mp4 muxer allows flushing). PyAV keeps its AVFormatContext pointer in a C field of the
container object; it is read at that field's offset and checked (its AVClass is named
"AVFormatContext" and its output format is mp4) before any call. With another PyAV
layout, or no libavformat found, `flush` returns False and fragments come a batch late.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache
from typing import Any

#: PyAV major versions whose Container starts with `AVFormatContext *ptr` after the object
#: header and the Cython vtable (checked against PyAV 18's av/container/core.pxd).
_KNOWN_PYAV_MAJORS = ("18",)
_PTR_OFFSET = 3 * ctypes.sizeof(ctypes.c_void_p)  # ob_refcnt, ob_type, __pyx_vtab
_OFORMAT_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)  # av_class, iformat, then oformat


@lru_cache(maxsize=1)
def _libavformat() -> Any | None:
    """The libavformat PyAV loaded (the same handle), or None."""
    import av

    paths: list[str] = []
    try:
        with open("/proc/self/maps") as fh:
            paths = [line.split()[-1] for line in fh if "libavformat" in line and "/" in line]
    except OSError:
        pass
    if not paths:
        root = os.path.dirname(os.path.dirname(av.__file__))
        paths = sorted(glob.glob(os.path.join(root, "av.libs", "libavformat*"))
                       + glob.glob(os.path.join(os.path.dirname(av.__file__), ".dylibs", "libavformat*")))
    if not paths:
        return None
    try:
        lib = ctypes.CDLL(paths[0])
    except OSError:
        return None
    for fn in (lib.av_write_frame, lib.av_interleaved_write_frame):
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
    return lib


def _c_string(address: int) -> bytes | None:
    ptr = ctypes.c_void_p.from_address(address).value
    return ctypes.string_at(ptr) if ptr else None


def format_context(container: Any) -> int | None:
    """The AVFormatContext address of a PyAV mp4 output container, or None when it cannot
    be found and checked safely."""
    import av

    if av.__version__.split(".")[0] not in _KNOWN_PYAV_MAJORS:
        return None
    ctx = ctypes.c_void_p.from_address(id(container) + _PTR_OFFSET).value
    if not ctx or ctx % ctypes.alignment(ctypes.c_void_p):
        return None
    av_class = ctypes.c_void_p.from_address(ctx).value
    if not av_class or _c_string(av_class) != b"AVFormatContext":
        return None
    oformat = ctypes.c_void_p.from_address(ctx + _OFORMAT_OFFSET).value
    if not oformat or _c_string(oformat) != b"mp4":
        return None
    return ctx


class FragmentFlusher:
    """`flush()` writes the packets muxed so far as one fragment (True), or does nothing (False)."""

    def __init__(self, container: Any) -> None:
        lib = _libavformat()
        self._lib = lib
        self._ctx = format_context(container) if lib is not None else None

    @property
    def available(self) -> bool:
        return self._ctx is not None

    def flush(self) -> bool:
        if self._ctx is None:
            return False
        if self._lib.av_interleaved_write_frame(self._ctx, None) < 0:
            return False
        return self._lib.av_write_frame(self._ctx, None) >= 0
