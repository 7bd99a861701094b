// Neural priors: preconditioning, training (overfit, exact resume), model files, TorchScript import.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/sha256.h"
#include "nn/edm.h"
#include "priors/neural.h"
#include "store/result_store.h"
#include "test_util.h"

using namespace psbench;
using psbench::testing::read_text;
using psbench::testing::run_cli;
using psbench::testing::temp_dir;

namespace {

nn::UNetConfig tiny_unet() {
  nn::UNetConfig c;
  c.base = 8;
  c.mult = {1, 2};
  c.blocks = 1;
  c.embedding = 16;
  c.attention = true;
  return c;
}

// A randomly perturbed model (the zero-initialised output layer would make every test trivially pass).
nn::Preconditioned perturbed(nn::PrecondConfig pc, uint64_t seed) {
  torch::manual_seed(seed);
  nn::Preconditioned m(tiny_unet(), pc);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.1);
  return m;
}

const std::string kTinyArch = "--base 8 --mult 1,2 --blocks 1 --limit 64 --batch 8 --threads 1 --log-every 0";

}  // namespace

TEST_CASE("consistency preconditioning is the identity at sigma_min") {
  nn::PrecondConfig pc;
  pc.kind = nn::Parameterization::Consistency;
  auto m = perturbed(pc, 1);
  auto x = torch::randn({4, 1, 28, 28});
  auto out = m->forward(x, torch::full({4}, pc.sigma_min));
  CHECK(torch::equal(out, x));
  auto out_hi = m->forward(x, torch::full({4}, 1.0));
  CHECK((out_hi - x).abs().max().item<double>() > 1e-3);  // not the identity elsewhere
}

TEST_CASE("the denoiser is finite over its whole sigma range and tends to x at small sigma") {
  nn::PrecondConfig pc;
  auto m = perturbed(pc, 2);
  auto sig = torch::exp(torch::linspace(std::log(pc.sigma_min), std::log(pc.sigma_max), 16));
  auto x = torch::randn({16, 1, 28, 28}) * (sig.view({-1, 1, 1, 1}) + 1.0);
  auto d = m->forward(x, sig);
  CHECK(torch::isfinite(d).all().item<bool>());
  auto small = m->forward(x.slice(0, 0, 1), sig.slice(0, 0, 1));
  CHECK((small - x.slice(0, 0, 1)).abs().max().item<double>() < 0.05);
  // float64 inputs come back as float64
  CHECK(m->forward(x.to(torch::kDouble), sig.to(torch::kDouble)).scalar_type() == torch::kDouble);
}

TEST_CASE("a tiny denoiser overfits one batch: loss falls at least 10x") {
  torch::manual_seed(3);
  nn::Preconditioned m(tiny_unet(), nn::PrecondConfig{});
  auto x0 = torch::rand({8, 1, 28, 28}) * 2 - 1;
  auto sigma = torch::exp(torch::randn({8}) * 1.2 - 1.2);
  auto noise = torch::randn_like(x0);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(2e-3));
  auto loss_fn = [&] {
    auto s4 = sigma.view({-1, 1, 1, 1});
    auto w = (s4 * s4 + 0.25) / (s4 * s4 * 0.25);
    return (w * (m->forward(x0 + s4 * noise, sigma) - x0).pow(2)).mean();
  };
  const double first = loss_fn().item<double>();
  for (int i = 0; i < 150; ++i) {
    opt.zero_grad();
    auto l = loss_fn();
    l.backward();
    opt.step();
  }
  const double last = loss_fn().item<double>();
  INFO("loss " << first << " -> " << last);
  CHECK(last < first / 10);
}

