#include <cmath>
#include <functional>
#include <string>

#include "backend_test.hpp"
#include "host/core/tensor.hpp"
#include "host/models/ensemble_linear.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace mbmpo {
namespace {

const Activation kActivations[] = {Activation::identity, Activation::relu, Activation::tanh,
                                   Activation::swish};

std::string name_of(Activation act) {
  switch (act) {
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::swish: return "swish";
    case Activation::identity: break;
  }
  return "identity";
}

// Inputs of one layer call, in double; the float cases cast them.
struct LayerData {
  EnsembleLinearDims d;
  std::vector<double> x, v, g, b, dy;
};

LayerData random_layer(const EnsembleLinearDims& d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  LayerData data{d, {}, {}, {}, {}, {}};
  const auto n = [](std::int64_t a, std::int64_t b, std::int64_t c = 1) {
    return static_cast<std::size_t>(a * b * c);
  };
  data.x = test::random_vector<double>(rng, n(d.models, d.rows, d.in), -2, 2);
  data.v = test::random_vector<double>(rng, n(d.models, d.out, d.in), -1, 1);
  data.g = test::random_vector<double>(rng, n(d.models, d.out), 0.5, 1.5);
  data.b = test::random_vector<double>(rng, n(d.models, d.out), -0.5, 0.5);
  data.dy = test::random_vector<double>(rng, n(d.models, d.rows, d.out), -1, 1);
  return data;
}

// The layer written as plain loops, straight from the definition: an independent check of the
// Eigen reference's layout (no transposes, no mixed-up strides).
std::vector<double> naive_forward(const LayerData& L, Activation act) {
  const auto& d = L.d;
  std::vector<double> y(static_cast<std::size_t>(d.models * d.rows * d.out));
  for (std::int64_t k = 0; k < d.models; ++k)
    for (std::int64_t i = 0; i < d.out; ++i) {
      double norm_sq = 0;
      for (std::int64_t j = 0; j < d.in; ++j) norm_sq += std::pow(L.v[(k * d.out + i) * d.in + j], 2);
      const double scale = L.g[k * d.out + i] / std::sqrt(norm_sq);
      for (std::int64_t r = 0; r < d.rows; ++r) {
        double acc = L.b[k * d.out + i];
        for (std::int64_t j = 0; j < d.in; ++j)
          acc += scale * L.v[(k * d.out + i) * d.in + j] * L.x[(k * d.rows + r) * d.in + j];
        y[(k * d.rows + r) * d.out + i] = activate(act, acc);
      }
    }
  return y;
}

TEST(EnsembleLinearReference, ForwardMatchesPlainLoops) {
  const EnsembleLinearDims d{3, 7, 5, 4};
  for (Activation act : kActivations) {
    SCOPED_TRACE(name_of(act));
    const LayerData L = random_layer(d, test::test_seed());
    std::vector<double> pre(L.dy.size()), y(L.dy.size());
    cpu::ensemble_linear_forward(d, act, L.x.data(), L.v.data(), L.g.data(), nullptr, L.b.data(), pre.data(),
                                 y.data());
    const std::vector<double> expected = naive_forward(L, act);
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], expected[i], 1e-12) << i;
  }
}

// Central finite differences of L = sum(dy * y) in double against the analytic backward pass,
// for every input and parameter element.
TEST(EnsembleLinearReference, GradientsMatchFiniteDifferences) {
  const EnsembleLinearDims d{2, 6, 5, 3};
  for (Activation act : kActivations) {
    SCOPED_TRACE(name_of(act) + ", MBMPO_TEST_SEED=" + std::to_string(test::test_seed()));
    LayerData L = random_layer(d, test::test_seed() + static_cast<int>(act));
    const std::size_t y_size = L.dy.size();
    auto loss = [&]() {
      std::vector<double> y(y_size);
      cpu::ensemble_linear_forward(d, act, L.x.data(), L.v.data(), L.g.data(), nullptr, L.b.data(),
                                   static_cast<double*>(nullptr), y.data());
      double total = 0;
      for (std::size_t i = 0; i < y_size; ++i) total += L.dy[i] * y[i];
      return total;
    };
    std::vector<double> pre(y_size), y(y_size);
    cpu::ensemble_linear_forward(d, act, L.x.data(), L.v.data(), L.g.data(), nullptr, L.b.data(), pre.data(),
                                 y.data());
    std::vector<double> dx(L.x.size()), dv(L.v.size()), dg(L.g.size()), db(L.b.size());
    cpu::ensemble_linear_backward(d, act, L.x.data(), L.v.data(), L.g.data(), nullptr, pre.data(),
                                  L.dy.data(), dx.data(), dv.data(), dg.data(), db.data());

    const auto check = [&](std::vector<double>& param, const std::vector<double>& grad,
                           const char* name) {
      const double h = 1e-6;
      for (std::size_t i = 0; i < param.size(); ++i) {
        const double saved = param[i];
        param[i] = saved + h;
        const double up = loss();
        param[i] = saved - h;
        const double down = loss();
        param[i] = saved;
        const double numeric = (up - down) / (2 * h);
        ASSERT_NEAR(grad[i], numeric, 1e-6 * (1 + std::fabs(numeric))) << name << "[" << i << "]";
      }
    };
    check(L.x, dx, "dx");
    check(L.v, dv, "dv");
    check(L.g, dg, "dg");
    check(L.b, db, "db");
  }
}

