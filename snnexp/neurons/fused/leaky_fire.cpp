// Fused IF/LIF/PLIF on the CPU: all T steps of one layer in one pass over memory.
//
//   h_t = a*v_{t-1} + b*x_t + c;   s_t = [h_t >= th];   v_t = reset(h_t, s_t)
//
// reset: "subtract" (v = h - s*th) or "hard" (v = s ? v_reset : h). The forward reads x and
// writes s (and h, the only thing the backward needs); per chunk of elements v stays in cache, so
// a time step costs one read and two writes whatever T is. The backward walks t downwards over
// the same chunks and recomputes s, v_{t-1} and the surrogate from h. Elements are processed
// in storage order, so NCHW and channels-last tensors cost the same: x's time slices, v0 and
// every output share one layout (the wrapper copies any argument that does not).
// The Python reference is snnexp/neurons/fused/torch_fire.py; tests compare both with the loop
// of step functions in values and gradients.
//
// With pool_k > 0, leaky_forward also max-pools the spikes (k x k windows, channels-last,
// pool_rows.h) as each band of k rows is made, and writes only the pooled spikes and their
// winners: the full-size spikes never reach memory, nor, in the backward, their gradient (made
// band by band from the pooled gradient and the winners). csnn's neuron before the pool
// (SpikingJelly's and Fang et al.'s order) then moves about half the bytes of the neuron and the
// pool run one after the other.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <vector>

#include "pool_rows.h"

#if defined(__x86_64__) && defined(__GLIBC__)
// glibc's vector math library (libmvec) has SIMD variants of exp; declaring them lets the
// vectorizer call those in the sigmoid surrogate (math.h only does so under -ffast-math).
extern "C" {
__attribute__((__simd__("notinbranch"))) double exp(double) noexcept;
__attribute__((__simd__("notinbranch"))) float expf(float) noexcept;
}
#define SNNEXP_VECTOR_EXP 1
#endif

namespace {

inline float vexp(float x) { return expf(x); }
inline double vexp(double x) { return exp(x); }

constexpr int64_t BLOCK = 512;    // elements per inner block of the backward: its buffers stay in L1
constexpr int64_t CHUNK = 32768;  // elements per task: the running v (or gv) stays in L2

// The five surrogates of snnexp/neurons/surrogate.py, in its order; out = g'(h - th).
enum Surrogate : int64_t { ATAN = 0, SIGMOID = 1, FAST_SIGMOID = 2, TRIANGLE = 3, RECTANGLE = 4 };

template <typename T>
void surrogate_grad(int64_t kind, T alpha, const T* h, T th, T* out, int64_t n) {
  switch (kind) {
    case ATAN: {
      const T k = T(M_PI / 2) * alpha, half = alpha / 2;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T u = (h[i] - th) * k;
        out[i] = T(1) / (T(1) + u * u) * half;
      }
      break;
    }
    case SIGMOID:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T sig = T(1) / (T(1) + vexp(-alpha * (h[i] - th)));
        out[i] = alpha * sig * (T(1) - sig);
      }
      break;
    case FAST_SIGMOID: {
      const T half = alpha / 2;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T d = T(1) + alpha * std::abs(h[i] - th);
        out[i] = half / (d * d);
      }
      break;
    }
    case TRIANGLE:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) out[i] = alpha * std::max(T(0), T(1) - alpha * std::abs(h[i] - th));
      break;
    default: {  // RECTANGLE
      const T half_width = T(0.5) / alpha;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) out[i] = std::abs(h[i] - th) < half_width ? alpha : T(0);
    }
  }
}

// dst[0, n) = src[0, n), bypassing the cache where the CPU can: h is read again only in the
// backward pass, long after the layers above have used the cache, so it should not evict them
// (and a streaming store does not read the line first).
template <typename T>
void stream_copy(T* dst, const T* src, int64_t n) {
#if defined(__AVX512F__) || defined(__AVX__)
#if defined(__AVX512F__)
  constexpr int64_t VBYTES = 64;
#else
  constexpr int64_t VBYTES = 32;
#endif
  constexpr int64_t W = VBYTES / sizeof(T);
  int64_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % VBYTES != 0; ++i) dst[i] = src[i];
  for (; i + W <= n; i += W) {
    float* fd = reinterpret_cast<float*>(dst + i);
    double* dd = reinterpret_cast<double*>(dst + i);
    const float* fs = reinterpret_cast<const float*>(src + i);
    const double* ds = reinterpret_cast<const double*>(src + i);
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 4) _mm512_stream_ps(fd, _mm512_loadu_ps(fs));
    else _mm512_stream_pd(dd, _mm512_loadu_pd(ds));
