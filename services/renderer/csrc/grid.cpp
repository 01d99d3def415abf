// Hash-grid encoding on the CPU: forward, table gradient and input gradient, for
// torch-ngp's layout (see services/renderer/hashgrid.py). The arithmetic mirrors
// `grid_encode_reference` operation by operation in float32; the loader builds with
// -ffp-contract=off so no fused multiply-adds change the rounding.

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

}  // extern "C"
