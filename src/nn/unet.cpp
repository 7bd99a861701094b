#include "nn/unet.h"

#include <cmath>
#include <sstream>

#include "core/errors.h"

namespace psbench::nn {
namespace {

int64_t groups_for(int64_t channels) { return channels % 8 == 0 ? 8 : (channels % 4 == 0 ? 4 : 1); }

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
}

void zero_init(torch::nn::Conv2d& c) {
  torch::NoGradGuard g;
  c->weight.zero_();
  c->bias.zero_();
}

}  // namespace

std::string UNetConfig::to_string() const {
  std::ostringstream os;
  os << "channels=" << channels << " base=" << base << " mult=";
  for (size_t i = 0; i < mult.size(); ++i) os << (i ? "," : "") << mult[i];
  os << " blocks=" << blocks << " embedding=" << embedding << " attention=" << (attention ? 1 : 0);
  return os.str();
}

UNetConfig UNetConfig::from_string(const std::string& s) {
  UNetConfig c;
  c.mult.clear();
  std::istringstream is(s);
  std::string item;
  int seen = 0;
  try {
    while (is >> item) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw ConfigError("");
      const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
      ++seen;
      if (key == "channels") c.channels = std::stoll(value);
      else if (key == "base") c.base = std::stoll(value);
      else if (key == "blocks") c.blocks = std::stoll(value);
      else if (key == "embedding") c.embedding = std::stoll(value);
      else if (key == "attention") c.attention = std::stoll(value) != 0;
      else if (key == "mult") {
        std::istringstream ms(value);
        std::string m;
        while (std::getline(ms, m, ',')) c.mult.push_back(std::stoll(m));
      } else throw ConfigError("");
    }
  } catch (const std::exception&) {
    throw ConfigError("UNet architecture string is malformed: '" + s + "'");
  }
  if (seen != 6 || c.mult.empty() || c.channels < 1 || c.base < 1 || c.blocks < 1 || c.embedding < 2)
    throw ConfigError("UNet architecture string is incomplete or invalid: '" + s + "'");
  return c;
}

