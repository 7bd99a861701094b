#include "priors/ppca.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/linalg.h"
#include "core/errors.h"
#include "core/rng.h"
#include "data/fashion_mnist.h"

namespace psbench {

namespace {
const double kLog2Pi = std::log(2.0 * M_PI);
// Pixels are 8-bit: quantisation to steps of 1/127.5 carries variance (1/127.5)^2 / 12. A fitted residual
// variance is never below it (constant border pixels would otherwise give a singular covariance).
const double kQuantisationVariance = 1.0 / (127.5 * 127.5 * 12.0);
// Rows whose responsibility is below this fraction of the largest one do not enter a component's M-step
// (their weight would change the covariance by less than rounding; skipping them makes EM ~K times cheaper).
const double kNegligibleResponsibility = 1e-10;

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

at::Tensor PpcaParameters::covariance(int64_t k) const {
  const int64_t d = dim();
  auto u = bases[k];
  const double s2 = residual[k].item<double>();
  return u.matmul(at::diag(eigenvalues[k] - s2)).matmul(u.t()) + s2 * at::eye(d, kF64);
}

void fit_ppca_component(const at::Tensor& x, const at::Tensor& r, int64_t rank, double residual_variance,
                        at::Tensor& mean, at::Tensor& basis, at::Tensor& eigenvalues, double& residual) {
  const int64_t d = x.size(1);
  if (rank < 1 || rank >= d)
    throw ConfigError("ppca: rank=" + std::to_string(rank) + " must be in 1.." + std::to_string(d - 1));
  auto keep = (r > kNegligibleResponsibility * r.max()).nonzero().squeeze(1);
  auto xs = x.index_select(0, keep).to(at::kDouble);
  auto rs = r.index_select(0, keep).to(at::kDouble);
  const double total = rs.sum().item<double>();
  if (!(total > 0)) throw std::runtime_error("ppca: a component has no responsibility mass");
  mean = (rs.unsqueeze(1) * xs).sum(0) / total;
  auto xc = (xs - mean) * rs.sqrt().unsqueeze(1);
  auto s = xc.t().matmul(xc) / total;
  s = 0.5 * (s + s.t());
  auto [evals, evecs] = at::linalg_eigh(s);  // ascending
  evals = evals.flip(0);
  evecs = evecs.flip(1);
  if (residual_variance > 0) {
    residual = residual_variance;
  } else {
    // ML estimate (Tipping & Bishop eq. 8): the mean of the d - r discarded eigenvalues.
    residual = std::max(evals.slice(0, rank).clamp_min(0).mean().item<double>(), kQuantisationVariance);
  }
  eigenvalues = evals.slice(0, 0, rank).clamp_min(residual).contiguous();
  basis = evecs.slice(1, 0, rank).contiguous();
}

namespace {
PpcaParameters fit_from_responsibilities(const at::Tensor& x, const at::Tensor& resp, int64_t rank,
                                         double residual_variance) {
  const int64_t k = resp.size(1);
  PpcaParameters p;
  std::vector<at::Tensor> mus, us, lams;
  std::vector<double> s2s;
  for (int64_t c = 0; c < k; ++c) {
    at::Tensor mu, u, lam;
    double s2 = 0;
    fit_ppca_component(x, resp.select(1, c), rank, residual_variance, mu, u, lam, s2);
    mus.push_back(mu);
    us.push_back(u);
    lams.push_back(lam);
    s2s.push_back(s2);
  }
  p.weights = resp.sum(0) / resp.sum();
  p.means = at::stack(mus);
  p.bases = at::stack(us);
  p.eigenvalues = at::stack(lams);
  p.residual = at::tensor(s2s, kF64);
  return p;
}
}  // namespace

PpcaParameters fit_ppca_per_class(const at::Tensor& x, const at::Tensor& labels, int64_t rank,
                                  double residual_variance) {
  const int64_t classes = labels.max().item<int64_t>() + 1;
  auto resp = at::one_hot(labels.to(at::kLong), classes).to(at::kDouble);
  auto counts = resp.sum(0);
  if ((counts == 0).any().item<bool>()) throw ConfigError("ppca: a class between 0 and the largest label has no data");
  return fit_from_responsibilities(x.to(at::kDouble), resp, rank, residual_variance);
}

at::Tensor ppca_component_log_density(const PpcaParameters& p, const at::Tensor& x, const at::Tensor& sigma2) {
  const auto dt = x.scalar_type();
  const int64_t d = p.dim(), r = p.rank();
  auto mu = p.means.to(dt), u = p.bases.to(dt);
  auto s2 = sigma2.to(dt);
  auto delta = x.unsqueeze(1) - mu.unsqueeze(0);                   // [B, K, d]
  auto proj = at::einsum("bkd,kdr->bkr", {delta, u});               // U_k^T (x - mu_k)
  auto perp = delta - at::einsum("bkr,kdr->bkd", {proj, u});        // (I - U_k U_k^T)(x - mu_k)
  auto v = p.eigenvalues.to(dt).unsqueeze(0) + s2.view({-1, 1, 1});  // [B, K, r]
  auto t = p.residual.to(dt).unsqueeze(0) + s2.view({-1, 1});        // [B, K]
  auto quad = (proj.pow(2) / v).sum(2) + perp.pow(2).sum(2) / t;
  auto logdet = v.log().sum(2) + static_cast<double>(d - r) * t.log();
  return -0.5 * (quad + logdet + static_cast<double>(d) * kLog2Pi);
}

PpcaParameters fit_ppca_em(const at::Tensor& x_in, int64_t components, int64_t rank, double residual_variance,
                           int64_t iterations, uint64_t seed, const std::function<void(const std::string&)>& log) {
  auto x = x_in.to(at::kDouble).contiguous();
  const int64_t n = x.size(0), k = components;
  if (k < 1 || k > n) throw ConfigError("ppca em: num_components=" + std::to_string(k) + " must be in 1..N");
  auto gen = make_generator(seed);
  // k-means (Lloyd) from a k-means++ start (each new centre drawn with probability ∝ squared distance to
  // the nearest chosen one) gives hard initial responsibilities.
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  auto sq = x.pow(2).sum(1, true);
  auto centers = at::empty({k, x.size(1)}, kF64);
  centers[0] = x[at::randint(n, {1}, gen, long_opts).item<int64_t>()];
  auto nearest = (x - centers[0]).pow(2).sum(1);
  for (int64_t c = 1; c < k; ++c) {
    const int64_t pick = at::multinomial(nearest.clamp_min(0) + 1e-300, 1, false, gen).item<int64_t>();
    centers[c] = x[pick];
    nearest = at::minimum(nearest, (x - centers[c]).pow(2).sum(1));
  }
  at::Tensor assign;
  for (int it = 0; it < 20; ++it) {
    auto dist = sq - 2 * x.matmul(centers.t()) + centers.pow(2).sum(1).unsqueeze(0);
    auto next = dist.argmin(1);
    if (assign.defined() && next.equal(assign)) break;
    assign = next;
    auto counts = at::bincount(assign, {}, k);
    auto sums = at::zeros({k, x.size(1)}, kF64).index_add_(0, assign, x);
    for (int64_t c = 0; c < k; ++c) {
      const int64_t cnt = counts[c].item<int64_t>();
      centers[c] = cnt > 0 ? sums[c] / static_cast<double>(cnt)
                           : x[at::randint(n, {1}, gen, long_opts).item<int64_t>()];
    }
  }
  auto resp = at::one_hot(assign, k).to(at::kDouble);
  PpcaParameters p = fit_from_responsibilities(x, resp, rank, residual_variance);
  const int64_t chunk = 1000;
  for (int64_t it = 0; it < iterations; ++it) {
    // E-step: exact responsibilities under the current mixture (sigma = 0).
    std::vector<at::Tensor> logp;
    for (int64_t b = 0; b < n; b += chunk) {
      auto xb = x.slice(0, b, std::min(n, b + chunk));
      logp.push_back(p.weights.log().unsqueeze(0) +
                     ppca_component_log_density(p, xb, at::zeros({xb.size(0)}, kF64)));
    }
    auto lp = at::cat(logp);
    const double ll = at::logsumexp(lp, 1).mean().item<double>();
    resp = at::softmax(lp, 1);
    // M-step: weights, then each component's ML PPCA of its responsibility-weighted data.
    p = fit_from_responsibilities(x, resp, rank, residual_variance);
    if (log) {
      std::ostringstream s;
      s << "ppca em: iteration " << it + 1 << "/" << iterations << ", mean log-likelihood " << ll;
      log(s.str());
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Cache files: "PSBPPCA1", key length (int64) + key text, K d r (int64), then float64 arrays weights, means,
// bases, eigenvalues, residual. Written to a temporary file and renamed, so readers never see half a file.

namespace {
const char kMagic[8] = {'P', 'S', 'B', 'P', 'P', 'C', 'A', '1'};

void write_tensor(std::ofstream& out, const at::Tensor& t) {
  auto c = t.to(at::kDouble).contiguous();
  out.write(reinterpret_cast<const char*>(c.data_ptr<double>()), static_cast<std::streamsize>(c.numel() * 8));
}
at::Tensor read_tensor(std::ifstream& in, at::IntArrayRef sizes, const std::string& path) {
  auto t = at::empty(sizes, kF64);
  in.read(reinterpret_cast<char*>(t.data_ptr<double>()), static_cast<std::streamsize>(t.numel() * 8));
  if (!in) throw ConfigError(path + ": truncated PPCA cache file (delete it to refit)");
  return t;
}
}  // namespace

void save_ppca(const std::string& path, const std::string& key, const PpcaParameters& p) {
  const std::string tmp = path + ".tmp" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error(tmp + ": cannot write the PPCA cache");
    out.write(kMagic, 8);
    const int64_t header[4] = {static_cast<int64_t>(key.size()), p.components(), p.dim(), p.rank()};
    out.write(reinterpret_cast<const char*>(header), 8);
    out.write(key.data(), static_cast<std::streamsize>(key.size()));
    out.write(reinterpret_cast<const char*>(header + 1), 3 * 8);
    write_tensor(out, p.weights);
    write_tensor(out, p.means);
    write_tensor(out, p.bases);
    write_tensor(out, p.eigenvalues);
    write_tensor(out, p.residual);
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

bool load_ppca(const std::string& path, const std::string& key, PpcaParameters& p) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char magic[8];
  in.read(magic, 8);
  if (!in || std::string(magic, 8) != std::string(kMagic, 8)) throw ConfigError(path + ": not a PPCA cache file");
  int64_t key_size = 0;
  in.read(reinterpret_cast<char*>(&key_size), 8);
  if (!in || key_size < 0 || key_size > (1 << 20)) throw ConfigError(path + ": damaged PPCA cache file header");
  if (key_size != static_cast<int64_t>(key.size())) return false;  // written for other options
  std::string stored(key.size(), '\0');
  in.read(stored.data(), static_cast<std::streamsize>(key.size()));
  if (!in || stored != key) return false;
  int64_t dims[3];
  in.read(reinterpret_cast<char*>(dims), 3 * 8);
  if (!in) throw ConfigError(path + ": truncated PPCA cache file (delete it to refit)");
  const int64_t k = dims[0], d = dims[1], r = dims[2];
  if (k < 1 || d < 2 || r < 1 || r >= d || k > 100000 || d > 100000000)
    throw ConfigError(path + ": implausible sizes in PPCA cache file (delete it to refit)");
  PpcaParameters q;
  q.weights = read_tensor(in, {k}, path);
  q.means = read_tensor(in, {k, d}, path);
  q.bases = read_tensor(in, {k, d, r}, path);
  q.eigenvalues = read_tensor(in, {k, r}, path);
  q.residual = read_tensor(in, {k}, path);
  char extra;
  if (in.read(&extra, 1)) throw ConfigError(path + ": trailing bytes in PPCA cache file (delete it to refit)");
  if (!at::isfinite(q.means).all().item<bool>() || !(q.residual > 0).all().item<bool>())
    throw ConfigError(path + ": invalid values in PPCA cache file (delete it to refit)");
  p = std::move(q);
  return true;
}

std::string ppca_cache_dir(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* e = std::getenv("PSBENCH_CACHE_DIR"); e && *e) return e;
  if (const char* e = std::getenv("XDG_CACHE_HOME"); e && *e) return std::string(e) + "/psbench";
  if (const char* e = std::getenv("HOME"); e && *e) return std::string(e) + "/.cache/psbench";
  return std::string(PSBENCH_SOURCE_DIR) + "/data/cache";
}

PpcaParameters fit_or_load_fashion_mnist_ppca(const PpcaFitOptions& fit, const std::string& root,
                                              const std::string& cache_dir, std::string* cache_path,
                                              double* fit_seconds) {
  namespace fs = std::filesystem;
  const auto images = fs::path(root) / "train-images-idx3-ubyte.gz";
  std::error_code ec;
  const auto bytes = fs::file_size(images, ec);
  std::ostringstream key;
  key << "ppca_mixture v1; data=" << fs::weakly_canonical(images, ec).string() << " (" << bytes << " bytes)"
      << "; source=" << fit.source << "; num_components=" << fit.num_components << "; rank=" << fit.rank
      << "; residual_variance=" << format_value(fit.residual_variance);
  if (fit.source == "em") key << "; em_iterations=" << fit.em_iterations << "; fit_seed=" << fit.fit_seed;
  const std::string dir = ppca_cache_dir(cache_dir);
  const std::string path = (fs::path(dir) / ("ppca-" + hex64(hash_string(key.str())) + ".bin")).string();
  if (cache_path) *cache_path = path;
  if (fit_seconds) *fit_seconds = 0;
  PpcaParameters p;
  if (load_ppca(path, key.str(), p)) return p;

  const auto start = std::chrono::steady_clock::now();
  auto split = load_fashion_mnist(root, "train");
  auto x = fashion_mnist_to_float(split->images, at::kDouble).flatten(1);
  if (fit.source == "per_class") {
    p = fit_ppca_per_class(x, split->labels, fit.rank, fit.residual_variance);
  } else if (fit.source == "em") {
    p = fit_ppca_em(x, fit.num_components, fit.rank, fit.residual_variance, fit.em_iterations, fit.fit_seed,
                    [](const std::string& line) { std::cerr << line << std::endl; });
  } else {
    throw ConfigError("prior ppca_mixture: unknown components '" + fit.source + "' (known: em, per_class)");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (fit_seconds) *fit_seconds = secs;
  try {
    fs::create_directories(dir);
    save_ppca(path, key.str(), p);
  } catch (const std::exception& e) {
    std::cerr << "psbench: warning: PPCA fit not cached (" << e.what() << "); it will be refitted next time"
              << std::endl;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------

PpcaMixture::PpcaMixture(PpcaParameters params, Shape data_shape, int64_t ode_steps, double sigma_max,
                         const std::string& start)
    : p_(std::move(params)), shape_(std::move(data_shape)), sigma_max_(sigma_max) {
  if (numel(shape_) != p_.dim())
    throw ConfigError("ppca_mixture: data shape " + shape_string(shape_) + " does not match dimension " +
                      std::to_string(p_.dim()));
  p_.weights = p_.weights.to(at::kDouble) / p_.weights.sum();
  const int64_t d = p_.dim();
  const auto cov = covariance();  // the prior's spread and the moment-matched start both need it
  sigma_data_ = std::sqrt(cov.diagonal().mean().item<double>());
  at::Tensor m, l;
  if (start == "moment_matched") {
    // p_sigma_max has the mixture's mean and covariance + sigma_max^2 I; a Gaussian with these moments
    // is much closer to it than N(0, sigma_max^2 I).
    m = mean();
    l = spd_sqrt(cov + sigma_max * sigma_max * at::eye(d, kF64));
  } else if (start == "edm") {
    m = at::zeros({d}, kF64);
    l = sigma_max * at::eye(d, kF64);
  } else {
    throw ConfigError("prior ppca_mixture: unknown start '" + start + "' (known: edm, moment_matched)");
  }
  Shape batch_shape = shape_;
  batch_shape.insert(batch_shape.begin(), -1);
  generator_ = std::make_unique<OdeGenerator>(*this, shape_, ode_steps, 7.0, [m, l, batch_shape](const at::Tensor& z) {
    auto zf = z.flatten(1);
    return (m.to(zf.scalar_type()) + zf.matmul(l.to(zf.scalar_type()).t())).reshape(batch_shape);
  });
  consistency_ = std::make_unique<OdeConsistency>(*this, ode_steps, 7.0);
}

at::Tensor PpcaMixture::mean() const { return p_.weights.matmul(p_.means); }

at::Tensor PpcaMixture::covariance() const {
  auto m = mean();
  auto c = at::zeros({p_.dim(), p_.dim()}, kF64);
  for (int64_t k = 0; k < p_.components(); ++k) {
    auto dm = p_.means[k] - m;
    c += p_.weights[k].item<double>() * (p_.covariance(k) + at::outer(dm, dm));
  }
  return 0.5 * (c + c.t());
}

at::Tensor PpcaMixture::responsibilities(const at::Tensor& x, double sigma) const {
  auto xf = x.flatten(1);
  auto lp = ppca_component_log_density(p_, xf, at::full({xf.size(0)}, sigma * sigma, xf.options()));
  return at::softmax(p_.weights.log().to(xf.scalar_type()) + lp, 1);
}

at::Tensor PpcaMixture::log_density(const at::Tensor& x, double sigma) const {
  auto xf = x.flatten(1);
  auto lp = ppca_component_log_density(p_, xf, at::full({xf.size(0)}, sigma * sigma, xf.options()));
  return at::logsumexp(p_.weights.log().to(xf.scalar_type()) + lp, 1);
}

at::Tensor PpcaMixture::denoise(const at::Tensor& x, const at::Tensor& sigma) const {
  // Tweedie: D = x + sigma^2 grad log p_sigma(x), and for the mixture
  //   -grad log p_sigma(x) = sum_k r_k(x) (C_k + sigma^2 I)^-1 (x - mu_k)
  //                        = sum_k r_k(x) [U_k diag(1/(lambda_k + sigma^2)) U_k^T + (I - U_k U_k^T)/(s_k^2 + sigma^2)] (x - mu_k).
  const auto dt = x.scalar_type();
  auto xf = x.flatten(1);
  auto s2 = sigma.to(dt).pow(2);
  auto mu = p_.means.to(dt), u = p_.bases.to(dt);
  auto delta = xf.unsqueeze(1) - mu.unsqueeze(0);
  auto proj = at::einsum("bkd,kdr->bkr", {delta, u});
  auto perp = delta - at::einsum("bkr,kdr->bkd", {proj, u});
  auto v = p_.eigenvalues.to(dt).unsqueeze(0) + s2.view({-1, 1, 1});
  auto t = p_.residual.to(dt).unsqueeze(0) + s2.view({-1, 1});
  const int64_t d = p_.dim(), r = p_.rank();
  auto quad = (proj.pow(2) / v).sum(2) + perp.pow(2).sum(2) / t;
  auto logdet = v.log().sum(2) + static_cast<double>(d - r) * t.log();
  auto resp = at::softmax(p_.weights.log().to(dt).unsqueeze(0) - 0.5 * (quad + logdet), 1);  // [B, K]
  auto g = at::einsum("bkr,kdr->bkd", {proj / v, u}) + perp / t.unsqueeze(2);                 // [B, K, d]
  auto neg_score = (resp.unsqueeze(2) * g).sum(1);
  return (xf - s2.unsqueeze(1) * neg_score).reshape(x.sizes());
}

at::Tensor PpcaMixture::score(const at::Tensor& x, double sigma) const {
  auto s = at::full({x.size(0)}, sigma, x.options());
  return (denoise(x, s) - x) / (sigma * sigma);
}

at::Tensor PpcaMixture::sample(int64_t n, at::Generator& gen, at::Tensor& components) const {
  // x = mu_k + U_k diag(lambda_k - s_k^2)^(1/2) xi + s_k eps, xi ~ N(0, I_r), eps ~ N(0, I_d).
  components = at::multinomial(p_.weights, n, /*replacement=*/true, gen);
  auto xi = at::randn({n, p_.rank()}, gen, kF64);
  auto eps = at::randn({n, p_.dim()}, gen, kF64);
  auto out = at::empty({n, p_.dim()}, kF64);
  for (int64_t k = 0; k < p_.components(); ++k) {
    auto idx = (components == k).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    const double s2 = p_.residual[k].item<double>();
    auto scale = (p_.eigenvalues[k] - s2).clamp_min(0).sqrt();
    auto xk = p_.means[k] + (xi.index_select(0, idx) * scale).matmul(p_.bases[k].t()) +
              std::sqrt(s2) * eps.index_select(0, idx);
    out.index_copy_(0, idx, xk);
  }
  Shape s = shape_;
  s.insert(s.begin(), n);
  return out.reshape(s);
}

at::Tensor PpcaMixture::sample(int64_t n, at::Generator& gen) const {
  at::Tensor comps;
  return sample(n, gen, comps);
}

namespace {

// Posterior of sum_k w_k N(mu_k, C_k) under y = A x + sigma_y n (A dense [m, d], float64):
//   P_k = C_k^-1 + A^T A / sigma_y^2 (precision; C_k^-1 = U (1/lambda - 1/s^2) U^T + I/s^2 in closed form),
//   m_k = P_k^-1 (C_k^-1 mu_k + A^T y / sigma_y^2),
//   pi_k ∝ w_k N(y; A mu_k, A C_k A^T + sigma_y^2 I).
class PpcaPosterior : public ExactPosterior {
 public:
  PpcaPosterior(const PpcaParameters& p, const Shape& shape, const at::Tensor& a, double sigma_y, const at::Tensor& y)
      : shape_(shape) {
    const int64_t d = p.dim(), m = a.size(0), kc = p.components();
    const double sy2 = sigma_y * sigma_y;
    auto yv = y.reshape({m}).to(at::kDouble);
    auto ata = a.t().matmul(a) / sy2;
    auto aty = a.t().matmul(yv) / sy2;
    std::vector<at::Tensor> means, chols, vars, logw;
    for (int64_t k = 0; k < kc; ++k) {
      auto u = p.bases[k];
      const double s2 = p.residual[k].item<double>();
      auto lam = p.eigenvalues[k];
      auto cinv = u.matmul(at::diag(1.0 / lam - 1.0 / s2)).matmul(u.t()) + at::eye(d, kF64) / s2;
      auto prec = cinv + ata;
      prec = 0.5 * (prec + prec.t());
      auto l = at::linalg_cholesky(prec);
      auto mk = at::cholesky_solve((cinv.matmul(p.means[k]) + aty).unsqueeze(1), l).squeeze(1);
      // A C_k A^T = (A U) diag(lambda - s^2) (A U)^T + s^2 A A^T.
      auto au = a.matmul(u);
      auto g = au.matmul(at::diag(lam - s2)).matmul(au.t()) + s2 * a.matmul(a.t()) + sy2 * at::eye(m, kF64);
      g = 0.5 * (g + g.t());
      auto lg = at::linalg_cholesky(g);
      auto resid = (yv - a.matmul(p.means[k])).unsqueeze(1);
      auto white = at::linalg_solve_triangular(lg, resid, /*upper=*/false);
      const double loglik = -0.5 * white.pow(2).sum().item<double>() - at::diagonal(lg).log().sum().item<double>();
      logw.push_back(at::scalar_tensor(std::log(p.weights[k].item<double>()) + loglik, kF64));
      means.push_back(mk);
      chols.push_back(l);
      vars.push_back(at::diagonal(at::cholesky_inverse(l)));
      half_logdet_prec_.push_back(at::diagonal(l).log().sum().item<double>());
    }
    means_ = at::stack(means);
    chol_ = at::stack(chols);
    comp_var_ = at::stack(vars);
    log_weights_ = at::log_softmax(at::stack(logw), 0);
  }

  at::Tensor sample(int64_t n, at::Generator& gen) const override {
    // x = m_k + L_k^-T xi, where P_k = L_k L_k^T, so that Cov = P_k^-1.
    auto k = at::multinomial(log_weights_.exp(), n, true, gen);
    auto xi = at::randn({n, means_.size(1)}, gen, kF64);
    auto out = at::empty({n, means_.size(1)}, kF64);
    for (int64_t c = 0; c < means_.size(0); ++c) {
      auto idx = (k == c).nonzero().squeeze(1);
      if (idx.numel() == 0) continue;
      auto z = at::linalg_solve_triangular(chol_[c].t(), xi.index_select(0, idx).t(), /*upper=*/true).t();
      out.index_copy_(0, idx, means_[c] + z);
    }
    return out.reshape(batch_shape(n));
  }
  at::Tensor mean() const override { return log_weights_.exp().matmul(means_).reshape(shape_); }
  at::Tensor marginal_variance() const override {
    auto pi = log_weights_.exp();
    auto mbar = pi.matmul(means_);
    return (pi.matmul(comp_var_ + means_.pow(2)) - mbar.pow(2)).clamp_min(0).reshape(shape_);
  }
  at::Tensor component_weights() const override { return log_weights_.exp(); }
  at::Tensor assign_components(const at::Tensor& x) const override {
    // argmax_k log pi_k + log N(x; m_k, P_k^-1); the quadratic form is |L_k^T (x - m_k)|^2.
    auto xf = x.to(at::kDouble).flatten(1);
    std::vector<at::Tensor> scores;
    for (int64_t c = 0; c < means_.size(0); ++c) {
      auto q = (xf - means_[c]).matmul(chol_[c]).pow(2).sum(1);
      scores.push_back(log_weights_[c] + half_logdet_prec_[static_cast<size_t>(c)] - 0.5 * q);
    }
    return at::stack(scores, 1).argmax(1);
  }
  const at::Tensor& component_means() const { return means_; }

 private:
  Shape batch_shape(int64_t n) const {
    Shape s = shape_;
    s.insert(s.begin(), n);
    return s;
  }
  Shape shape_;
  at::Tensor means_, chol_, comp_var_, log_weights_;
  std::vector<double> half_logdet_prec_;
};

}  // namespace

std::unique_ptr<ExactPosterior> PpcaMixture::exact_posterior(const Operator& op, double sigma_y,
                                                             const at::Tensor& y) const {
  if (!op.is_linear()) return nullptr;
  at::Tensor a;
  if (op.has_matrix()) {
    a = op.matrix().to(at::kDouble);
  } else {
    // A linear operator is its action on the standard basis: column j of A is A(e_j).
    Shape s = shape_;
    s.insert(s.begin(), p_.dim());
    a = op.forward(at::eye(p_.dim(), kF64).reshape(s)).reshape({p_.dim(), -1}).t().to(at::kDouble).contiguous();
  }
  if (a.size(1) != p_.dim())
    throw ConfigError("ppca_mixture: operator " + op.name() + " acts on " + std::to_string(a.size(1)) +
                      " values, the prior on " + std::to_string(p_.dim()));
  return std::make_unique<PpcaPosterior>(p_, shape_, a, sigma_y, y);
}

namespace {

double parse_residual(const std::string& text) {
  if (text == "fit") return 0;
  size_t pos = 0;
  double v = 0;
  try { v = std::stod(text, &pos); } catch (...) { pos = 0; }
  if (pos == 0 || pos != text.size() || !(v > 0) || !std::isfinite(v))
    throw ConfigError("prior ppca_mixture: residual_variance='" + text + "' (must be 'fit' or a positive number)");
  return v;
}

PriorRegistrar reg_ppca(
    {"ppca_mixture",
     "exact image prior: mixture of probabilistic PCA components N(mu_k, W_k W_k^T + s_k^2 I) fitted to the "
     "Fashion-MNIST training split; closed-form denoiser/score at every sigma, ODE generator with the exact "
     "score, exact samples and exact posterior for linear tasks. Fits are cached (see cache_dir)",
     {OptionSpec::choice("components", "per_class", {"per_class", "em"},
                         "per_class: one component per class (weights = class frequencies); em: num_components "
                         "by EM from a k-means start"),
      OptionSpec::integer("num_components", 10, "K for components=em (per_class always has 10)").at_least(1),
      OptionSpec::integer("rank", 32, "r: principal directions per component").at_least(1).at_most(783),
      OptionSpec::text("residual_variance", "fit",
                       "s^2: 'fit' (ML: mean of the discarded eigenvalues) or a positive number"),
      OptionSpec::integer("em_iterations", 15, "EM iterations (components=em)").at_least(1),
      OptionSpec::integer("fit_seed", 0, "seed of the k-means start of EM (the prior ignores the experiment seed)")
          .at_least(0),
      OptionSpec::integer("ode_steps", 16, "Heun steps of the generator Phi (2*steps-1 score evaluations)")
          .at_least(1),
      OptionSpec::real("sigma_max", 80.0, "noise level where the generator starts").above(0),
      OptionSpec::choice("start", "moment_matched", {"moment_matched", "edm"},
                         "x_T = mean + (Cov + sigma_max^2 I)^(1/2) z, or the EDM x_T = sigma_max z"),
      OptionSpec::text("root", kFashionMnistDefaultRoot, "directory of the Fashion-MNIST IDX files"),
      OptionSpec::text("cache_dir", "",
                       "where fits are cached; empty: $PSBENCH_CACHE_DIR, $XDG_CACHE_HOME/psbench or "
                       "~/.cache/psbench")
          .execution()},
     [](const Options& o, uint64_t) -> std::unique_ptr<Prior> {
       PpcaFitOptions fit;
       fit.source = o.get_string("components");
       fit.num_components = o.get_int("num_components");
       fit.rank = o.get_int("rank");
       fit.residual_variance = parse_residual(o.get_string("residual_variance"));
       fit.em_iterations = o.get_int("em_iterations");
       fit.fit_seed = static_cast<uint64_t>(o.get_int("fit_seed"));
       if (fit.source == "per_class" && fit.num_components != kFashionMnistClasses)
         throw ConfigError("prior ppca_mixture: num_components=" + std::to_string(fit.num_components) +
                           " applies to components=em only (per_class has one component per class: 10)");
       std::string path;
       double secs = 0;
       auto params = fit_or_load_fashion_mnist_ppca(fit, o.get_string("root"), o.get_string("cache_dir"), &path, &secs);
       auto prior = std::make_unique<PpcaMixture>(std::move(params), Shape{1, 28, 28}, o.get_int("ode_steps"),
                                                  o.get_real("sigma_max"), o.get_string("start"));
       prior->add_provenance("ppca_cache_file", path);
       prior->add_provenance("ppca_fit_seconds", format_value(secs));
       std::string w;
       auto weights = prior->parameters().weights;
       for (int64_t i = 0; i < weights.size(0); ++i) w += (i ? "," : "") + format_value(weights[i].item<double>());
       prior->add_provenance("ppca_weights", w);
       return prior;
     }});

}  // namespace

}  // namespace psbench