TEST_CASE("model files round-trip and bad files give clear errors") {
  const auto dir = temp_dir("nn_model_file");
  nn::PrecondConfig pc;
  pc.sigma_data = 0.4;
  auto m = perturbed(pc, 4);
  nn::save_model(dir + "/m.pt", m, {{"steps", "7"}});
  auto f = nn::load_model(dir + "/m.pt");
  CHECK(f.meta.at("steps") == "7");
  CHECK(f.model->precond().sigma_data == 0.4);
  CHECK(f.model->unet_config().to_string() == tiny_unet().to_string());
  auto x = torch::randn({2, 1, 28, 28});
  auto s = torch::tensor({0.5, 3.0});
  CHECK(torch::equal(f.model->forward(x, s), m->forward(x, s)));
  CHECK_THROWS_AS(nn::load_model(dir + "/missing.pt"), ConfigError);
  { std::ofstream(dir + "/junk.pt") << "not a model"; }
  CHECK_THROWS_AS(nn::load_model(dir + "/junk.pt"), ConfigError);
  CHECK_THROWS_AS(nn::UNetConfig::from_string("base=8 oops"), ConfigError);
}

TEST_CASE("an interrupted and resumed training run ends with the same weights as an uninterrupted one") {
  const auto dir = temp_dir("nn_resume");
  REQUIRE(run_cli("train denoiser " + kTinyArch + " --steps 6 --checkpoint-every 0 --out " + dir + "/full.pt",
                  dir + "/full.log") == 0);
  REQUIRE(run_cli("train denoiser " + kTinyArch + " --steps 6 --stop-after 3 --out " + dir + "/part.pt",
                  dir + "/part1.log") == 0);
  CHECK(nn::load_model(dir + "/part.pt").meta.at("steps") == "3");
  REQUIRE(run_cli("train denoiser " + kTinyArch + " --steps 6 --resume --out " + dir + "/part.pt", dir + "/part2.log") == 0);
  CHECK(read_text(dir + "/part2.log").find("resumed from") != std::string::npos);
  auto a = nn::load_model(dir + "/full.pt"), b = nn::load_model(dir + "/part.pt");
  CHECK(b.meta.at("steps") == "6");
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (const auto& item : pa) CHECK(torch::equal(item.value(), pb[item.key()]));
  // Different settings cannot resume the checkpoint.
  CHECK(run_cli("train denoiser " + kTinyArch + " --steps 6 --lr 1e-3 --resume --out " + dir + "/part.pt",
                dir + "/bad.log") == 2);
  CHECK(read_text(dir + "/bad.log").find("different settings") != std::string::npos);
}

TEST_CASE("consistency distillation trains from a teacher and yields a usable multistep generator") {
  const auto dir = temp_dir("nn_cd");
  REQUIRE(run_cli("train denoiser " + kTinyArch + " --steps 2 --out " + dir + "/teacher.pt", dir + "/t.log") == 0);
  REQUIRE(run_cli("train consistency --teacher " + dir + "/teacher.pt --limit 64 --batch 8 --threads 1 --steps 2 "
                  "--log-every 1 --out " + dir + "/cm.pt", dir + "/cm.log") == 0);
  CHECK(read_text(dir + "/cm.log").find("step 2/2") != std::string::npos);
  auto f = nn::load_model(dir + "/cm.pt");
  CHECK(f.model->precond().kind == nn::Parameterization::Consistency);
  ConsistencyGenerator g1(f.model, c10::Device(c10::kCPU), {1, 28, 28}, 1);
  ConsistencyGenerator g3(nn::load_model(dir + "/cm.pt").model, c10::Device(c10::kCPU), {1, 28, 28}, 3);
  CHECK(g3.latent_shape() == Shape{3, 28, 28});
  CHECK(g3.evaluations_per_call() == 3);
  REQUIRE(g3.times().size() == 3);
  CHECK(g3.times()[0] == Approx(80.0));
  CHECK(g3.times()[1] < 80.0);
  CHECK(g3.times()[2] > 0.002);
  auto z = torch::randn({2, 3, 28, 28});
  CHECK(g3.generate(z).sizes() == at::IntArrayRef({2, 1, 28, 28}));
  // One step is exactly f(sigma_max z, sigma_max).
  auto z1 = z.slice(1, 0, 1);
  CHECK(torch::allclose(g1.generate(z1), f.model->forward(80.0 * z1, torch::full({2}, 80.0))));
  // A teacher that is not a denoiser is refused.
  CHECK(run_cli("train consistency --teacher " + dir + "/cm.pt --steps 1 --out " + dir + "/x.pt", dir + "/bad.log") == 2);
}

