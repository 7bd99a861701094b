#pragma once
// A sampler as a kernel over an explicit state (BlackJAX's init/step; ARCHITECTURE.md "Sampler").
//
// A kernel K provides
//   using Options = ...;                      // with `static const OptionSchema<Options>& schema()`
//   struct State { ...; void keep_rows(const at::Tensor& rows); };   // one row per chain of the batch
//   explicit K(Options);
//   Needs needs() const;                      // what it asks of the prior and operator (validation)
//   void validate(const Prior&) const;        // prior-dependent option checks (ConfigError)
//   int64_t chains(int64_t num_samples) const;           // independent chains for num_samples samples
//   std::vector<Phase> phases(int64_t per_chain, const Prior&) const;
//   int64_t planned_nfe(int64_t num_samples, const Prior&) const;
//   State init(const StepContext&) const;    // the state of fresh chains (counted in the first phase)
//   State enter(State, const StepContext&) const;  // entering phase ctx.phase (ctx.t = 0), e.g. a first evaluation
//   Step<State> step(State, const StepContext&) const;  // one step; returns the new state and diagnostics
//   at::Tensor sample(const State&) const;   // [B, *data]: the current posterior sample of each row
//   at::Tensor ok(const State&, const StepContext&) const;  // [B] bool: rows that have not diverged
//   std::string divergence(const StepContext&) const;       // what "diverged" means here, with the settings
// and the driver (samplers/driver.h) does everything else: chains, batches, phases, timing, burn-in,
// thinning, step-size adaptation, divergence, stuck chains, NFE counters and trace columns.
#include <ATen/ATen.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "samplers/sampler.h"

namespace psbench {

// What a kernel needs of the prior and the operator; checked when the experiment is validated.
struct Needs {
  bool generator = false;        // Phi(z)
  bool denoiser = false;         // D(x, sigma)
  bool consistency = false;      // f(x, sigma)
  bool linear_operator = false;  // A linear (adjoint available)
  bool svd = false;              // the SVD view A = U diag(s) V^T (operators/svd.h)
};

// Throws ConfigError naming the sampler and what is missing.
void check_needs(const Needs& needs, const std::string& sampler, const Prior& prior, const Operator* op);

// Dual-averaging adaptation of the kernel's per-chain step parameter (ctx.step_size) toward a target
// acceptance rate during the first `steps` steps of a phase; the averaged iterate is used afterwards.
struct Adaptation {
  int64_t steps = 0;  // 0: the parameter stays at `initial`
  double initial = 0;
  double target = 0.5;
  double max = std::numeric_limits<double>::infinity();  // e.g. pCN's beta <= 1
};

enum class Keep {
  None,     // nothing kept (warm-up, annealing without output)
  Thinned,  // after burn_in steps, every thinning-th state
  Last      // the state after the phase's last step
};

struct Phase {
  std::string name;  // "warm-up", "chain", "annealing"... (messages)
  int64_t steps = 0;
  bool warmup = false;  // timed and NFE-counted as warm-up
  Keep keep = Keep::None;
  int64_t burn_in = 0, thinning = 1;
  Adaptation adapt;
  // An MCMC phase: a chain that accepts none of at least kStuckAfterProposals proposals is a point mass
  // at its start, not a posterior sample, and is marked diverged.
  bool check_stuck = false;

  static Phase of(std::string name, int64_t steps, bool warmup, Keep keep = Keep::None) {
    Phase p;
    p.name = std::move(name);
    p.steps = steps;
    p.warmup = warmup;
    p.keep = keep;
    return p;
  }
};

// A chain that accepted none of at least this many proposals is stuck at its start (a step size far too
// large for the target).
constexpr int64_t kStuckAfterProposals = 10;

// Per-row randomness of the chains in the current batch: every draw comes from each chain's own
// generator, so samples never depend on how chains are batched.
class ChainRng {
 public:
  ChainRng(std::vector<at::Generator>& gens, const std::vector<int64_t>& rows, at::ScalarType dtype)
      : gens_(gens), rows_(rows), dtype_(dtype) {}
  at::Tensor normal(const Shape& shape) const;                       // [B, *shape]
  at::Tensor normal_block(int64_t steps, const Shape& shape) const;  // [B, steps, *shape]
  // The draws of normal_block, written into `block` (reallocated only when its shape or dtype differ). Blocks above
  // glibc's 32 MB mmap limit are fresh mappings the kernel zeroes page by page on every allocation; a kernel that
  // keeps its block in its state pays that once per run.
  void fill_normal_block(at::Tensor& block, int64_t steps, const Shape& shape) const;
  at::Tensor uniform() const;                                        // [B] float64 in [0, 1)
  int64_t rows() const { return static_cast<int64_t>(rows_.size()); }

 private:
  std::vector<at::Generator>& gens_;
  const std::vector<int64_t>& rows_;
  at::ScalarType dtype_;
};

struct StepContext {
  const Problem& problem;
  const ChainRng& rng;
  NfeCount& nfe;                // the counter of the current phase (warm-up or sampling)
  int64_t phase = 0;            // index into phases()
  int64_t t = 0;                // step within the phase, 0-based
  bool last = false;            // the run's final step: nothing will use this step's gradients
  at::Tensor step_size;         // [B] the adapted parameter, when the phase adapts one
};

// Diagnostics of one step, never fed back. Each column is a [B] tensor; the driver records its mean
// over the live chains per step as trace/<name>.
struct Info {
  std::vector<std::pair<std::string, at::Tensor>> columns;
  at::Tensor accept_prob;  // [B] Metropolis-Hastings acceptance probability (adaptation)
  at::Tensor accepted;     // [B] bool (stuck-chain check)
  void add(std::string name, at::Tensor per_row) { columns.emplace_back(std::move(name), std::move(per_row)); }
};

template <class State>
struct Step {
  State state;
  Info info;
};

// Row selection of a possibly undefined tensor (state fields a phase does not use).
at::Tensor keep_defined_rows(const at::Tensor& t, const at::Tensor& rows);

}  // namespace psbench
