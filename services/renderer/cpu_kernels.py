"""C++/OpenMP CPU kernels for the hash grid (and ray marching), built on first use.

Why a small C++ library over ctypes rather than `torch.utils.cpp_extension`: it needs
neither ninja nor the torch headers, so it builds in about a second with the system
g++; it links the libgomp that torch itself loaded (same soname), so there is one
OpenMP runtime in the process. The shared object goes to a cache directory
(``$TALKING_HEAD_EXT_DIR`` or ``~/.cache/talking-head/ext``), never into the repo,
keyed by a hash of the source, flags, compiler and CPU; when the build or the load
fails, `available()` is False and callers use the plain-PyTorch reference.

The arithmetic mirrors `hashgrid.grid_encode_reference` operation by operation in
float32 (compiled with ``-ffp-contract=off`` so no fused multiply-adds change the
rounding); only gradient sums are accumulated in a different order.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

if TYPE_CHECKING:
    from services.renderer.hashgrid import GridSpec

log = logging.getLogger(__name__)

_SOURCE = r"""
#include <cstdint>
#include <cmath>
#include <cstring>
#include <omp.h>

namespace {

// Per-level constants. `mode` says how torch-ngp's `index % rows` is computed here
// without an integer division when it can be: 0 = dense level whose index is always
// < rows (no-op), 1 = rows is a power of two (mask), 2 = general modulo.
struct Levels {
  const float* scales;     // [L]
  const int64_t* rows;     // [L]
  const int64_t* offsets;  // [L]
  const int64_t* strides;  // [L, D] (0 = axis not indexed)
  const uint8_t* hashed;   // [L]
  const uint8_t* mode;     // [L]
};

// Strided views: point b's coordinate d is x[b * xs + ax[d]]; its features go to
// out[b * os + l * C + c]; its incoming gradient is grad[b * gs + l * C + c]. This lets
// the three planes of a tri-plane read one [N, 3] array and write one [N, 3LC] array.
struct View {
  const float* x;
  int64_t xs;
  int ax[3];
};

constexpr int64_t BLOCK = 256;  // points per block: a block's features stay in L1/L2

template <int D>
struct Level {
  uint32_t rows, mask;
  int mode;
  bool hashed;
  uint32_t st[D];
  float scale;
  int64_t off;

  Level(const Levels& lv, int l) {
    rows = (uint32_t)lv.rows[l];
    mask = rows - 1;
    mode = lv.mode[l];
    hashed = lv.hashed[l];
    for (int d = 0; d < D; ++d) st[d] = (uint32_t)lv.strides[l * D + d];
    scale = lv.scales[l];
    off = lv.offsets[l];
  }

  inline uint32_t index(const uint32_t* c) const {
    uint32_t idx = 0;
    if (hashed) {
      const uint32_t P[3] = {1u, 2654435761u, 805459861u};
      for (int d = 0; d < D; ++d) idx ^= c[d] * P[d];
    } else {
      for (int d = 0; d < D; ++d) idx += c[d] * st[d];
    }
    if (mode == 0) return idx;
    if (mode == 1) return idx & mask;
    return idx % rows;
  }