// ---- Both backends against the double reference, outputs NaN-poisoned first ----------------

struct ParityCase {
  EnsembleLinearDims d;
  Activation act;
};

class EnsembleLinearParity : public test::BackendTest {};

// The CPU layer gives the same bits wherever its buffers sit (see test::ShiftedCopy); sizes of 1
// take Eigen's matrix-vector paths.
TEST(EnsembleLinearReference, CpuResultsDoNotDependOnBufferAlignment) {
  for (const EnsembleLinearDims d : {EnsembleLinearDims{2, 13, 7, 5}, EnsembleLinearDims{3, 1, 9, 1},
                                     EnsembleLinearDims{2, 11, 1, 6}}) {
    const LayerData L = random_layer(d, test::test_seed());
    const auto f = [](const std::vector<double>& values) { return test::cast<float>(values); };
    const std::size_t xs = L.x.size(), ys = L.dy.size(), vs = L.v.size(), gs = L.g.size();
    auto run = [&](int shift) {
      test::ShiftedCopy<float> x(f(L.x), shift), v(f(L.v), shift), g(f(L.g), shift), b(f(L.b), shift),
          dy(f(L.dy), shift), pre({}, shift, ys), y({}, shift, ys), dx({}, shift, xs), dv({}, shift, vs),
          dg({}, shift, gs), db({}, shift, gs);
      cpu::ensemble_linear_forward(d, Activation::tanh, x.data(), v.data(), g.data(), nullptr, b.data(), pre.data(), y.data());
      cpu::ensemble_linear_backward(d, Activation::tanh, x.data(), v.data(), g.data(), nullptr, pre.data(), dy.data(),
                                    dx.data(), dv.data(), dg.data(), db.data());
      std::vector<std::vector<float>> out = {y.values(ys), dx.values(xs), dv.values(vs), dg.values(gs),
                                             db.values(gs)};
      return out;
    };
    const auto expected = run(0);
    for (int shift = 1; shift < 16; ++shift) {
      EXPECT_EQ(run(shift), expected) << "shift " << shift << ", rows " << d.rows << ", in " << d.in
                                      << ", out " << d.out;
    }
  }
}

std::vector<float> to_float(const std::vector<double>& values);

// Row blocks cover the rows once, in order, at most 256 each: 256 each and a partial last one
// above 256 rows, and below it several near-equal ones (a rollout step's 200 rows a model: 4 of
// 50), none small enough for Eigen's coefficient-wise product path once a call has more than 64.
TEST(EnsembleLinearReference, RowBlocksCoverTheRowsInBalancedBlocks) {
  EXPECT_EQ(cpu::RowBlocks(200).blocks, 4);
  EXPECT_EQ(cpu::RowBlocks(200).size(3), 50);
  EXPECT_EQ(cpu::RowBlocks(40).blocks, 1);
  EXPECT_EQ(cpu::RowBlocks(0).blocks, 0);
  EXPECT_EQ(cpu::RowBlocks(500).blocks, 2);
  EXPECT_EQ(cpu::RowBlocks(500).size(1), 244);
  for (std::int64_t rows : {1, 63, 64, 65, 200, 255, 256, 257, 500, 1023, 20000, 100001}) {
    const cpu::RowBlocks blocks(rows);
    std::int64_t covered = 0, smallest = rows, largest = 0;
    for (std::int64_t b = 0; b < blocks.blocks; ++b) {
      EXPECT_EQ(blocks.start(b), covered) << rows << " rows, block " << b;
      covered += blocks.size(b);
      smallest = std::min<std::int64_t>(smallest, blocks.size(b));
      largest = std::max<std::int64_t>(largest, blocks.size(b));
    }
    EXPECT_EQ(covered, rows);
    EXPECT_LE(largest, 256) << rows << " rows";
    if (rows <= 256) EXPECT_LE(largest - smallest, 1) << rows << " rows";
    if (rows > 64 && rows <= 256) EXPECT_GE(smallest, 32) << rows << " rows";
    if (rows > 192 && rows <= 256) EXPECT_EQ(blocks.blocks, 4) << rows << " rows";
  }
}