#else
    if constexpr (sizeof(T) == 4) _mm256_stream_ps(fd, _mm256_loadu_ps(fs));
    else _mm256_stream_pd(dd, _mm256_loadu_pd(ds));
#endif
  }
  for (; i < n; ++i) dst[i] = src[i];
#else
  std::copy(src, src + n, dst);
#endif
}

inline void stream_fence() {
#if defined(__AVX512F__) || defined(__AVX__)
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before the task ends
#endif
}

// The max-pool fused after the neuron: its geometry and where its step-major buffers are. k = 0: none.
// A chunk then holds whole rows of windows (bands of k sensor rows), so it pools on its own.
template <typename T>
struct Pool {
  int64_t k = 0, W = 0, C = 0, step = 0;  // step: pooled elements per time step (M / k^2)
  T* out = nullptr;                       // forward: pooled spikes [steps][step]
  uint8_t* code = nullptr;                // winners [steps][step]: written forward, read backward
  const T* grad = nullptr;                // backward: the pooled spikes' gradient [steps][step]
  int64_t band() const { return k * W * C; }         // input elements of one row of windows
  int64_t out_band() const { return (W / k) * C; }   // its pooled elements
};

template <typename T, bool SOFT>
inline T reset(T h, T th, T v_reset) {
  return h >= th ? (SOFT ? h - th : v_reset) : h;
}

// The membrane before the spike: written once, so the forward and the backward's recompute give
// the same bits.
template <typename T>
inline T charge(T v, T x, T a, T b, T c) {
  return (b * x + c) + a * v;
}

// h of elements [i0, i0 + n) for all steps, into h_local [steps, n], from x and v0: what the
// forward would have saved. The backward's alternative to reading a saved h (multi-step runs: x
// and v0 are kept instead, one fewer full-size tensor written and held).
template <typename T, bool SOFT>
void recompute_h(const T* x, const T* v0, T* h_local, T* v, int64_t steps, int64_t M, int64_t i0, int64_t n, T a,
                 T b, T c, T th, T v_reset) {
  std::copy(v0 + i0, v0 + i0 + n, v);
  for (int64_t t = 0; t < steps; ++t) {
    const T* xt = x + t * M + i0;
    T* ht = h_local + t * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const T hv = charge(v[i], xt[i], a, b, c);
      ht[i] = hv;
      v[i] = reset<T, SOFT>(hv, th, v_reset);
    }
  }
}

// One chunk of elements [i0, i0 + n) over all steps; v lives in v_last (L2-resident per chunk;
// it may be v0 itself, updated in place; the first step reads v0 where it is, rather than copy
// it: the copy cost as much as the step), and each step streams through a long contiguous
// stretch of x, s and h, in L1-sized blocks.
// With a pool, each step goes through the chunk band by band: a band's spikes go to a buffer that
// stays in L1 (k rows: 7 KB for csnn's 28 x 28 x 32) and are pooled from there.
template <typename T, bool SOFT, bool SAVE_H>
void forward_chunk(const T* x, const T* v0, T* s, T* h, T* v_last, int64_t steps, int64_t M, int64_t i0,
                   int64_t n, T a, T b, T c, T th, T v_reset, const Pool<T>& pool) {
  alignas(64) T h_buf[BLOCK];
  const int64_t seg = pool.k ? pool.band() : n;
  const std::unique_ptr<T[]> s_band(pool.k ? new T[seg] : nullptr);  // uninitialised: no zeroing pass
  T* v_chunk = v_last + i0;
  for (int64_t t = 0; t < steps; ++t) {
    const T* v_from = t == 0 ? v0 + i0 : v_chunk;
    for (int64_t b0 = 0; b0 < n; b0 += seg) {
      for (int64_t j0 = b0; j0 < b0 + seg; j0 += BLOCK) {
        const int64_t m = std::min(BLOCK, b0 + seg - j0), k0 = t * M + i0 + j0;
        const T* xt = x + k0;
        const T* v_in = v_from + j0;
        T* st = pool.k ? s_band.get() + (j0 - b0) : s + k0;
        T* v = v_chunk + j0;
#pragma omp simd
        for (int64_t i = 0; i < m; ++i) {  // v_in may be v: element i is read before it is written
          const T hv = charge(v_in[i], xt[i], a, b, c);
          st[i] = hv >= th ? T(1) : T(0);
          if (SAVE_H) h_buf[i] = hv;
          v[i] = reset<T, SOFT>(hv, th, v_reset);
        }
        if (SAVE_H) stream_copy(h + k0, h_buf, m);
      }
      if (pool.k) {
        const int64_t at = t * pool.step + (i0 + b0) / seg * pool.out_band();
        snnexp_pool::pool_band(s_band.get(), pool.out + at, pool.code + at, pool.W, pool.C, pool.k);
      }
    }
  }
  if (SAVE_H) stream_fence();
}