  // pos = u * scale + 0.5 in two roundings (as the reference), corner and fraction
  inline void locate(const float* u, float* fr, uint32_t* c0) const {
    for (int d = 0; d < D; ++d) {
      float pos = u[d] * scale;
      pos = pos + 0.5f;
      float fl = std::floor(pos);
      fr[d] = pos - fl;
      c0[d] = (uint32_t)fl;
    }
  }
};

template <int D>
inline bool load(const View& v, int64_t b, float bound, float* u) {
  bool in = true;
  const float two_b = 2.0f * bound;
  for (int d = 0; d < D; ++d) {
    u[d] = (v.x[b * v.xs + v.ax[d]] + bound) / two_b;
    if (!(u[d] >= 0.0f && u[d] <= 1.0f)) in = false;
  }
  return in;
}

// u for a block of points; inside[i] = all coordinates in [0, 1]
template <int D>
inline void load_block(const View& v, int64_t b0, int64_t n, float bound, float* u, uint8_t* inside) {
  for (int64_t i = 0; i < n; ++i) inside[i] = load<D>(v, b0 + i, bound, u + i * D);
}

template <int D, int C>
void fwd(View xv, const float* emb, int64_t N, int L, Levels lv, float bound, float* out, int64_t os, int nth) {
  const int64_t nblocks = (N + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(nth) schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t b0 = blk * BLOCK, n = (N - b0 < BLOCK) ? N - b0 : BLOCK;
    float u[BLOCK * D];
    uint8_t inside[BLOCK];
    load_block<D>(xv, b0, n, bound, u, inside);
    for (int l = 0; l < L; ++l) {  // level-major inside the block: one table hot at a time
      const Level<D> lev(lv, l);
      const float* e0 = emb + lev.off * C;
      for (int64_t i = 0; i < n; ++i) {
        float* o = out + (b0 + i) * os + l * C;
        if (!inside[i]) {  // outside [0, 1]: zero
          for (int c = 0; c < C; ++c) o[c] = 0.0f;
          continue;
        }
        float fr[D];
        uint32_t c0[D];
        lev.locate(u + i * D, fr, c0);
        float acc[C];
        for (int c = 0; c < C; ++c) acc[c] = 0.0f;
        for (int bits = 0; bits < (1 << D); ++bits) {
          float w = 1.0f;
          uint32_t cc[D];
          for (int d = 0; d < D; ++d) {
            const bool hi = (bits >> d) & 1;
            w = w * (hi ? fr[d] : 1.0f - fr[d]);
            cc[d] = c0[d] + (hi ? 1u : 0u);
          }
          const float* e = e0 + (int64_t)lev.index(cc) * C;
          for (int c = 0; c < C; ++c) acc[c] = acc[c] + w * e[c];
        }
        for (int c = 0; c < C; ++c) o[c] = acc[c];
      }
    }
  }
}

// Table gradient. Thread t owns levels t, t + T, ...: it alone writes their rows, so
// there are no atomics and the sums are deterministic. Points go in blocks so the
// block's gradient rows are read from cache by every level pass.
template <int D, int C>
void bwd_table(const float* grad, int64_t gs, View xv, int64_t N, int L, Levels lv, float bound, float* gemb, int nth) {
  const int64_t nblocks = (N + BLOCK * 8 - 1) / (BLOCK * 8);
#pragma omp parallel num_threads(nth)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    float u[BLOCK * 8 * D];
    uint8_t inside[BLOCK * 8];
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t b0 = blk * BLOCK * 8, n = (N - b0 < BLOCK * 8) ? N - b0 : BLOCK * 8;
      if (tid >= L) break;
      load_block<D>(xv, b0, n, bound, u, inside);
      for (int l = tid; l < L; l += nt) {
        const Level<D> lev(lv, l);
        float* g0 = gemb + lev.off * C;
        for (int64_t i = 0; i < n; ++i) {
          if (!inside[i]) continue;
          float fr[D];
          uint32_t c0[D];
          lev.locate(u + i * D, fr, c0);
          const float* g = grad + (b0 + i) * gs + l * C;
          for (int bits = 0; bits < (1 << D); ++bits) {
            float w = 1.0f;
            uint32_t cc[D];
            for (int d = 0; d < D; ++d) {
              const bool hi = (bits >> d) & 1;
              w = w * (hi ? fr[d] : 1.0f - fr[d]);
              cc[d] = c0[d] + (hi ? 1u : 0u);
            }
            float* ge = g0 + (int64_t)lev.index(cc) * C;
            for (int c = 0; c < C; ++c) ge[c] += w * g[c];
          }
        }
      }
    }
  }
}