ResBlockImpl::ResBlockImpl(int64_t in, int64_t out, int64_t embedding) {
  norm1_ = register_module("norm1", torch::nn::GroupNorm(groups_for(in), in));
  conv1_ = register_module("conv1", conv(in, out, 3));
  emb_ = register_module("emb", torch::nn::Linear(embedding, out));
  norm2_ = register_module("norm2", torch::nn::GroupNorm(groups_for(out), out));
  conv2_ = register_module("conv2", conv(out, out, 3));
  zero_init(conv2_);  // each block starts as the identity
  if (in != out) skip_ = register_module("skip", conv(in, out, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = conv1_(torch::silu(norm1_(x)));
  h = h + emb_(emb).unsqueeze(-1).unsqueeze(-1);
  h = conv2_(torch::silu(norm2_(h)));
  return (skip_ ? skip_(x) : x) + h;
}

AttentionImpl::AttentionImpl(int64_t channels) {
  norm_ = register_module("norm", torch::nn::GroupNorm(groups_for(channels), channels));
  qkv_ = register_module("qkv", conv(channels, 3 * channels, 1));
  proj_ = register_module("proj", conv(channels, channels, 1));
  zero_init(proj_);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto qkv = qkv_(norm_(x)).reshape({b, 3, c, h * w});
  auto q = qkv.select(1, 0), k = qkv.select(1, 1), v = qkv.select(1, 2);  // [B, C, N]
  auto attn = torch::softmax(torch::bmm(q.transpose(1, 2), k) / std::sqrt(static_cast<double>(c)), -1);  // [B, N, N]
  auto out = torch::bmm(v, attn.transpose(1, 2)).reshape({b, c, h, w});
  return x + proj_(out);
}

UNetImpl::UNetImpl(UNetConfig config) : config_(std::move(config)) {
  const auto& cfg = config_;
  const int64_t levels = static_cast<int64_t>(cfg.mult.size());
  const int64_t half = cfg.embedding / 2;
  // Frequencies spread geometrically over [1, 200] radians per unit of c_noise = ln(sigma) / 4.
  frequencies_ = register_buffer("frequencies", torch::exp(torch::linspace(0.0, std::log(200.0), half)));
  emb1_ = register_module("emb1", torch::nn::Linear(2 * half, cfg.embedding));
  emb2_ = register_module("emb2", torch::nn::Linear(cfg.embedding, cfg.embedding));
  conv_in_ = register_module("conv_in", conv(cfg.channels, cfg.base, 3));

  std::vector<int64_t> skip_channels{cfg.base};
  int64_t ch = cfg.base;
  for (int64_t l = 0; l < levels; ++l) {
    const int64_t out = cfg.base * cfg.mult[l];
    for (int64_t b = 0; b < cfg.blocks; ++b) {
      down_.push_back(register_module("down" + std::to_string(l) + "_" + std::to_string(b), ResBlock(ch, out, cfg.embedding)));
      ch = out;
      skip_channels.push_back(ch);
    }
    if (l + 1 < levels) {
      downsample_.push_back(register_module("downsample" + std::to_string(l), conv(ch, ch, 3, 2)));
      skip_channels.push_back(ch);
    }
  }
  mid_.push_back(register_module("mid0", ResBlock(ch, ch, cfg.embedding)));
  if (cfg.attention) mid_attention_ = register_module("mid_attention", Attention(ch));
  mid_.push_back(register_module("mid1", ResBlock(ch, ch, cfg.embedding)));
  for (int64_t l = levels - 1; l >= 0; --l) {
    const int64_t out = cfg.base * cfg.mult[l];
    for (int64_t b = 0; b <= cfg.blocks; ++b) {
      const int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      up_.push_back(register_module("up" + std::to_string(l) + "_" + std::to_string(b), ResBlock(ch + skip, out, cfg.embedding)));
      ch = out;
    }
    if (l > 0) upsample_.push_back(register_module("upsample" + std::to_string(l), conv(ch, ch, 3)));
  }
  norm_out_ = register_module("norm_out", torch::nn::GroupNorm(groups_for(ch), ch));
  conv_out_ = register_module("conv_out", conv(ch, cfg.channels, 3));
  zero_init(conv_out_);
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& c_noise) {
  const int64_t levels = static_cast<int64_t>(config_.mult.size());
  auto phase = c_noise.reshape({-1, 1}).to(frequencies_.scalar_type()) * frequencies_.unsqueeze(0);
  auto emb = torch::cat({torch::sin(phase), torch::cos(phase)}, 1);
  emb = emb2_(torch::silu(emb1_(emb)));
  emb = torch::silu(emb);  // blocks see the activated embedding

  auto h = conv_in_(x);
  std::vector<torch::Tensor> skips{h};
  size_t bi = 0;
  for (int64_t l = 0; l < levels; ++l) {
    for (int64_t b = 0; b < config_.blocks; ++b) {
      h = down_[bi++](h, emb);
      skips.push_back(h);
    }
    if (l + 1 < levels) {
      h = downsample_[l](h);
      skips.push_back(h);
    }
  }
  h = mid_[0](h, emb);
  if (mid_attention_) h = mid_attention_(h);
  h = mid_[1](h, emb);
  bi = 0;
  size_t ui = 0;
  for (int64_t l = levels - 1; l >= 0; --l) {
    for (int64_t b = 0; b <= config_.blocks; ++b) {
      h = up_[bi++](torch::cat({h, skips.back()}, 1), emb);
      skips.pop_back();
    }
    if (l > 0) {
      h = at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});
      h = upsample_[ui++](h);
    }
  }
  return conv_out_(torch::silu(norm_out_(h)));
}

int64_t UNetImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace psbench::nn