// Gradient of everything upstream w.r.t. h_t (gh), from the spike's gradient gs and the next
// membrane's gv: gh = gs*sg + gv*dv_t/dh_t, the reset's derivative taken through the spike
// (its surrogate sg) unless detached. COEF: also accumulate the gradients of a, b, c and th.
// gv lives in gv0 for the chunk; each step goes through the chunk in L1-sized blocks. With a pool,
// band by band: gs is made for a band (in L1) from the pooled gradient and the winners.
template <typename T, bool SOFT, bool DETACH, bool COEF>
// h: element i of step t at h[t * h_stride + i - h_origin] (the whole saved h: h_stride = M and
// h_origin = 0; a chunk's recomputed h: its own stride and first element).
void backward_chunk(const T* gs, int64_t gs_step, bool gs_broadcast, const T* gv_last, const T* h, int64_t h_stride,
                    int64_t h_origin, const T* v0, const T* x, T* gx, T* gv0, int64_t steps, int64_t M, int64_t i0,
                    int64_t n, T a, T b, T th, T v_reset, int64_t surrogate, T alpha, double* acc,
                    const Pool<T>& pool) {
  alignas(64) T sg[BLOCK], gs_buf[BLOCK], v_prev[BLOCK], zeros[BLOCK], sink[BLOCK], gv_buf[BLOCK];
  const int64_t seg = pool.k ? pool.band() : n;
  // gv between steps (cache-resident; the last goes out streamed), and a band's gs: uninitialised
  const std::unique_ptr<T[]> gv_chunk(steps > 1 ? new T[n] : nullptr), gs_band(pool.k ? new T[seg] : nullptr);
  std::fill(zeros, zeros + BLOCK, T(0));  // an absent input (no gv_last; x when b needs no gradient)
  double acc_a = 0, acc_b = 0, acc_c = 0, acc_th = 0;
  for (int64_t t = steps - 1; t >= 0; --t) {
    for (int64_t b0 = 0; b0 < n; b0 += seg) {
      if (pool.k) {
        const int64_t at = t * pool.step + (i0 + b0) / seg * pool.out_band(), row = pool.W * pool.C;
        for (int64_t i = 0; i < pool.k; ++i)
          snnexp_pool::unpool_row(pool.grad + at, pool.code + at, gs_band.get() + i * row, pool.W, pool.C, pool.k, i);
      }
      for (int64_t j0 = b0; j0 < b0 + seg; j0 += BLOCK) {
        const int64_t m = std::min(BLOCK, b0 + seg - j0), k0 = t * M + i0 + j0;
        const T* ht = h + t * h_stride + i0 + j0 - h_origin;
        const T* gv_in = t < steps - 1 ? gv_chunk.get() + j0 : gv_last ? gv_last + i0 + j0 : zeros;
        T* gv_out = t > 0 ? gv_chunk.get() + j0 : gv_buf;
        surrogate_grad<T>(surrogate, alpha, ht, th, sg, m);
        const T* gst = gs_buf;
        if (pool.k) gst = gs_band.get() + (j0 - b0);
        else if (!gs) std::fill(gs_buf, gs_buf + m, T(0));
        else if (gs_broadcast) std::fill(gs_buf, gs_buf + m, gs[t * gs_step]);
        else gst = gs + t * gs_step + i0 + j0;
        T* gxt = gx ? gx + k0 : sink;
        const T* xt = COEF && x ? x + k0 : zeros;
        if (COEF) {
          if (t == 0) std::copy(v0 + i0 + j0, v0 + i0 + j0 + m, v_prev);
          else for (int64_t i = 0; i < m; ++i) v_prev[i] = reset<T, SOFT>(ht[i - h_stride], th, v_reset);
        }
        T blk_a = 0, blk_b = 0, blk_c = 0, blk_th = 0;  // this block's sums, in T: no conversions per element
  #pragma omp simd reduction(+ : blk_a, blk_b, blk_c, blk_th)
        for (int64_t i = 0; i < m; ++i) {
          const T hv = ht[i], g = gst[i], d = sg[i], gvi = gv_in[i];
          const bool spike = hv >= th;
          T gh;
          if (SOFT && DETACH) gh = gvi + g * d;                       // dv/dh = 1
          else if (SOFT) gh = gvi + d * (g - th * gvi);               // dv/dh = 1 - th*sg
          else if (DETACH) gh = (spike ? T(0) : gvi) + g * d;         // dv/dh = 1 - s
          else gh = (spike ? T(0) : gvi) + d * (g + gvi * (v_reset - hv));  // 1 - s + (v_reset - h)*sg
          if (COEF) {
            T dv_dth = SOFT && spike ? T(-1) : T(0);  // ds/dth = -sg; dv/dth through the reset
            if (!DETACH) dv_dth += SOFT ? th * d : (hv - v_reset) * d;
            blk_th += gvi * dv_dth - g * d;
            blk_a += gh * v_prev[i];
            blk_b += gh * xt[i];
            blk_c += gh;
          }
          gxt[i] = b * gh;
          gv_out[i] = a * gh;
        }
        acc_a += blk_a; acc_b += blk_b; acc_c += blk_c; acc_th += blk_th;  // across blocks in double
        // v0's gradient is read by the step before this one, after the rest of the network's backward
        if (t == 0) stream_copy(gv0 + i0 + j0, gv_buf, m);
      }
    }
  }
  stream_fence();
  acc[0] = acc_a; acc[1] = acc_b; acc[2] = acc_c; acc[3] = acc_th;
}