TEST(EnsembleLinearReference, CpuResultsDoNotDependOnTheThreadCount) {
#if !defined(_OPENMP)
  GTEST_SKIP() << "built without OpenMP: the CPU backend runs one thread";
#else
  const int saved_threads = omp_get_max_threads();
  for (const EnsembleLinearDims d : {EnsembleLinearDims{3, 517, 23, 130}, EnsembleLinearDims{5, 40, 70, 17}}) {
    const LayerData L = random_layer(d, test::test_seed());
    const std::vector<float> x = to_float(L.x), v = to_float(L.v), g = to_float(L.g), b = to_float(L.b),
                             dy = to_float(L.dy);
    auto run = [&](int threads) {
      omp_set_num_threads(threads);
      std::vector<float> pre(dy.size()), y(dy.size()), dx(x.size()), dv(v.size()), dg(g.size()), db(b.size());
      cpu::ensemble_linear_forward(d, Activation::swish, x.data(), v.data(), g.data(), nullptr, b.data(), pre.data(),
                                   y.data());
      cpu::ensemble_linear_backward(d, Activation::swish, x.data(), v.data(), g.data(), nullptr, pre.data(),
                                    dy.data(), dx.data(), dv.data(), dg.data(), db.data());
      return std::vector<std::vector<float>>{pre, y, dx, dv, dg, db};
    };
    const auto one = run(1);
    const char* names[] = {"pre", "y", "dx", "dv", "dg", "db"};
    for (int threads : {2, 3, 4}) {
      const auto many = run(threads);
      for (std::size_t o = 0; o < one.size(); ++o) {
        for (std::size_t i = 0; i < one[o].size(); ++i) {
          ASSERT_EQ(many[o][i], one[o][i]) << names[o] << "[" << i << "] with " << threads << " threads, rows "
                                           << d.rows << ", in " << d.in << ", out " << d.out;
        }
      }
    }
  }
  omp_set_num_threads(saved_threads);
#endif
}

std::vector<float> to_float(const std::vector<double>& values) {
  return std::vector<float>(values.begin(), values.end());
}
std::vector<double> to_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

void expect_close(const std::vector<float>& actual, const std::vector<double>& expected,
                  double tolerance, const char* name) {
  ASSERT_EQ(actual.size(), expected.size()) << name;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    ASSERT_FALSE(std::isnan(actual[i])) << name << "[" << i << "] was not written (still NaN)";
    ASSERT_NEAR(actual[i], expected[i], tolerance * (1 + std::fabs(expected[i])))
        << name << "[" << i << "]";
  }
}

