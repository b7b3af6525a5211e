// Diehl & Cook's excitatory layer on the CPU: ALIF neurons with soft lateral inhibition, driven by
// their active inputs only, all T steps of one sample in one pass (snnexp/neurons/fused/inhibited_alif.py).
//
// Per sample and step t (the loop of inhibit_step -> alif_step -> lif_step, in the same order):
//   I_j   = sum over inputs i with x_t[i] != 0 of x_t[i] * W[j, i]      (the Linear synapse)
//   in_j  = I_j - strength * (S_{t-1} - s_{t-1,j})                      (S: last step's spikes; strength > 0)
//   h_j   = v - (v - v_reset) / tau + in_j      or, decay_input, v + (in_j - (v - v_reset)) / tau
//   s_j   = [h_j - (v_threshold + theta_j) >= 0]
//   v_j   = h_j * (1 - s_j) + s_j * v_reset (hard)   or   h_j - s_j * (v_threshold + theta_j) (subtract)
//   theta = theta * theta_decay + theta_plus * s_j
// Input spikes are ~2 % of the inputs per step, so the synapse costs a few row additions of W^T
// per step instead of a dense product, and no [T, N, n] tensor is written: the spikes come back as
// (t, sample, neuron) events with their counts. Every operation rounds as torch's does (no
// contraction into fused multiply-adds, below), so only the synapse's summation order differs from
// the dense path (x @ W^T): equal to rounding, and the same spikes unless a sum lands on a threshold.
#pragma GCC optimize("fp-contract=off")
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

