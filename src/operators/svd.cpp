// The SVD view of linear operators (operators/svd.h) and its building blocks.
#include "operators/svd.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "operators/image_ops.h"
#include "operators/operator.h"

namespace psbench {
namespace {

at::Tensor as_double(const at::Tensor& t) { return t.to(at::kDouble); }

class DenseOrthogonal : public Orthogonal {
 public:
  explicit DenseOrthogonal(at::Tensor q) : q_(as_double(q).contiguous()) {
    if (q_.dim() != 2 || q_.size(0) != q_.size(1)) throw std::invalid_argument("dense_orthogonal: Q must be square");
  }
  int64_t dim() const override { return q_.size(0); }
  // Rows of the batch are vectors: (Q c)^T = c^T Q^T.
  at::Tensor apply(const at::Tensor& c) const override { return c.matmul(q_.t().to(c.scalar_type())); }
  at::Tensor apply_transpose(const at::Tensor& v) const override { return v.matmul(q_.to(v.scalar_type())); }

 private:
  at::Tensor q_;
};

// Q = H_1 ... H_r diag(d, 1, ..., 1) from the Householder QR of Q_r = H_1 ... H_r [R; 0]: R is orthogonal
// and upper triangular, so R = diag(d) with d = +-1, and the first r columns of Q are Q_r.
class CompletedOrthogonal : public Orthogonal {
 public:
  explicit CompletedOrthogonal(const at::Tensor& q_r) {
    auto q = as_double(q_r).contiguous();
    if (q.dim() != 2 || q.size(1) > q.size(0))
      throw std::invalid_argument("completed_orthogonal: Q_r must be [d, r] with r <= d");
    std::tie(a_, tau_) = at::geqrf(q);
    sign_ = at::sign(a_.diagonal().narrow(0, 0, q.size(1)));
  }
  int64_t dim() const override { return a_.size(0); }
  at::Tensor apply(const at::Tensor& c) const override {
    auto cd = as_double(c).clone();
    cd.narrow(1, 0, r()).mul_(sign_);
    return at::ormqr(a_, tau_, cd.t(), /*left=*/true, /*transpose=*/false).t().to(c.scalar_type());
  }
  at::Tensor apply_transpose(const at::Tensor& v) const override {
    auto w = at::ormqr(a_, tau_, as_double(v).t(), /*left=*/true, /*transpose=*/true).t().contiguous();
    w.narrow(1, 0, r()).mul_(sign_);
    return w.to(v.scalar_type());
  }

 private:
  int64_t r() const { return sign_.size(0); }
  at::Tensor a_, tau_, sign_;
};

class PermutationOrthogonal : public Orthogonal {
 public:
  explicit PermutationOrthogonal(at::Tensor perm) : perm_(perm.to(at::kLong).contiguous()) {
    inverse_ = at::argsort(perm_);
  }
  int64_t dim() const override { return perm_.size(0); }
  at::Tensor apply(const at::Tensor& c) const override { return c.index_select(1, inverse_.to(c.device())); }
  at::Tensor apply_transpose(const at::Tensor& v) const override { return v.index_select(1, perm_.to(v.device())); }

 private:
  at::Tensor perm_, inverse_;
};

// Q P for a base Q and a permutation P of the coordinates (coordinate j of the new spectral vector is coordinate
// perm[j] of the base's).
class PermutedOrthogonal : public Orthogonal {
 public:
  PermutedOrthogonal(std::shared_ptr<const Orthogonal> base, at::Tensor perm)
      : base_(std::move(base)), p_(std::move(perm)) {}
  int64_t dim() const override { return base_->dim(); }
  at::Tensor apply(const at::Tensor& c) const override { return base_->apply(p_.apply(c)); }
  at::Tensor apply_transpose(const at::Tensor& v) const override { return p_.apply_transpose(base_->apply_transpose(v)); }

