// moegrad demo: the smallest end-to-end use of the autograd. Fits y = X w + b to synthetic
// data by full-batch gradient descent on the mean squared error, printing the loss at every
// step and the fitted parameters beside the true ones. The same seed prints the same run.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "autograd/ops/binary.h"
#include "autograd/ops/reduce.h"
#include "core/error.h"
#include "core/ops/binary.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/random.h"

namespace moegrad::app {
namespace {

constexpr int64_t kSamples = 256;
constexpr int64_t kFeatures = 4;
constexpr double kNoise = 0.1;  // standard deviation of the label noise

struct DemoOptions {
  int steps = 50;
  double lr = 0.1;
  uint64_t seed = 0;
};

po::options_description demo_options(DemoOptions& o) {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help and exit")(
      "steps", po::value(&o.steps)->default_value(o.steps)->value_name("N"),
      "gradient descent steps (>= 1)")(
      "lr", po::value(&o.lr)->default_value(o.lr, "0.1")->value_name("X"), "learning rate (> 0)")(
      "seed", po::value(&o.seed)->default_value(o.seed)->value_name("S"),
      "seed of the synthetic data");
  add_device_option(options);
  return options;
}

}  // namespace

std::string demo_usage() {
  DemoOptions defaults;
  std::ostringstream os;
  os << "Usage: moegrad demo [options]\n\n"
        "Fits y = X w + b ("
     << kSamples << " samples, " << kFeatures << " features, label noise " << kNoise
     << ") by gradient descent with moegrad's\nautograd and prints the loss per step and the "
        "fitted parameters against the true ones.\n\n"
     << demo_options(defaults);
  return os.str();
}

int run_demo(const Args& args) {
  DemoOptions o;
  po::variables_map vm = parse_options("demo", demo_options(o), args);
  if (vm.count("help")) {
    std::cout << demo_usage();
    return 0;
  }
  if (o.steps < 1)
    throw UsageError("demo", "--steps must be at least 1, got " + std::to_string(o.steps));
  if (!(o.lr > 0.0 && std::isfinite(o.lr))) {
    std::ostringstream got;
    got << o.lr;
    throw UsageError("demo", "--lr must be a positive number, got " + got.str());
  }
  const Device device = selected_device("demo", vm);

  Generator gen(o.seed);
  Tensor x = randn({kSamples, kFeatures}, gen, DType::F32, device);
  Tensor w_true = randn({kFeatures}, gen, DType::F32, device);
  Tensor b_true = randn({1}, gen, DType::F32, device);
  Tensor noise = mul_scalar(randn({kSamples}, gen, DType::F32, device), kNoise);
  Tensor y = add(add(sum(mul(x, w_true), {1}), b_true), noise);

  Variable X(x), Y(y);
  Variable w(zeros({kFeatures}, DType::F32, device), true);
  Variable b(zeros({1}, DType::F32, device), true);

  std::printf(
      "moegrad demo: fitting y = X w + b, %lld samples x %lld features, device %s, seed %llu\n",
      (long long)kSamples, (long long)kFeatures, device.str().c_str(), (unsigned long long)o.seed);
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= o.steps; ++step) {
    Variable err = sub(add(sum(mul(X, w), {1}), b), Y);
    Variable loss = mean(mul(err, err));
    last = loss.data().item();
    if (step == 1) first = last;
    std::printf("step %4d  loss %.6f\n", step, last);
    MOEGRAD_CHECK(std::isfinite(last), "demo: the loss diverged at step ", step,
                  "; try a smaller --lr");
    loss.backward();
    binary_(BinaryOp::Sub, w.data(), mul_scalar(w.grad(), o.lr));
    binary_(BinaryOp::Sub, b.data(), mul_scalar(b.grad(), o.lr));
    w.zero_grad();
    b.zero_grad();
  }

  std::vector<float> wt = w_true.to_vector<float>(), wf = w.data().to_vector<float>();
  std::printf("\nparameter      true    fitted\n");
  for (int64_t i = 0; i < kFeatures; ++i) {
    std::printf("w[%lld]     %9.4f %9.4f\n", (long long)i, wt[i], wf[i]);
  }
  std::printf("b        %9.4f %9.4f\n", b_true.item(), b.data().item());
  std::printf("final loss %.6f (step 1: %.6f; the noise alone gives about %.4f)\n", last, first,
              kNoise * kNoise);
  return 0;
}

}  // namespace moegrad::app