// backward_chunk with its compile-time flags picked from runtime ones.
template <typename T, typename... Args>
void backward_any(bool soft, bool detach, bool coef, Args... args) {
  if (coef) {
    if (soft && detach) backward_chunk<T, true, true, true>(args...);
    else if (soft) backward_chunk<T, true, false, true>(args...);
    else if (detach) backward_chunk<T, false, true, true>(args...);
    else backward_chunk<T, false, false, true>(args...);
  } else {
    if (soft && detach) backward_chunk<T, true, true, false>(args...);
    else if (soft) backward_chunk<T, true, false, false>(args...);
    else if (detach) backward_chunk<T, false, true, false>(args...);
    else backward_chunk<T, false, false, false>(args...);
  }
}

// x: [T, *inner] with time (has_time) or [*inner] (one step); checks the layout rules above.
at::Tensor step_slice(const at::Tensor& x, bool has_time) { return has_time ? x.select(0, 0) : x; }

bool time_major_dense(const at::Tensor& x, bool has_time) {
  const at::Tensor x0 = step_slice(x, has_time);
  return x0.is_non_overlapping_and_dense() && (!has_time || x.size(0) == 1 || x.stride(0) == x0.numel());
}

// `t` laid out exactly as `like` (a copy unless it already is).
at::Tensor as_layout(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) return t;
  return at::empty_like(like).copy_(t);
}

// Tasks of at least ~64K element-steps, so small layers run on one thread.
int64_t grain(int64_t steps) { return std::max<int64_t>(1, 65536 / (CHUNK * std::max<int64_t>(steps, 1))); }

// Elements per chunk: CHUNK, or with a pool whole bands (rows of windows) of about CHUNK elements.
int64_t chunk_size(int64_t band) { return band ? std::max<int64_t>(1, CHUNK / band) * band : CHUNK; }

