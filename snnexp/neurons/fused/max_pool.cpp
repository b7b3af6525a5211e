// Non-overlapping 2-d max-pooling (kernel = stride = k, no padding, no dilation, floor mode) on the CPU:
// the pooling that follows a spiking layer in csnn (model.pool_first=false).
//
// The same values and gradients as torch's max_pool2d, for any input (ties go to the first element of
// the window in row-major order, a NaN wins as in torch). It is cheaper because
// - the forward keeps one byte per output (the winner's position in its window) where torch keeps an
//   int64 index: 8x less memory held for the backward;
// - the backward writes every input gradient once (the winner gets the output's gradient, the rest
//   0) where torch first zero-fills the whole input gradient and then scatters into it.
// Channels-last only (csnn's default layout): each window compares C-vectors, which vectorises.
// In NCHW a window spans k short rows, and torch's own kernel is as fast there; csnn uses it.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

constexpr int64_t BLOCK = 64;  // channels per pass in the channels-last kernels (stack buffers)

// torch's rule: a larger value or a NaN replaces the window's best so far (no branch: vectorises).
template <typename T>
inline bool takes(T v, T best) { return (v > best) | (v != v); }

// channels-last: [N, H, W, C]; a window's elements are C-vectors, compared channel by channel in
// blocks of BLOCK channels held in stack buffers (float-only inner loops, vectorised).
template <typename T>
void forward_nhwc(const T* x, T* out, uint8_t* code, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k) {
  const int64_t OH = H / k, OW = W / k;
  at::parallel_for(0, N * OH, std::max<int64_t>(1, 16384 / std::max<int64_t>(OW * k * k * C, 1)),
                   [&](int64_t r0, int64_t r1) {
    alignas(64) T best[BLOCK], arg[BLOCK];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, oh = r % OH;
      for (int64_t ow = 0; ow < OW; ++ow) {
        if (k == 2) {  // the common window: its four C-vectors in registers, one pass
          const T* p0 = x + ((n * H + oh * 2) * W + ow * 2) * C;
          const T *p1 = p0 + C, *p2 = p0 + W * C, *p3 = p2 + C;
          T* o = out + (r * OW + ow) * C;
          uint8_t* cd = code + (r * OW + ow) * C;
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
        for (int64_t c0 = 0; c0 < C; c0 += BLOCK) {
          const int64_t m = std::min(BLOCK, C - c0);
          for (int64_t ch = 0; ch < m; ++ch) { best[ch] = -std::numeric_limits<T>::infinity(); arg[ch] = 0; }
          for (int64_t i = 0; i < k; ++i) {
            for (int64_t j = 0; j < k; ++j) {
              const T* v = x + ((n * H + oh * k + i) * W + ow * k + j) * C + c0;
              const T pos = T(i * k + j);
#pragma omp simd
              for (int64_t ch = 0; ch < m; ++ch) {
                const bool take = takes(v[ch], best[ch]);
                best[ch] = take ? v[ch] : best[ch];
                arg[ch] = take ? pos : arg[ch];
              }
            }
          }
          T* o = out + (r * OW + ow) * C + c0;
          uint8_t* cd = code + (r * OW + ow) * C + c0;
#pragma omp simd
          for (int64_t ch = 0; ch < m; ++ch) { o[ch] = best[ch]; cd[ch] = static_cast<uint8_t>(arg[ch]); }
        }
      }
    }
  });
}

template <typename T>
void backward_nhwc(const T* g, const uint8_t* code, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k) {
  const int64_t OH = H / k, OW = W / k;
  at::parallel_for(0, N * H, std::max<int64_t>(1, 16384 / std::max<int64_t>(W * C, 1)), [&](int64_t r0, int64_t r1) {
    alignas(64) T arg[BLOCK];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, h = r % H, oh = h / k, i = h % k;
      T* row = gx + r * W * C;
      int64_t rest = 0;  // where the part past the last window starts
      if (oh < OH) {
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T* go = g + ((n * OH + oh) * OW + ow) * C;
          const uint8_t* cd = code + ((n * OH + oh) * OW + ow) * C;
          if (k == 2) {  // the common window: both of this row's C-vectors in one pass
            T *e0 = row + ow * 2 * C, *e1 = e0 + C;
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
              T* e = row + (ow * k + j) * C + c0;
              const T pos = T(i * k + j);
#pragma omp simd
              for (int64_t ch = 0; ch < m; ++ch) e[ch] = arg[ch] == pos ? go[c0 + ch] : T(0);
            }
          }
        }
        rest = OW * k * C;
      }
      for (int64_t e = rest; e < W * C; ++e) row[e] = T(0);  // past the last window
    }
  });
}

// x: [N, C, H, W], float32/float64, channels-last. Returns {out, code}, channels-last.
std::vector<at::Tensor> max_pool_forward(at::Tensor x, int64_t k) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4, "snnexp max_pool_forward: a 4-d CPU tensor");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "snnexp max_pool_forward: channels-last only");
  TORCH_CHECK(k >= 1 && k <= 15, "snnexp max_pool_forward: kernel size 1..15");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto options = x.options().memory_format(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::empty({N, C, H / k, W / k}, options);
  at::Tensor code = at::empty({N, C, H / k, W / k}, options.dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snnexp_max_pool_forward", [&] {
    forward_nhwc<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), code.data_ptr<uint8_t>(), N, C, H, W, k);
  });
  return {out, code};
}

// grad: the output's gradient; code from the forward. Returns the input's gradient [N, C, H, W].
at::Tensor max_pool_backward(at::Tensor grad, const at::Tensor& code, int64_t H, int64_t W, int64_t k) {
  grad = grad.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t N = code.size(0), C = code.size(1);
  at::Tensor gx = at::empty({N, C, H, W}, grad.options().memory_format(at::MemoryFormat::ChannelsLast));
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "snnexp_max_pool_backward", [&] {
    backward_nhwc<scalar_t>(grad.data_ptr<scalar_t>(), code.data_ptr<uint8_t>(), gx.data_ptr<scalar_t>(), N, C, H, W, k);
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snnexp_fused, m) {
  m.def("max_pool_forward(Tensor x, int k) -> Tensor[]", &max_pool_forward);
  m.def("max_pool_backward(Tensor grad, Tensor code, int H, int W, int k) -> Tensor", &max_pool_backward);
}
