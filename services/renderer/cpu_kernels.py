"""C++/OpenMP CPU kernels for the hash grid (and ray marching), built on first use.

The sources are `csrc/*.cpp` next to this file (`grid.cpp`, `march.cpp`), compiled
together into one shared object (`services.common.native`: cached outside the repo, rebuilt
when a source changes) and called through ctypes. Why ctypes rather than
`torch.utils.cpp_extension`: it needs neither ninja nor the torch headers, so it builds
in a few seconds with the system g++; it links the libgomp that torch itself loaded
(same soname), so there is one OpenMP runtime in the process. When the build or the load
fails, `available()` is False and callers use the plain-PyTorch reference.

The arithmetic mirrors `hashgrid.grid_encode_reference` operation by operation in
float32 (compiled with ``-ffp-contract=off`` so no fused multiply-adds change the
rounding); only gradient sums are accumulated in a different order.
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from services.common.native import build_shared

if TYPE_CHECKING:
    from services.renderer.hashgrid import GridSpec

log = logging.getLogger(__name__)

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = ("grid.cpp", "march.cpp")
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fPIC", "-shared", "-std=c++17"]
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_failed = False


def _build() -> ctypes.CDLL:
    target = build_shared("th_renderer_cpu", [_CSRC / name for name in _SOURCES], _FLAGS)
    lib = ctypes.CDLL(str(target))
    p, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float
    lib.th_grid.argtypes = [i32, i32, i32, p, i64, p, i64, p, p, i64, i32, p, p, p, p, p, p, f32, p, i64, i32]
    lib.th_grid.restype = i32
    lib.th_march.argtypes = [p, p, p, p, p, i64, p, i32, i32, i32, p, f32, i32, p, p, i32]
    lib.th_march.restype = i32
    return lib


def load() -> ctypes.CDLL | None:
    """The kernel library, built on first call; None when it cannot be built."""
    global _lib, _failed
    if _lib is not None or _failed:
        return _lib
    with _lock:
        if _lib is None and not _failed:
            if os.environ.get("TALKING_HEAD_NO_EXT"):
                _failed = True
                return None
            try:
                _lib = _build()
            except Exception as exc:  # noqa: BLE001 - any failure means: use the reference
                log.warning("CPU renderer kernels unavailable (%s); using the PyTorch reference", exc)
                _failed = True
    return _lib


def available() -> bool:
    return load() is not None


def supports_grid(input_dim: int, level_dim: int) -> bool:
    return input_dim in (2, 3) and level_dim in (1, 2, 4, 8)


def _threads(n: int) -> int:
    return 1 if n < 2048 else max(1, torch.get_num_threads())


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _call_grid(
    op: int,
    spec: GridSpec,
    a: Tensor | None,
    x: Tensor,
    axes: tuple[int, ...],
    emb: Tensor,
    out: Tensor,
    out_col: int = 0,
) -> None:
    """One kernel call. x [N, K] contiguous read at columns `axes`; for op 0 the
    features go to out[:, out_col : out_col + L*C]; for ops 1/2 `a` is the incoming
    gradient, read from its columns out_col onwards."""
    lib = load()
    assert lib is not None
    lv = _levels(spec)
    ax = (ctypes.c_int32 * 3)(*(list(axes) + [0] * (3 - len(axes))))
    n = x.shape[0]
    a_ptr = None if a is None else a.data_ptr() + out_col * a.element_size()
    out_ptr = out.data_ptr() + (out_col * out.element_size() if op == 0 else 0)
    rc = lib.th_grid(
        op, spec.input_dim, spec.level_dim, a_ptr, 0 if a is None else a.stride(0), x.data_ptr(), x.stride(0), ax,
        emb.data_ptr(), n, spec.num_levels, _ptr(lv["scales"]), _ptr(lv["rows"]), _ptr(lv["offsets"]),
        _ptr(lv["strides"]), _ptr(lv["hashed"]), _ptr(lv["mode"]), float(spec.bound), out_ptr, out.stride(0), _threads(n),
    )
    if rc != 0:
        raise RuntimeError(f"th_grid op {op} unsupported for D={spec.input_dim}, C={spec.level_dim}")


_level_cache: dict[GridSpec, dict[str, Tensor]] = {}


def _mod_mode(spec: GridSpec, level: int) -> int:
    """How the kernel reduces an index modulo the level's rows: 0 not needed (a dense
    level whose whole grid fits: index < (R+1)^D <= rows), 1 power-of-two mask, 2 %."""
    rows = spec.rows[level]
    if not spec.hashed[level] and all(s > 0 for s in spec.strides[level]):
        r1 = spec.strides[level][1] if spec.input_dim > 1 else rows
        if r1 ** spec.input_dim <= rows:
            return 0
    return 1 if rows & (rows - 1) == 0 else 2


def _levels(spec: GridSpec) -> dict[str, Tensor]:
    lv = _level_cache.get(spec)
    if lv is None:
        lv = spec.level_tensors("cpu")
        lv["hashed"] = lv["hashed"].to(torch.uint8)
        lv["mode"] = torch.tensor([_mod_mode(spec, level) for level in range(spec.num_levels)], dtype=torch.uint8)
        lv = {k: v.contiguous() for k, v in lv.items()}
        _level_cache[spec] = lv
    return lv


class _MultiGridFunction(torch.autograd.Function):
    """Several grids of one spec over column subsets of x, features concatenated:
    one [N, G*L*C] output written in place (a tri-plane is G=3 2D grids)."""

    @staticmethod
    def forward(ctx, x: Tensor, spec: GridSpec, axes: tuple[tuple[int, ...], ...], *tables: Tensor) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        tables = tuple(t.contiguous() for t in tables)
        width = spec.output_dim
        out = torch.empty(x.shape[0], width * len(tables), dtype=torch.float32)
        for g, (emb, ax) in enumerate(zip(tables, axes)):
            _call_grid(0, spec, None, x, ax, emb, out, g * width)
        ctx.save_for_backward(x, *tables)
        ctx.spec, ctx.axes = spec, axes
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, *tables = ctx.saved_tensors
        spec: GridSpec = ctx.spec
        grad = grad.contiguous().float()
        width = spec.output_dim
        gx = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        gtables: list[Tensor | None] = []
        for g, (emb, ax) in enumerate(zip(tables, ctx.axes)):
            if ctx.needs_input_grad[3 + g]:
                gemb = torch.zeros_like(emb)
                _call_grid(1, spec, grad, x, ax, emb, gemb, g * width)
                gtables.append(gemb)
            else:
                gtables.append(None)
            if gx is not None:
                _call_grid(2, spec, grad, x, ax, emb, gx, g * width)
        return (gx, None, None, *gtables)


def grid_encode(x: Tensor, emb: Tensor, spec: GridSpec) -> Tensor:
    """Fast CPU twin of `hashgrid.grid_encode_reference` (float32, C in 1/2/4/8)."""
    return _MultiGridFunction.apply(x, spec, (tuple(range(spec.input_dim)),), emb)


def multi_grid_encode(x: Tensor, tables: list[Tensor], spec: GridSpec, axes: list[tuple[int, ...]]) -> Tensor:
    """cat([grid_encode(x[:, axes[g]], tables[g], spec) for g], dim=1), in one pass
    over one output buffer (no column copies, no concatenation)."""
    return _MultiGridFunction.apply(x, spec, tuple(tuple(a) for a in axes), *tables)


def march(
    rays_o: Tensor,
    rays_d: Tensor,
    t_near: Tensor,
    t_far: Tensor,
    jitter: Tensor,
    occ: Tensor,
    aabb: Tensor,
    dt: float,
    max_samples: int,
) -> tuple[Tensor, Tensor]:
    """C twin of `volume.march_reference`: (t [R, S] with unused slots = t_far, count [R])."""
    lib = load()
    assert lib is not None
    r = rays_o.shape[0]
    t = t_far[:, None].expand(r, max_samples).contiguous().float()
    count = torch.zeros(r, dtype=torch.int32)
    args = [x.contiguous().float() for x in (rays_o, rays_d, t_near, t_far, jitter, aabb)]
    occ_u8 = occ.contiguous().view(torch.uint8) if occ.dtype == torch.bool else occ.contiguous().to(torch.uint8)
    gx, gy, gz = occ.shape
    lib.th_march(
        _ptr(args[0]), _ptr(args[1]), _ptr(args[2]), _ptr(args[3]), _ptr(args[4]), r, _ptr(occ_u8), gx, gy, gz,
        _ptr(args[5]), float(dt), max_samples, _ptr(t), _ptr(count), _threads(r),
    )
    return t, count.long()