// Input gradient: d out / d u_d = scale * sum over the other axes' corner weights of
// (right - left), then / (2 bound) for the normalisation. Parallel over point blocks;
// ADDED into gx[b * xs + ax[d]] (gx has x's layout), so planes sharing an axis sum.
template <int D, int C>
void bwd_input(const float* grad, int64_t gs, View xv, const float* emb, int64_t N, int L, Levels lv, float bound, float* gx, int nth) {
  const int64_t nblocks = (N + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(nth) schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t b0 = blk * BLOCK, n = (N - b0 < BLOCK) ? N - b0 : BLOCK;
    float u[BLOCK * D], gu[BLOCK * D];
    uint8_t inside[BLOCK];
    load_block<D>(xv, b0, n, bound, u, inside);
    for (int64_t k = 0; k < n * D; ++k) gu[k] = 0.0f;
    for (int l = 0; l < L; ++l) {
      const Level<D> lev(lv, l);
      const float* e0 = emb + lev.off * C;
      for (int64_t i = 0; i < n; ++i) {
        if (!inside[i]) continue;
        float fr[D];
        uint32_t c0[D];
        lev.locate(u + i * D, fr, c0);
        const float* g = grad + (b0 + i) * gs + l * C;
        for (int gd = 0; gd < D; ++gd) {
          float acc = 0.0f;
          for (int bits = 0; bits < (1 << (D - 1)); ++bits) {
            float w = lev.scale;
            uint32_t cc[D];
            for (int nd = 0; nd < D - 1; ++nd) {
              const int d = nd >= gd ? nd + 1 : nd;
              const bool hi = (bits >> nd) & 1;
              w = w * (hi ? fr[d] : 1.0f - fr[d]);
              cc[d] = c0[d] + (hi ? 1u : 0u);
            }
            cc[gd] = c0[gd];
            const float* el = e0 + (int64_t)lev.index(cc) * C;
            cc[gd] = c0[gd] + 1u;
            const float* er = e0 + (int64_t)lev.index(cc) * C;
            for (int c = 0; c < C; ++c) acc += w * (er[c] - el[c]) * g[c];
          }
          gu[i * D + gd] += acc;
        }
      }
    }
    const float two_b = 2.0f * bound;
    for (int64_t i = 0; i < n; ++i) {
      if (!inside[i]) continue;
      for (int d = 0; d < D; ++d) gx[(b0 + i) * xv.xs + xv.ax[d]] += gu[i * D + d] / two_b;
    }
  }
}

template <int D>
int dispatch_c(int op, int C, const float* a, int64_t as, View xv, const float* emb, int64_t N, int L, Levels lv,
               float bound, float* out, int64_t os, int nth) {
#define TH_CASE(CC)                                                              \
  case CC:                                                                       \
    if (op == 0) fwd<D, CC>(xv, emb, N, L, lv, bound, out, os, nth);             \
    else if (op == 1) bwd_table<D, CC>(a, as, xv, N, L, lv, bound, out, nth);    \
    else bwd_input<D, CC>(a, as, xv, emb, N, L, lv, bound, out, nth);            \
    return 0;
  switch (C) {
    TH_CASE(1)
    TH_CASE(2)
    TH_CASE(4)
    TH_CASE(8)
    default:
      return -1;
  }
#undef TH_CASE
}

}  // namespace

