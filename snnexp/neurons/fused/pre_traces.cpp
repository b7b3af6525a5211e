// STDP's pre-synaptic traces at a few frames (time step, sample) of a spike sequence, on the CPU
// (snnexp.rules.stdp.stdp_events; the torch reference is trace_seq / future_trace_seq there):
//   causal:       tr_t = tr_{t-1} * d_pre + x_t                      (tr_{-1} = 0)
//   anti-causal:  f_t  = d_post * g_{t+1},  g_t = x_t + d_post * g_{t+1}   (g_T = 0)
// Each sample with a requested frame is walked once forwards (to its last requested step) and once
// backwards (to its first); nothing of size [T, N, in] is written. Each step is one product and one
// sum, not contracted into a fused multiply-add; torch's add-with-alpha may contract it, so the
// values equal the reference's to rounding (tests).
#pragma GCC optimize("fp-contract=off")
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

namespace {

// x [T, N, in]; t, b [F] int64 (any order) -> [tr [F, in], fut [F, in]].
std::vector<at::Tensor> pre_traces_at(const at::Tensor& x_in, const at::Tensor& t_in, const at::Tensor& b_in,
                                      double decay_pre, double decay_post) {
  TORCH_CHECK(x_in.dim() == 3, "pre_traces_at: x [T, N, in] expected, got ", x_in.sizes());
  const at::Tensor x = x_in.contiguous(), t = t_in.to(at::kLong).contiguous(), b = b_in.to(at::kLong).contiguous();
  const int64_t steps = x.size(0), N = x.size(1), n_in = x.size(2), F = t.numel();
  at::Tensor tr = at::empty({F, n_in}, x.options()), fut = at::empty({F, n_in}, x.options());
  const int64_t *tp = t.data_ptr<int64_t>(), *bp = b.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> wanted(N);  // per sample: the requests, by step
  for (int64_t f = 0; f < F; ++f) {
    TORCH_CHECK(tp[f] >= 0 && tp[f] < steps && bp[f] >= 0 && bp[f] < N, "pre_traces_at: frame out of range");
    wanted[bp[f]].push_back(f);
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pre_traces_at", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T *trp = tr.data_ptr<T>(), *fp = fut.data_ptr<T>();
    const T dpre = T(decay_pre), dpost = T(decay_post);
    at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> acc(n_in);
      for (int64_t s = begin; s < end; ++s) {
        auto& req = wanted[s];
        if (req.empty()) continue;
        std::sort(req.begin(), req.end(), [&](int64_t p, int64_t q) { return tp[p] < tp[q]; });
        std::fill(acc.begin(), acc.end(), T(0));  // forwards: tr
        size_t r = 0;
        for (int64_t step = 0; step <= tp[req.back()]; ++step) {
          const T* xt = xp + (step * N + s) * n_in;
          for (int64_t i = 0; i < n_in; ++i) acc[i] = xt[i] + acc[i] * dpre;
          for (; r < req.size() && tp[req[r]] == step; ++r) std::copy(acc.begin(), acc.end(), trp + req[r] * n_in);
        }
        std::fill(acc.begin(), acc.end(), T(0));  // backwards: acc = g_{step+1}, so f_step = dpost * acc
        int64_t q = int64_t(req.size()) - 1;
        for (int64_t step = steps - 1; step >= tp[req.front()]; --step) {
          for (; q >= 0 && tp[req[q]] == step; --q)
            for (int64_t i = 0; i < n_in; ++i) fp[req[q] * n_in + i] = acc[i] * dpost;
          const T* xt = xp + (step * N + s) * n_in;
          for (int64_t i = 0; i < n_in; ++i) acc[i] = xt[i] + acc[i] * dpost;
        }
      }
    });
  });
  return {tr, fut};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snnexp_fused, m) {
  m.def("pre_traces_at(Tensor x, Tensor t, Tensor b, float decay_pre, float decay_post) -> Tensor[]", &pre_traces_at);
}
