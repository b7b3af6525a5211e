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
#include <cstdint>
#include <vector>

#include "pool_rows.h"

namespace {

using snnexp_pool::pool_band;
using snnexp_pool::unpool_row;

// channels-last: [N, H, W, C]; each task pools whole rows of windows (pool_rows.h).
template <typename T>
void forward_nhwc(const T* x, T* out, uint8_t* code, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k) {
  const int64_t OH = H / k, OW = W / k;
  at::parallel_for(0, N * OH, std::max<int64_t>(1, 16384 / std::max<int64_t>(OW * k * k * C, 1)),
                   [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, oh = r % OH;
      pool_band(x + (n * H + oh * k) * W * C, out + r * OW * C, code + r * OW * C, W, C, k);
    }
  });
}

template <typename T>
void backward_nhwc(const T* g, const uint8_t* code, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t k) {
  const int64_t OH = H / k, OW = W / k;
  at::parallel_for(0, N * H, std::max<int64_t>(1, 16384 / std::max<int64_t>(W * C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, h = r % H, oh = h / k;
      T* row = gx + r * W * C;
      if (oh < OH) {
        const int64_t at = (n * OH + oh) * OW * C;
        unpool_row(g + at, code + at, row, W, C, k, h % k);
      } else {
        std::fill(row, row + W * C, T(0));  // rows past the last window
      }
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