 private:
  std::shared_ptr<const Orthogonal> base_;
  PermutationOrthogonal p_;
};

}  // namespace

std::shared_ptr<const SvdView> SvdView::truncated(double rel_floor) const {
  const int64_t r = rank();
  const auto keep = s_ >= rel_floor * (r > 0 ? s_.max().item<double>() : 0.0);
  const auto kept = keep.nonzero().flatten(), dropped = keep.logical_not().nonzero().flatten();
  if (dropped.numel() == 0) return std::make_shared<SvdView>(*this);
  // Kept coordinates first, then the dropped ones, then each space's coordinates beyond the rank as they were.
  const auto head = at::cat({kept, dropped});
  auto perm_of = [&](int64_t d) { return at::cat({head, at::arange(r, d, at::kLong)}); };
  return std::make_shared<SvdView>(in_, out_, s_.index_select(0, kept),
                                   std::make_shared<PermutedOrthogonal>(u_, perm_of(u_->dim())),
                                   std::make_shared<PermutedOrthogonal>(v_, perm_of(v_->dim())));
}

std::shared_ptr<const Orthogonal> dense_orthogonal(at::Tensor q) { return std::make_shared<DenseOrthogonal>(std::move(q)); }
std::shared_ptr<const Orthogonal> completed_orthogonal(const at::Tensor& q_r) {
  return std::make_shared<CompletedOrthogonal>(q_r);
}
std::shared_ptr<const Orthogonal> permutation_orthogonal(at::Tensor perm) {
  return std::make_shared<PermutationOrthogonal>(std::move(perm));
}

SvdView::SvdView(Shape input_shape, Shape output_shape, at::Tensor s, std::shared_ptr<const Orthogonal> u,
                 std::shared_ptr<const Orthogonal> v)
    : in_(std::move(input_shape)), out_(std::move(output_shape)), s_(as_double(s).contiguous()), u_(std::move(u)),
      v_(std::move(v)) {
  if (u_->dim() != numel(out_) || v_->dim() != numel(in_))
    throw std::invalid_argument("SvdView: U acts on " + std::to_string(u_->dim()) + " numbers and V on " +
                                std::to_string(v_->dim()) + ", the operator maps " + shape_string(in_) + " to " +
                                shape_string(out_));
  if (s_.dim() != 1 || s_.size(0) > std::min(u_->dim(), v_->dim()))
    throw std::invalid_argument("SvdView: more singular values than min(m, n)");
}

at::Tensor SvdView::vt(const at::Tensor& x) const { return v_->apply_transpose(x.reshape({x.size(0), -1})); }
at::Tensor SvdView::ut(const at::Tensor& y) const { return u_->apply_transpose(y.reshape({y.size(0), -1})); }
at::Tensor SvdView::v(const at::Tensor& c) const {
  Shape shape = in_;
  shape.insert(shape.begin(), c.size(0));
  return v_->apply(c).reshape(shape);
}
at::Tensor SvdView::u(const at::Tensor& c) const {
  Shape shape = out_;
  shape.insert(shape.begin(), c.size(0));
  return u_->apply(c).reshape(shape);
}

at::Tensor SvdView::forward(const at::Tensor& x) const {
  auto c = vt(x).narrow(1, 0, rank()) * s_.to(x.scalar_type());
  return u(at::constant_pad_nd(c, {0, u_->dim() - rank()}, 0.0));
}

at::Tensor SvdView::adjoint(const at::Tensor& y) const {
  auto c = ut(y).narrow(1, 0, rank()) * s_.to(y.scalar_type());
  return v(at::constant_pad_nd(c, {0, v_->dim() - rank()}, 0.0));
}

int64_t numerical_rank(const at::Tensor& s) {
  const double largest = s.numel() > 0 ? s.max().item<double>() : 0.0;
  return largest > 0 ? (s > kSvdRankTolerance * largest).sum().item<int64_t>() : 0;
}

std::shared_ptr<const SvdView> dense_svd(const Operator& op) {
  const int64_t n = numel(op.input_shape()), m = numel(op.output_shape());
  if (!op.is_linear() || n > kMaxSvdSize || m > kMaxSvdSize)
    throw std::logic_error("dense_svd: operator '" + op.name() + "' is not linear or maps more than " +
                           std::to_string(kMaxSvdSize) + " numbers");
  // The operator's own matrix, or its columns probed on the unit vectors.
  auto [u, s, vh] = at::linalg_svd(op.has_matrix() ? as_double(op.matrix()) : probe_matrix(op), /*full_matrices=*/true);
  const int64_t r = numerical_rank(s);
  return std::make_shared<SvdView>(op.input_shape(), op.output_shape(), s.narrow(0, 0, r), dense_orthogonal(u),
                                   dense_orthogonal(vh.t()));
}

}  // namespace psbench