// The pool's geometry from the step slice x0 [N, C, H, W] (channels-last); k = 0: no pool.
template <typename T>
Pool<T> pool_geometry(const at::Tensor& x0, int64_t k) {
  Pool<T> pool;
  if (k == 0) return pool;
  TORCH_CHECK(x0.dim() == 4 && x0.is_contiguous(at::MemoryFormat::ChannelsLast) && k >= 1 && k <= 15 &&
                  x0.size(2) % k == 0 && x0.size(3) >= k,
              "snnexp leaky pool: [N, C, H, W] channels-last steps, H a multiple of k (1..15), W >= k");
  pool.k = k, pool.C = x0.size(1), pool.W = x0.size(3);
  pool.step = x0.size(0) * (x0.size(2) / k) * pool.out_band();
  return pool;
}

// update_v: write the last membrane into v0 itself when it already has x's layout and dtype
// (single steps of a module's own state: no new buffer per step). pool_k > 0: max-pool the spikes
// (k x k windows); s is then the pooled spikes and a fourth tensor, the winners, is returned.
// Returns {s, h, v_last[, code]}.
std::vector<at::Tensor> leaky_forward(at::Tensor x, at::Tensor v0, const at::Tensor& a, const at::Tensor& b,
                                      const at::Tensor& c, const at::Tensor& th, bool has_time, double v_reset,
                                      bool soft, bool save_h, bool update_v, int64_t pool_k) {
  TORCH_CHECK(x.device().is_cpu() && v0.device().is_cpu(), "snnexp leaky_forward: CPU tensors only");
  if (!time_major_dense(x, has_time)) x = x.contiguous();
  const at::Tensor x0 = step_slice(x, has_time);
  const bool in_place = update_v && v0.scalar_type() == x.scalar_type() && v0.strides() == x0.strides();
  if (!in_place) v0 = as_layout(v0.to(x.scalar_type()), x0);
  const int64_t steps = has_time ? x.size(0) : 1, M = x0.numel();
  at::Tensor s, code, v_last = in_place ? v0 : at::empty_like(x0);
  at::Tensor h = save_h ? at::empty_like(x) : at::Tensor();
  if (pool_k) {  // [(T,) N, C, H/k, W/k], each step channels-last
    auto shape = x.sizes().vec();
    const int64_t d = shape.size();
    shape[d - 2] /= pool_k, shape[d - 1] /= pool_k;
    const auto step_options = x.options().memory_format(at::MemoryFormat::ChannelsLast);
    std::vector<int64_t> frames = {steps * shape[d - 4], shape[d - 3], shape[d - 2], shape[d - 1]};
    s = at::empty(frames, step_options).view(shape);
    code = at::empty(frames, step_options.dtype(at::kByte)).view(shape);
  } else {
    s = at::empty_like(x);
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "leaky_forward", [&] {
    using T = scalar_t;
    Pool<T> pool = pool_geometry<T>(x0, pool_k);
    if (pool_k) pool.out = s.mutable_data_ptr<T>(), pool.code = code.mutable_data_ptr<uint8_t>();
    const T* xp = x.const_data_ptr<T>();
    const T* v0p = v0.const_data_ptr<T>();
    T* sp = s.mutable_data_ptr<T>();
    T* hp = save_h ? h.mutable_data_ptr<T>() : nullptr;
    T* vp = v_last.mutable_data_ptr<T>();
    const T av = a.item<double>(), bv = b.item<double>(), cv = c.item<double>(), thv = th.item<double>();
    const T vr = v_reset;
    const int64_t chunk = chunk_size(pool.band()), chunks = (M + chunk - 1) / chunk;
    at::parallel_for(0, chunks, grain(steps), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i0 = k * chunk, n = std::min(chunk, M - i0);
        if (soft && save_h) forward_chunk<T, true, true>(xp, v0p, sp, hp, vp, steps, M, i0, n, av, bv, cv, thv, vr, pool);
        else if (soft) forward_chunk<T, true, false>(xp, v0p, sp, hp, vp, steps, M, i0, n, av, bv, cv, thv, vr, pool);
        else if (save_h) forward_chunk<T, false, true>(xp, v0p, sp, hp, vp, steps, M, i0, n, av, bv, cv, thv, vr, pool);
        else forward_chunk<T, false, false>(xp, v0p, sp, hp, vp, steps, M, i0, n, av, bv, cv, thv, vr, pool);
      }
    });
  });
  std::vector<at::Tensor> out = {s, save_h ? h : at::Tensor(), v_last};
  if (pool_k) out.push_back(code);
  return out;
}