extern "C" {

// op: 0 forward (out: features, row stride os), 1 table gradient (out [rows, C],
// accumulated), 2 input gradient (out: x-shaped, accumulated). `a` is the incoming
// gradient (row stride as) for 1 and 2. x is read as x[b * xs + ax[d]].
int th_grid(int op, int D, int C, const float* a, int64_t as, const float* x, int64_t xs, const int32_t* ax,
            const float* emb, int64_t N, int L, const float* scales, const int64_t* rows, const int64_t* offsets,
            const int64_t* strides, const uint8_t* hashed, const uint8_t* mode, float bound, float* out, int64_t os,
            int nth) {
  Levels lv{scales, rows, offsets, strides, hashed, mode};
  View xv{x, xs, {ax[0], ax[1], D > 2 ? ax[2] : 0}};
  if (D == 2) return dispatch_c<2>(op, C, a, as, xv, emb, N, L, lv, bound, out, os, nth);
  if (D == 3) return dispatch_c<3>(op, C, a, as, xv, emb, N, L, lv, bound, out, os, nth);
  return -1;
}

// Fixed-step ray marching through a boolean occupancy grid over an AABB: for every
// ray, candidates t_k = t0 + (k + jitter) * dt for t_k < t1; keep the first `max_s`
// whose cell is occupied. Writes t [R, max_s] (unused slots untouched) and counts [R].
int th_march(const float* o, const float* dir, const float* t0, const float* t1, const float* jitter,
             int64_t R, const uint8_t* occ, int gx, int gy, int gz, const float* aabb, float dt,
             int max_s, float* t_out, int32_t* count, int nth) {
  const float sx = (float)gx / (aabb[3] - aabb[0]);
  const float sy = (float)gy / (aabb[4] - aabb[1]);
  const float sz = (float)gz / (aabb[5] - aabb[2]);
#pragma omp parallel for num_threads(nth) schedule(dynamic, 256)
  for (int64_t r = 0; r < R; ++r) {
    int n = 0;
    const float a = t0[r], e = t1[r], j = jitter[r];
    const float ox = o[3 * r], oy = o[3 * r + 1], oz = o[3 * r + 2];
    const float dx = dir[3 * r], dy = dir[3 * r + 1], dz = dir[3 * r + 2];
    for (int64_t k = 0; n < max_s; ++k) {
      float kk = (float)k;
      kk = kk + j;
      float t = kk * dt;
      t = a + t;
      if (!(t < e)) break;
      float px = dx * t; px = ox + px;
      float py = dy * t; py = oy + py;
      float pz = dz * t; pz = oz + pz;
      float fx = (px - aabb[0]) * sx, fy = (py - aabb[1]) * sy, fz = (pz - aabb[2]) * sz;
      int ix = (int)std::floor(fx), iy = (int)std::floor(fy), iz = (int)std::floor(fz);
      ix = ix < 0 ? 0 : (ix >= gx ? gx - 1 : ix);
      iy = iy < 0 ? 0 : (iy >= gy ? gy - 1 : iy);
      iz = iz < 0 ? 0 : (iz >= gz ? gz - 1 : iz);
      if (occ[((int64_t)ix * gy + iy) * gz + iz]) t_out[r * max_s + n++] = t;
    }
    count[r] = n;
  }
  return 0;
}

}  // extern "C"
"""

_FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fPIC", "-shared", "-std=c++17"]
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_failed = False


def cache_dir() -> Path:
    env = os.environ.get("TALKING_HEAD_EXT_DIR")
    return Path(env) if env else Path.home() / ".cache" / "talking-head" / "ext"


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    model = next((ln for ln in text.splitlines() if ln.startswith("model name")), "")
    return model + flags


def _compiler() -> str | None:
    cxx = os.environ.get("CXX", "g++")
    return shutil.which(cxx)


def _build() -> ctypes.CDLL:
    cxx = _compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++ or $CXX) on PATH")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256("\0".join([_SOURCE, " ".join(_FLAGS), version, _cpu_signature()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"th_renderer_cpu_{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            src = Path(tmp) / "kernels.cpp"
            src.write_text(_SOURCE)
            out = Path(tmp) / target.name
            proc = subprocess.run([cxx, *_FLAGS, str(src), "-o", str(out)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"compiling the CPU kernels failed: {proc.stderr.strip()[-2000:]}")
            os.replace(out, target)  # atomic: concurrent builders agree on one file
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