namespace {

struct Params {
  double v_reset, v_threshold, tau, theta_decay, theta_plus, strength;
  bool decay_input, soft;
};

// One step of the n neurons from their synaptic input cur; s holds the last step's spikes on entry
// and this step's on exit. Returns this step's number of spikes. The flags are template arguments
// so the loop has no branch and vectorizes.
template <typename T, bool SOFT, bool DECAY_INPUT, bool INHIBIT>
int64_t step_neurons(const T* __restrict cur, T* __restrict v, T* __restrict theta, T* __restrict s, int64_t n,
                     T fired, T vr, T vth, T tau, T decay, T tp, T k) {
  int32_t now = 0;
  for (int64_t j = 0; j < n; ++j) {
    T in = cur[j];
    if (INHIBIT) in = in - k * (fired - s[j]);
    const T vj = v[j];
    const T h = DECAY_INPUT ? vj + (in - (vj - vr)) / tau : vj - (vj - vr) / tau + in;
    const T th = vth + theta[j];
    const bool spike = h - th >= T(0);
    const T sj = spike ? T(1) : T(0);
    v[j] = SOFT ? h - sj * th : h * (T(1) - sj) + sj * vr;
    theta[j] = theta[j] * decay + tp * sj;
    s[j] = sj;
    now += spike;
  }
  return now;
}

// One sample: x [T, x_step apart] of n_in inputs, wt [n_in, n] = W^T. Writes counts, v and theta
// ([n] each; theta holds theta_rest on entry) and appends (t, j) pairs of its spikes to `events`.
template <typename T, bool SOFT, bool DECAY_INPUT, bool INHIBIT>
void run_sample(const T* x, int64_t x_step, int64_t steps, int64_t n_in, const T* wt, int64_t n, const Params& p,
                T* counts, T* v, T* theta, std::vector<int32_t>& events) {
  const T vr = T(p.v_reset), vth = T(p.v_threshold), tau = T(p.tau), decay = T(p.theta_decay);
  const T tp = T(p.theta_plus), k = T(p.strength);
  std::vector<T> cur_buf(n), s_buf(n, T(0));
  T* __restrict cur = cur_buf.data();
  T* __restrict s = s_buf.data();
  std::fill(v, v + n, vr);
  std::fill(counts, counts + n, T(0));
  int64_t fired = 0;  // spikes of the previous step, all neurons
  for (int64_t t = 0; t < steps; ++t) {
    const T* xt = x + t * x_step;
    std::fill(cur, cur + n, T(0));
    for (int64_t i = 0; i < n_in; ++i) {
      const T xi = xt[i];
      if (xi == T(0)) continue;
      const T* __restrict w = wt + i * n;
      for (int64_t j = 0; j < n; ++j) cur[j] += xi * w[j];
    }
    const int64_t now = step_neurons<T, SOFT, DECAY_INPUT, INHIBIT>(cur, v, theta, s, n, T(fired), vr, vth, tau,
                                                                    decay, tp, k);
    if (now > 0) {
      for (int64_t j = 0; j < n; ++j) {
        if (s[j] != T(0)) {
          counts[j] += 1;
          events.push_back(int32_t(t));
          events.push_back(int32_t(j));
        }
      }
    }
    fired = now;
  }
}

template <typename T, bool SOFT, bool DECAY_INPUT>
void run_sample_any(bool inhibit, const T* x, int64_t x_step, int64_t steps, int64_t n_in, const T* wt, int64_t n,
                    const Params& p, T* counts, T* v, T* theta, std::vector<int32_t>& events) {
  if (inhibit)
    run_sample<T, SOFT, DECAY_INPUT, true>(x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
  else
    run_sample<T, SOFT, DECAY_INPUT, false>(x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
}

template <typename T>
void run_sample_for(const Params& p, const T* x, int64_t x_step, int64_t steps, int64_t n_in, const T* wt, int64_t n,
                    T* counts, T* v, T* theta, std::vector<int32_t>& events) {
  const bool inhibit = p.strength > 0;
  if (p.soft && p.decay_input)
    run_sample_any<T, true, true>(inhibit, x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
  else if (p.soft)
    run_sample_any<T, true, false>(inhibit, x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
  else if (p.decay_input)
    run_sample_any<T, false, true>(inhibit, x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
  else
    run_sample_any<T, false, false>(inhibit, x, x_step, steps, n_in, wt, n, p, counts, v, theta, events);
}

// x [T, N, n_in], w [n, n_in], theta_rest [n] -> [counts [N, n], events [E, 3] int64 (t, sample,
// neuron; by sample, then time, then neuron), v [N, n], theta [N, n]]. Samples run in parallel.
std::vector<at::Tensor> inhibited_alif_forward(const at::Tensor& x_in, const at::Tensor& w_in,
                                               const at::Tensor& theta_rest, double v_reset, double v_threshold,
                                               double tau, bool decay_input, double theta_decay, double theta_plus,
                                               bool soft, double strength) {
  TORCH_CHECK(x_in.dim() == 3 && w_in.dim() == 2 && x_in.size(2) == w_in.size(1), "inhibited_alif_forward: x [T, N, in] "
              "and w [n, in] expected, got ", x_in.sizes(), " and ", w_in.sizes());
  TORCH_CHECK(x_in.scalar_type() == w_in.scalar_type(), "inhibited_alif_forward: x and w must share a dtype");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor wt = w_in.t().contiguous();  // [in, n]: one row per input, added when it spikes
  const int64_t steps = x.size(0), N = x.size(1), n_in = x.size(2), n = w_in.size(0);
  at::Tensor counts = at::empty({N, n}, x.options());
  at::Tensor v = at::empty({N, n}, x.options());
  at::Tensor theta = theta_rest.to(x.scalar_type()).expand({N, n}).contiguous();
  const Params p{v_reset, v_threshold, tau, theta_decay, theta_plus, strength, decay_input, soft};
  std::vector<std::vector<int32_t>> per_sample(N);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "inhibited_alif_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = wt.data_ptr<scalar_t>();
    scalar_t *cp = counts.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>(), *thp = theta.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        run_sample_for<scalar_t>(p, xp + b * n_in, N * n_in, steps, n_in, wp, n, cp + b * n, vp + b * n,
                                 thp + b * n, per_sample[b]);
    });
  });
  int64_t total = 0;
  for (const auto& e : per_sample) total += int64_t(e.size()) / 2;
  at::Tensor events = at::empty({total, 3}, x.options().dtype(at::kLong));
  int64_t* ep = events.data_ptr<int64_t>();
  for (int64_t b = 0; b < N; ++b) {
    const auto& e = per_sample[b];
    for (size_t q = 0; q + 1 < e.size(); q += 2) {
      *ep++ = e[q];
      *ep++ = b;
      *ep++ = e[q + 1];
    }
  }
  return {counts, events, v, theta};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snnexp_fused, m) {
  m.def("inhibited_alif_forward(Tensor x, Tensor w, Tensor theta_rest, float v_reset, float v_threshold, float tau, "
        "bool decay_input, float theta_decay, float theta_plus, bool soft, float strength) -> Tensor[]",
        &inhibited_alif_forward);
}
