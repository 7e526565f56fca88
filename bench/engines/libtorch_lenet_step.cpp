// Candidate (a) for the native training engine: one DB3 LeNet-5 training step (forward, CE loss,
// backward, Adam update) through Debian's libtorch C++ frontend (PyTorch 1.13), behind a C ABI that
// Deno FFI loads (bench/engine_choice.ts). Prototype for measurement only, not a library module.
//
// ABI (extern "C"; the same for every candidate in bench/engines/):
//   int32_t cand_init(int32_t batch, int32_t threads, char* err, int32_t errlen)  → 0, or −1 + message
//   float   cand_step(const float* x, const int32_t* y)   x: batch×28×28×1 floats (NHWC = NCHW for one
//                                                         channel), y: batch labels → the step's loss
//   int32_t cand_describe(char* buf, int32_t len)        → engine description
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace {

struct LeNetImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  LeNetImpl() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 20, 5)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(20, 50, 5)));
    fc1 = register_module("fc1", torch::nn::Linear(800, 200));
    fc2 = register_module("fc2", torch::nn::Linear(200, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = x.flatten(1);
    return fc2->forward(torch::relu(fc1->forward(x)));
  }
};
TORCH_MODULE(LeNet);

struct State {
  int batch = 0;
  LeNet net{nullptr};
  std::unique_ptr<torch::optim::Adam> opt;
};
State* st = nullptr;

void put(char* buf, int32_t len, const std::string& s) {
  if (len <= 0) return;
  std::strncpy(buf, s.c_str(), static_cast<size_t>(len - 1));
  buf[len - 1] = 0;
}

}  // namespace

extern "C" {

int32_t cand_init(int32_t batch, int32_t threads, char* err, int32_t errlen) {
  try {
    torch::set_num_threads(threads);
    torch::manual_seed(0);
    delete st;
    st = new State();
    st->batch = batch;
    st->net = LeNet();
    st->opt = std::make_unique<torch::optim::Adam>(st->net->parameters(), torch::optim::AdamOptions(1e-3));
    return 0;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return -1;
  }
}

float cand_step(const float* x, const int32_t* y) {
  const int64_t b = st->batch;
  auto xt = torch::from_blob(const_cast<float*>(x), {b, 1, 28, 28}, torch::kFloat32);
  auto yt = torch::from_blob(const_cast<int32_t*>(y), {b}, torch::kInt32).to(torch::kInt64);
  st->opt->zero_grad();
  auto loss = torch::nn::functional::cross_entropy(st->net->forward(xt), yt);
  loss.backward();
  st->opt->step();
  return loss.item<float>();
}

int32_t cand_describe(char* buf, int32_t len) {
  put(buf, len, std::string("libtorch ") + TORCH_VERSION + ", " + std::to_string(torch::get_num_threads()) +
                    " threads");
  return 0;
}

}  // extern "C"
