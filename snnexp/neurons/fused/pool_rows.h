// Non-overlapping k x k max-pooling of channels-last rows, one row of windows at a time: what
// max_pool.cpp runs over a whole tensor and leaky_fire.cpp runs on the spikes it has just made
// (the neuron and the pool after it fused).
//
// Values and winners are torch's max_pool2d's: a larger value or a NaN replaces the window's best
// so far, so ties go to the first element of the window in row-major order. The winner is kept as
// one byte per output: its position i*k + j in the window.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace snnexp_pool {

constexpr int64_t BLOCK = 64;  // channels per pass of the general kernel size (stack buffers)

// torch's rule, without a branch (vectorises)
template <typename T>
inline bool takes(T v, T best) { return (v > best) | (v != v); }

// One row of windows: rows = k input rows [k][W][C] (consecutive, row stride W*C) -> out [OW][C]
// and code [OW][C], OW = W / k (columns past the last whole window are not read).
template <typename T>
void pool_band(const T* rows, T* out, uint8_t* code, int64_t W, int64_t C, int64_t k) {
  const int64_t OW = W / k;
  for (int64_t ow = 0; ow < OW; ++ow) {
    T* o = out + ow * C;
    uint8_t* cd = code + ow * C;
    if (k == 2) {  // the common window: its four C-vectors in registers, one pass
      const T* p0 = rows + ow * 2 * C;
      const T *p1 = p0 + C, *p2 = p0 + W * C, *p3 = p2 + C;
#pragma omp simd
      for (int64_t ch = 0; ch < C; ++ch) {  // starting from p0 is starting from -inf and taking p0
        T best = p0[ch], arg = 0;
        bool take = takes(p1[ch], best);
        best = take ? p1[ch] : best, arg = take ? T(1) : arg;
        take = takes(p2[ch], best);
        best = take ? p2[ch] : best, arg = take ? T(2) : arg;
        take = takes(p3[ch], best);
        best = take ? p3[ch] : best, arg = take ? T(3) : arg;
        o[ch] = best;
        cd[ch] = static_cast<uint8_t>(arg);
      }
      continue;
    }
    alignas(64) T best[BLOCK], arg[BLOCK];
    for (int64_t c0 = 0; c0 < C; c0 += BLOCK) {
      const int64_t m = std::min(BLOCK, C - c0);
      for (int64_t ch = 0; ch < m; ++ch) { best[ch] = -std::numeric_limits<T>::infinity(); arg[ch] = 0; }
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          const T* v = rows + (i * W + ow * k + j) * C + c0;
          const T pos = T(i * k + j);
#pragma omp simd
          for (int64_t ch = 0; ch < m; ++ch) {
            const bool take = takes(v[ch], best[ch]);
            best[ch] = take ? v[ch] : best[ch];
            arg[ch] = take ? pos : arg[ch];
          }
        }
      }
#pragma omp simd
      for (int64_t ch = 0; ch < m; ++ch) { o[c0 + ch] = best[ch]; cd[c0 + ch] = static_cast<uint8_t>(arg[ch]); }
    }
  }
}

// The gradient of input row i (0 <= i < k) of a row of windows: g [OW][C], the outputs' gradient, and
// code [OW][C] from pool_band -> gx [W][C]: the winner gets its output's gradient, every other
// element 0 (written once: no zero-fill first). Columns past the last whole window get 0.
template <typename T>
void unpool_row(const T* g, const uint8_t* code, T* gx, int64_t W, int64_t C, int64_t k, int64_t i) {
  const int64_t OW = W / k;
  alignas(64) T arg[BLOCK];
  for (int64_t ow = 0; ow < OW; ++ow) {
    const T* go = g + ow * C;
    const uint8_t* cd = code + ow * C;
    if (k == 2) {  // the common window: both of this row's C-vectors in one pass
      T *e0 = gx + ow * 2 * C, *e1 = e0 + C;
      const T left = T(2 * i), right = T(2 * i + 1);
#pragma omp simd
      for (int64_t ch = 0; ch < C; ++ch) {
        const T at = T(cd[ch]);
        e0[ch] = at == left ? go[ch] : T(0);
        e1[ch] = at == right ? go[ch] : T(0);
      }
      continue;
    }
    for (int64_t c0 = 0; c0 < C; c0 += BLOCK) {
      const int64_t m = std::min(BLOCK, C - c0);
#pragma omp simd
      for (int64_t ch = 0; ch < m; ++ch) arg[ch] = T(cd[c0 + ch]);
      for (int64_t j = 0; j < k; ++j) {
        T* e = gx + (ow * k + j) * C + c0;
        const T pos = T(i * k + j);
#pragma omp simd
        for (int64_t ch = 0; ch < m; ++ch) e[ch] = arg[ch] == pos ? go[c0 + ch] : T(0);
      }
    }
  }
  std::fill(gx + OW * k * C, gx + W * C, T(0));  // past the last window
}

}  // namespace snnexp_pool