void run_parity(Context& context, const ParityCase& c, std::uint64_t seed, bool with_dx) {
  const auto& d = c.d;
  const Backend backend = context.backend();
  // The reference runs in double on exactly the float values the backend sees.
  LayerData L = random_layer(d, seed);
  for (auto* values : {&L.x, &L.v, &L.g, &L.b, &L.dy})
    *values = to_double(to_float(*values));

  std::vector<double> pre_ref(L.dy.size()), y_ref(L.dy.size()), dx_ref(L.x.size()),
      dv_ref(L.v.size()), dg_ref(L.g.size()), db_ref(L.b.size());
  cpu::ensemble_linear_forward(d, c.act, L.x.data(), L.v.data(), L.g.data(), nullptr, L.b.data(),
                               pre_ref.data(), y_ref.data());
  cpu::ensemble_linear_backward(d, c.act, L.x.data(), L.v.data(), L.g.data(), nullptr, pre_ref.data(),
                                L.dy.data(), dx_ref.data(), dv_ref.data(), dg_ref.data(),
                                db_ref.data());

  auto x = Tensor<float>::from_host(backend, {d.models, d.rows, d.in}, to_float(L.x));
  auto v = Tensor<float>::from_host(backend, {d.models, d.out, d.in}, to_float(L.v));
  auto g = Tensor<float>::from_host(backend, {d.models, d.out}, to_float(L.g));
  auto b = Tensor<float>::from_host(backend, {d.models, d.out}, to_float(L.b));
  auto dy = Tensor<float>::from_host(backend, {d.models, d.rows, d.out}, to_float(L.dy));
  Tensor<float> pre(backend, {d.models, d.rows, d.out}), y(backend, {d.models, d.rows, d.out}),
      dx(backend, {d.models, d.rows, d.in}), dv(backend, {d.models, d.out, d.in}),
      dg(backend, {d.models, d.out}), db(backend, {d.models, d.out});
  for (Tensor<float>* out : {&pre, &y, &dx, &dv, &dg, &db}) out->poison();

  const EnsembleLinearParams params{v, g, b, {}};
  ensemble_linear_forward(context, c.act, params, x, pre, y);
  ensemble_linear_backward(context, c.act, params, x, pre, dy,
                           with_dx ? dx.view() : TensorView<float>{backend, nullptr, {}},
                           EnsembleLinearGrads{dv, dg, db});
  context.synchronize();

  // float against double: products of length in/rows accumulate rounding ~ sqrt(n) * 6e-8 * |terms|.
  const double tolerance = 2e-5 * std::sqrt(static_cast<double>(std::max(d.rows, d.in)));
  expect_close(pre.to_host(), pre_ref, tolerance, "pre");
  expect_close(y.to_host(), y_ref, tolerance, "y");
  if (with_dx) {
    expect_close(dx.to_host(), dx_ref, tolerance, "dx");
  } else {
    for (float value : dx.to_host()) ASSERT_TRUE(std::isnan(value)) << "dx written when not asked";
  }
  expect_close(dv.to_host(), dv_ref, tolerance, "dv");
  expect_close(dg.to_host(), dg_ref, tolerance, "dg");
  expect_close(db.to_host(), db_ref, tolerance, "db");

  // With the effective weights computed once beforehand (as a rollout and a minibatch do), the
  // same bits.
  Tensor<float> w(backend, {d.models, d.out, d.in});
  w.poison();
  ensemble_weight_norm(context, params, w);
  const std::vector<std::vector<float>> first = {pre.to_host(), y.to_host(), dx.to_host(), dv.to_host(),
                                                 dg.to_host(), db.to_host()};
  for (Tensor<float>* out : {&pre, &y, &dx, &dv, &dg, &db}) out->poison();
  const EnsembleLinearParams with_w{v, g, b, w};
  ensemble_linear_forward(context, c.act, with_w, x, pre, y);
  ensemble_linear_backward(context, c.act, with_w, x, pre, dy,
                           with_dx ? dx.view() : TensorView<float>{backend, nullptr, {}},
                           EnsembleLinearGrads{dv, dg, db});
  const std::vector<std::vector<float>> second = {pre.to_host(), y.to_host(), dx.to_host(), dv.to_host(),
                                                  dg.to_host(), db.to_host()};
  const char* names[] = {"pre", "y", "dx", "dv", "dg", "db"};
  for (int i = 0; i < 6; ++i) {
    if (i == 2 && !with_dx) continue;  // dx stays NaN (unwritten) in both
    EXPECT_EQ(first[i], second[i]) << names[i] << " differs with precomputed effective weights";
  }
}

TEST_P(EnsembleLinearParity, AwkwardSizesAllActivations) {
  const std::uint64_t seed = test::test_seed();
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(seed));
  for (Activation act : kActivations) {
    SCOPED_TRACE(name_of(act));
    run_parity(context(), {{3, 77, 23, 45}, act}, seed, /*with_dx=*/true);
  }
}

TEST_P(EnsembleLinearParity, EdgeSizes) {
  const std::uint64_t seed = test::test_seed();
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(seed));
  // One row, one output, a width past the 128-thread row blocks, rows past a column-sum tile,
  // and a first layer without an input gradient.
  run_parity(context(), {{1, 1, 1, 1}, Activation::tanh}, seed, true);
  run_parity(context(), {{2, 3, 300, 1}, Activation::relu}, seed + 1, true);
  run_parity(context(), {{5, 1031, 17, 33}, Activation::swish}, seed + 2, false);
  run_parity(context(), {{4, 0, 6, 7}, Activation::identity}, seed + 3, true);
}

TEST_P(EnsembleLinearParity, RejectsMismatchedShapes) {
  Tensor<float> x(backend(), {3, 10, 23}), v(backend(), {3, 45, 23}), g(backend(), {3, 45}),
      b(backend(), {3, 44}), y(backend(), {3, 10, 45});
  const EnsembleLinearParams params{v, g, b, {}};
  try {
    ensemble_linear_forward(context(), Activation::relu, params, x,
                            TensorView<float>{backend(), nullptr, {}}, y);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bias b: expected shape [3, 45]"), std::string::npos)
        << e.what();
  }
  Tensor<float> b_ok(backend(), {3, 45}), x_bad(backend(), {3, 10, 22});
  EXPECT_THROW(ensemble_linear_forward(context(), Activation::relu, {v, g, b_ok, {}}, x_bad,
                                       TensorView<float>{backend(), nullptr, {}}, y),
               Error);
}

MBMPO_INSTANTIATE_BACKEND_TESTS(EnsembleLinearParity);

}  // namespace
}  // namespace mbmpo