TEST_CASE("training options are validated") {
  const auto dir = temp_dir("nn_bad_opts");
  CHECK(run_cli("train denoiser --steps 5", dir + "/a.log") == 2);
  CHECK(read_text(dir + "/a.log").find("--out") != std::string::npos);
  CHECK(run_cli("train denoiser --out x.pt --lr -1", dir + "/b.log") == 2);
  CHECK(run_cli("train denoiser --out x.pt --mult 1,2,2,2", dir + "/c.log") == 2);
  CHECK(run_cli("train nonsense", dir + "/d.log") == 2);
  CHECK(read_text(dir + "/d.log").find("denoiser") != std::string::npos);
  CHECK(run_cli("train denoiser --out " + dir + "/x.pt --resume", dir + "/e.log") == 2);
}

TEST_CASE("TorchScript networks exported from PyTorch give PyTorch's outputs") {
  const auto dir = temp_dir("nn_torchscript");
  const std::string cmd = "/usr/bin/python3 " + std::string(PSBENCH_SOURCE_DIR) + "/tools/export_torchscript.py --demo " +
                          dir + " > " + dir + "/export.log 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto ref = torch::jit::load(dir + "/reference.pt");
  auto get = [&](const char* name) { return ref.attr(name).toTensor(); };
  const c10::Device cpu(c10::kCPU);
  TorchScriptDenoiser den(dir + "/demo_denoiser.pt", TorchScriptConventions::load(dir + "/demo_denoiser.yaml"), cpu);
  CHECK(torch::allclose(den.denoise(get("x"), get("sigma")), get("denoised"), 1e-5, 1e-6));
  CHECK(den.sigma_max() == 80.0);
  auto conv = TorchScriptConventions::load(dir + "/demo_generator.yaml");
  TorchScriptGenerator gen(dir + "/demo_generator.pt", conv, cpu);
  CHECK(gen.latent_shape() == Shape{8});
  CHECK(torch::allclose(gen.generate(get("z")), get("generated"), 1e-5, 1e-6));
  // float64 callers get float64 back
  CHECK(gen.generate(get("z").to(torch::kDouble)).scalar_type() == torch::kDouble);

  // A forward with the wrong signature is refused with a message naming the expected one.
  try {
    TorchScriptDenoiser bad(dir + "/wrong_signature.pt", TorchScriptConventions::load(dir + "/wrong_signature.yaml"), cpu);
    FAIL("wrong signature accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("forward(x, sigma)") != std::string::npos);
  }
  // Not a TorchScript file, and missing conventions.
  { std::ofstream(dir + "/junk.pt") << "junk"; }
  CHECK_THROWS_AS(load_torchscript(dir + "/junk.pt", "denoiser", cpu), ConfigError);
  CHECK_THROWS_AS(TorchScriptConventions::load(dir + "/none.yaml"), ConfigError);
  { std::ofstream(dir + "/bad.yaml") << "kind: denoiser\nshape: [1, 28, 28]\nsigma_min: 5\nsigma_max: 1\n"; }
  CHECK_THROWS_AS(TorchScriptConventions::load(dir + "/bad.yaml"), ConfigError);

  // A consistency function (kind consistency): f itself, and Phi(z) = f(sigma_max z, sigma_max) built on it.
  auto cconv = TorchScriptConventions::load(dir + "/demo_consistency.yaml");
  TorchScriptConsistency cm(dir + "/demo_consistency.pt", cconv, cpu, 1);
  CHECK(torch::allclose(cm.consistency(get("x"), get("sigma")), get("consistent"), 1e-5, 1e-6));
  CHECK(torch::allclose(cm.generate(get("z_image")), get("one_step"), 1e-5, 1e-6));
  CHECK(TorchScriptConsistency(dir + "/demo_consistency.pt", cconv, cpu, 3).evaluations_per_call() == 3);
  // A consistency function is a forward(x, sigma): a generator's forward(z) is refused as one.
  CHECK_THROWS_WITH(load_torchscript(dir + "/demo_generator.pt", "consistency", cpu), Catch::Contains("forward(x, sigma)"));

  // Through the prior registry and the CLI: a PNG grid from the TorchScript generator.
  CHECK(run_cli("sample --prior torchscript --set generator=" + dir + "/demo_generator.pt --set denoiser=" + dir +
                    "/demo_denoiser.pt --method generator --n 4 --out " + dir + "/grid.png",
                dir + "/sample.log") == 0);
  CHECK(std::filesystem::file_size(dir + "/grid.png") > 100);

  // The paper's DPS-CM and LGD-CM on exported networks: a denoiser and a consistency file (Phi from f).
  std::ofstream(dir + "/cm.yaml") << "name: ts_cm\nseed: 0\nmeasurements: 1\nsamples_per_measurement: 2\n"
                                     "metrics: [psnr, data_consistency]\n"
                                     "tasks: [{name: sr_avgpool, factor: 4, sigma_y: 0.1}]\n"
                                     "datasets: [{name: fashion_mnist, split: test}]\n"
                                     "priors: [{name: torchscript, denoiser: " + dir + "/demo_denoiser.pt, consistency: " +
                                     dir + "/demo_consistency.pt}]\n"
                                     "samplers:\n"
                                     "  - {name: dps, steps: 4, x0_estimate: consistency, convention: cps}\n"
                                     "  - {name: lgd, steps: 4, x0_estimate: consistency, convention: cps}\n"
                                     "  - {name: noise_langevin, warm_start_steps: 3, burn_in: 0, step_size: 1.0e-4}\n";
  REQUIRE(run_cli("run " + dir + "/cm.yaml --out " + dir + "/cm.h5", dir + "/cm.log") == 0);
  INFO(read_text(dir + "/cm.log"));
  const auto cells = Hdf5Store(dir + "/cm.h5", "r").read_all();
  REQUIRE(cells.size() == 3);
  for (const auto& c : cells) {
    CHECK(c.attr("status") == "ok");
    CHECK(c.attr("prior:consistency_file") == dir + "/demo_consistency.pt");
    CHECK(c.has_attr("prior:consistency_sha256"));
  }
}

TEST_CASE("every sampler runs on the shipped neural priors through the runner") {
  const auto dir = temp_dir("nn_shipped");
  REQUIRE(run_cli("run experiments/tests/neural_tiny.yaml --fresh --out " + dir + "/r.h5", dir + "/run.log") == 0);
  const auto log = read_text(dir + "/run.log");
  INFO(log);
  CHECK(log.find("16 ok, 0 diverged, 0 failed") != std::string::npos);
}

TEST_CASE("the shipped model files load and their one-step and ODE draws are images") {
  auto den = nn::load_model(resolve_model_path("data/models/edm_fmnist.pt"));
  auto cm = nn::load_model(resolve_model_path("data/models/cm_fmnist.pt"));
  CHECK(den.model->precond().kind == nn::Parameterization::Denoiser);
  CHECK(cm.model->precond().kind == nn::Parameterization::Consistency);
  CHECK(cm.meta.at("teacher_sha256") == sha256_file(resolve_model_path("data/models/edm_fmnist.pt")));
  ConsistencyGenerator g(cm.model, c10::Device(c10::kCPU), {1, 28, 28}, 1);
  torch::NoGradGuard ng;
  auto x = g.generate(torch::randn({16, 1, 28, 28}, torch::Generator(at::detail::createCPUGenerator(7))));
  CHECK(torch::isfinite(x).all().item<bool>());
  CHECK(x.abs().max().item<double>() < 3.0);
  // Images are mostly background (near -1) with some bright pixels, unlike noise around 0.
  CHECK(x.median().item<double>() < -0.5);
  CHECK(x.max().item<double>() > 0.0);
}
