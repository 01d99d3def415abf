// Ray marching on the CPU: fixed-step samples kept where an occupancy grid is set,
// the float32 twin of `volume.march_reference` (each step rounded as there).

#include <cmath>
#include <cstdint>

extern "C" {

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