// Returns grad_x (undefined unless need_x), grad_v0, and [a, b, c, th] gradients (float64, zeros
// unless need_coef). h: the forward's saved membranes; without it (multi-step runs) h is recomputed
// chunk by chunk from x and v0, which are then required. x is otherwise needed only for b's gradient.
// pool_code (from leaky_forward with pool_k > 0, and that pool_k): grad_s is the pooled spikes' gradient.
std::vector<at::Tensor> leaky_backward(const std::optional<at::Tensor>& grad_s_opt,
                                       const std::optional<at::Tensor>& grad_v_opt,
                                       const std::optional<at::Tensor>& h_opt,
                                       const std::optional<at::Tensor>& v0_opt,
                                       const std::optional<at::Tensor>& x_opt, const at::Tensor& a,
                                       const at::Tensor& b, const at::Tensor& c, const at::Tensor& th, bool has_time,
                                       double v_reset, bool soft, bool detach_reset, int64_t surrogate, double alpha,
                                       bool need_x, bool need_coef, const std::optional<at::Tensor>& pool_code,
                                       int64_t pool_k) {
  const bool recompute = !(h_opt.has_value() && h_opt->defined());
  TORCH_CHECK(!recompute || (x_opt.has_value() && x_opt->defined() && v0_opt.has_value() && v0_opt->defined()),
              "snnexp leaky_backward: without h, x and v0 are needed to recompute it");
  const at::Tensor ref = recompute ? *x_opt : *h_opt;  // the layout every full-size tensor takes
  const at::Tensor h0 = step_slice(ref, has_time);
  const int64_t steps = has_time ? ref.size(0) : 1, M = h0.numel();
  const auto dtype = ref.scalar_type();
  const bool pooled = pool_code.has_value() && pool_code->defined();
  TORCH_CHECK(!pooled || (grad_s_opt.has_value() && grad_s_opt->defined()),
              "snnexp leaky_backward: a pooled backward needs the pooled gradient");
  // grad_s: h's layout, or one value per step broadcast (the gradient of a sum or a mean over T);
  // pooled: the pooled spikes' layout (dense, each step channels-last), as the winners
  at::Tensor gs;
  int64_t gs_step = M;
  bool gs_broadcast = false;
  if (pooled) {
    gs = grad_s_opt->to(dtype);
    if (gs.strides() != pool_code->strides()) gs = at::empty_like(*pool_code, gs.options()).copy_(gs);
  } else if (grad_s_opt.has_value() && grad_s_opt->defined()) {
    gs = grad_s_opt->to(dtype);
    const at::Tensor g0 = step_slice(gs, has_time);
    const auto st = g0.strides();
    const bool all_zero = std::all_of(st.begin(), st.end(), [](int64_t v) { return v == 0; });
    if (all_zero || g0.strides() == h0.strides()) {
      gs_broadcast = all_zero;
      gs_step = has_time ? gs.stride(0) : 0;
    } else {
      gs = as_layout(gs, ref);
      gs_step = M;
    }
  }
  at::Tensor gv_last;
  if (grad_v_opt.has_value() && grad_v_opt->defined()) gv_last = as_layout(grad_v_opt->to(dtype), h0);
  // v0 and x: for the coefficients' gradients (v_{-1} for a, the input for b) and the recompute
  at::Tensor v0 = v0_opt.has_value() && v0_opt->defined() ? as_layout(v0_opt->to(dtype), h0) : at::Tensor();
  TORCH_CHECK(!need_coef || v0.defined(), "snnexp leaky_backward: the coefficients' gradients need v0");
  at::Tensor x = x_opt.has_value() && x_opt->defined() ? as_layout(x_opt->to(dtype), ref) : at::Tensor();
  at::Tensor gx = need_x ? at::empty_like(ref) : at::Tensor();
  at::Tensor gv0 = at::empty_like(h0);
  std::vector<double> partial;
  AT_DISPATCH_FLOATING_TYPES(dtype, "leaky_backward", [&] {
    using T = scalar_t;
    Pool<T> pool = pool_geometry<T>(h0, pooled ? pool_k : 0);
    if (pooled) pool.grad = gs.const_data_ptr<T>(), pool.code = pool_code->data_ptr<uint8_t>();
    const int64_t chunk = chunk_size(pool.band()), chunks = (M + chunk - 1) / chunk;
    // recompute: per piece of a chunk (whole bands with a pool), whose h for all steps fits in L2 (~256 KB)
    int64_t piece = std::clamp<int64_t>((65536 / std::max<int64_t>(steps, 1)) / BLOCK * BLOCK, BLOCK, CHUNK);
    if (pool.k) piece = std::min(chunk, std::max<int64_t>(1, piece / pool.band()) * pool.band());
    partial.assign(need_coef ? chunks * 4 : 0, 0.0);
    const T* gsp = gs.defined() && !pooled ? gs.const_data_ptr<T>() : nullptr;
    const T* gvp = gv_last.defined() ? gv_last.const_data_ptr<T>() : nullptr;
    const T* hp = recompute ? nullptr : h_opt->const_data_ptr<T>();
    const T* v0p = v0.defined() ? v0.const_data_ptr<T>() : nullptr;
    const T* xp = x.defined() ? x.const_data_ptr<T>() : nullptr;
    T* gxp = need_x ? gx.mutable_data_ptr<T>() : nullptr;
    T* gv0p = gv0.mutable_data_ptr<T>();
    const T av = a.item<double>(), bv = b.item<double>(), cv = c.item<double>(), thv = th.item<double>();
    const T vr = v_reset, al = alpha;
    at::parallel_for(0, chunks, grain(steps), [&](int64_t k0, int64_t k1) {
      double dummy[4], sums[4];
      std::vector<T> h_local(recompute ? steps * piece : 0), v_local(recompute ? piece : 0);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i0 = k * chunk, n = std::min(chunk, M - i0);
        double* acc = need_coef ? partial.data() + 4 * k : dummy;
        if (!recompute) {
          backward_any<T>(soft, detach_reset, need_coef, gsp, gs_step, gs_broadcast, gvp, hp, M, int64_t(0), v0p, xp,
                          gxp, gv0p, steps, M, i0, n, av, bv, thv, vr, surrogate, al, acc, pool);
          continue;
        }
        std::fill(acc, acc + 4, 0.0);
        for (int64_t p0 = i0; p0 < i0 + n; p0 += piece) {
          const int64_t m = std::min(piece, i0 + n - p0);
          if (soft) recompute_h<T, true>(xp, v0p, h_local.data(), v_local.data(), steps, M, p0, m, av, bv, cv, thv, vr);
          else recompute_h<T, false>(xp, v0p, h_local.data(), v_local.data(), steps, M, p0, m, av, bv, cv, thv, vr);
          backward_any<T>(soft, detach_reset, need_coef, gsp, gs_step, gs_broadcast, gvp, h_local.data(), m, p0, v0p,
                          xp, gxp, gv0p, steps, M, p0, m, av, bv, thv, vr, surrogate, al, sums, pool);
          for (int j = 0; j < 4; ++j) acc[j] += sums[j];
        }
      }
    });
  });
  at::Tensor coef = at::zeros({4}, ref.options().dtype(at::kDouble));
  if (need_coef) {  // summed in chunk order: the same result for any number of threads
    double* cp = coef.mutable_data_ptr<double>();
    for (size_t k = 0; k < partial.size() / 4; ++k)
      for (int j = 0; j < 4; ++j) cp[j] += partial[4 * k + j];
  }
  return {need_x ? gx : at::Tensor(), gv0, coef};
}

}  // namespace

TORCH_LIBRARY(snnexp_fused, m) {
  m.def("leaky_forward(Tensor x, Tensor(a!) v0, Tensor a, Tensor b, Tensor c, Tensor th, bool has_time, "
        "float v_reset, bool soft, bool save_h, bool update_v, int pool_k=0) -> Tensor[]", &leaky_forward);
  m.def("leaky_backward(Tensor? grad_s, Tensor? grad_v, Tensor? h, Tensor? v0, Tensor? x, Tensor a, Tensor b, "
        "Tensor c, Tensor th, bool has_time, float v_reset, bool soft, bool detach_reset, int surrogate, float alpha, "
        "bool need_x, bool need_coef, Tensor? pool_code=None, int pool_k=0) -> Tensor[]", &leaky_backward);
}
