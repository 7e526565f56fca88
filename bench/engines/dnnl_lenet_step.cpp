// Candidate (b) for the native training engine: one DB3 LeNet-5 training step through Debian's oneDNN
// 2.6 primitives (convolution, eltwise ReLU, max-pooling and inner product, forward-training and
// backward), with softmax cross-entropy and Adam written by hand. Weights live in the layout the forward
// primitive prefers (format `any`); where a backward primitive wants another layout, weights are
// reordered into it before backward-data and the weight gradient is reordered back after
// backward-weights, so Adam stays a plain element-wise loop. Activations: see ACT below. Threads:
// oneDNN's OpenMP runtime (omp_set_num_threads). Prototype for measurement only (bench/engine_choice.ts),
// not a library module. Measured result: conv1's backward-weights still runs oneDNN's reference code on
// AVX2 (see DESIGN.md, "Native training engine: choice by measurement").
//
// ABI: see bench/engines/libtorch_lenet_step.cpp (cand_init, cand_step, cand_describe).
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// Activation layout: channel-blocked by 8 (nChw8c). oneDNN 2.6 on AVX2 has jit convolution backward
// kernels only for blocked layouts; with NHWC activations it falls back to its reference code (≈ 12 s
// per backward-data call at batch 128, measured), so NHWC is not an option here.
constexpr tag ACT = tag::aBcd8b;

engine eng;
stream strm;
int B = 0;
int64_t adamStep = 0;

struct Param {
  memory w, g, m, v;  // value, gradient, Adam moments (all in the same layout)
  size_t count() const { return w.get_desc().get_size() / sizeof(float); }
};

memory mem(const memory::desc& d) { return memory(d, eng); }
float* ptr(const memory& m) { return static_cast<float*>(m.get_data_handle()); }
memory::desc md(memory::dims d, tag t) { return memory::desc(d, dt::f32, t); }

Param param(const memory::desc& d, float bound, std::mt19937& gen) {
  Param p{mem(d), mem(d), mem(d), mem(d)};
  std::uniform_real_distribution<float> u(-bound, bound);
  float* w = ptr(p.w);
  for (size_t i = 0; i < p.count(); i++) w[i] = u(gen), ptr(p.m)[i] = 0, ptr(p.v)[i] = 0;
  return p;
}

// One trainable layer that is a conv or an inner product: forward and both backward primitives.
struct Layer {
  primitive fwd, bwdData, bwdWeights, toBwd, gradBack;
  bool hasBwdData = true, reorderW = false, reorderG = false;
  memory gBwd;  // weight gradient in the layout the backward-weights primitive writes
  memory wBwd;  // weights in the layout the backward-data primitive wants (reordered each step)
  Param w, b;
  memory out, dOut, dIn;  // dIn: gradient wrt this layer's input
};

struct Act {  // ReLU + optional pool after a layer
  primitive reluF, reluB, poolF, poolB;
  bool pool = false;
  memory reluOut, dReluOut, poolOut, dPoolOut, ws;
};

Layer conv1, conv2, fc1, fc2;
Act a1, a2, a3;
memory xMem, logitsGrad;

Layer makeConv(const memory::desc& src, int cin, int cout, int k, bool bwdData, std::mt19937& gen) {
  const memory::dim H = src.dims()[2], W = src.dims()[3];
  auto dst = md({B, cout, H - k + 1, W - k + 1}, ACT);
  auto wAny = memory::desc({cout, cin, k, k}, dt::f32, tag::any);
  auto bias = md({cout}, tag::x);
  convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, src, wAny, bias, dst,
                               {1, 1}, {0, 0}, {0, 0});
  convolution_forward::primitive_desc fpd(fd, eng);
  Layer L;
  const float bound = 1.0f / std::sqrt(static_cast<float>(cin * k * k));
  L.w = param(fpd.weights_desc(), bound, gen);
  L.b = param(bias, bound, gen);
  L.fwd = convolution_forward(fpd);
  L.out = mem(dst);
  L.dOut = mem(dst);
  convolution_backward_weights::desc wd(algorithm::convolution_direct, src, wAny, bias, dst, {1, 1}, {0, 0},
                                        {0, 0});
  convolution_backward_weights::primitive_desc wpd(wd, eng, fpd);
  L.bwdWeights = convolution_backward_weights(wpd);
  L.reorderG = wpd.diff_weights_desc() != fpd.weights_desc();
  L.gBwd = L.reorderG ? mem(wpd.diff_weights_desc()) : L.w.g;
  if (L.reorderG) L.gradBack = reorder(L.gBwd, L.w.g);
  L.hasBwdData = bwdData;
  if (bwdData) {
    // Weights `any`: backward-data kernels want another blocking than forward (OIhw8o8i vs 8i8o).
    convolution_backward_data::desc dd(algorithm::convolution_direct, src, wAny, dst, {1, 1}, {0, 0}, {0, 0});
    convolution_backward_data::primitive_desc dpd(dd, eng, fpd);
    L.bwdData = convolution_backward_data(dpd);
    L.reorderW = dpd.weights_desc() != fpd.weights_desc();
    L.wBwd = L.reorderW ? mem(dpd.weights_desc()) : L.w.w;
    if (L.reorderW) L.toBwd = reorder(L.w.w, L.wBwd);
    L.dIn = mem(src);
  }
  return L;
}

Layer makeFc(const memory::desc& src, int fanIn, int out, std::mt19937& gen) {
  auto dst = md({B, out}, tag::nc);
  memory::dims wdims = src.dims();
  wdims[0] = out;
  auto wAny = memory::desc(wdims, dt::f32, tag::any);
  auto bias = md({out}, tag::x);
  inner_product_forward::desc fd(prop_kind::forward_training, src, wAny, bias, dst);
  inner_product_forward::primitive_desc fpd(fd, eng);
  Layer L;
  const float bound = 1.0f / std::sqrt(static_cast<float>(fanIn));
  L.w = param(fpd.weights_desc(), bound, gen);
  L.b = param(bias, bound, gen);
  L.fwd = inner_product_forward(fpd);
  L.out = mem(dst);
  L.dOut = mem(dst);
  inner_product_backward_weights::desc wd(src, fpd.weights_desc(), bias, dst);
  L.bwdWeights = inner_product_backward_weights(inner_product_backward_weights::primitive_desc(wd, eng, fpd));
  inner_product_backward_data::desc dd(src, fpd.weights_desc(), dst);
  L.bwdData = inner_product_backward_data(inner_product_backward_data::primitive_desc(dd, eng, fpd));
  L.wBwd = L.w.w;
  L.gBwd = L.w.g;
  L.dIn = mem(src);
  return L;
}

Act makeAct(const memory::desc& src, bool pool) {
  Act A;
  eltwise_forward::desc rf(prop_kind::forward_training, algorithm::eltwise_relu, src, 0.f);
  eltwise_forward::primitive_desc rfp(rf, eng);
  A.reluF = eltwise_forward(rfp);
  eltwise_backward::desc rb(algorithm::eltwise_relu, src, src, 0.f);
  A.reluB = eltwise_backward(eltwise_backward::primitive_desc(rb, eng, rfp));
  A.reluOut = mem(src);
  A.dReluOut = mem(src);
  A.pool = pool;
  if (pool) {
    auto d = src.dims();
    auto dst = md({d[0], d[1], d[2] / 2, d[3] / 2}, ACT);
    pooling_forward::desc pf(prop_kind::forward_training, algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0},
                             {0, 0});
    pooling_forward::primitive_desc pfp(pf, eng);
    A.poolF = pooling_forward(pfp);
    pooling_backward::desc pb(algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0}, {0, 0});
    A.poolB = pooling_backward(pooling_backward::primitive_desc(pb, eng, pfp));
    A.poolOut = mem(dst);
    A.dPoolOut = mem(dst);
    A.ws = mem(pfp.workspace_desc());
  }
  return A;
}

const memory& actOut(const Act& A) { return A.pool ? A.poolOut : A.reluOut; }

void runLayerFwd(Layer& L, const memory& src) {
  L.fwd.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, L.w.w}, {DNNL_ARG_BIAS, L.b.w}, {DNNL_ARG_DST, L.out}});
}
void runActFwd(Act& A, const memory& src) {
  A.reluF.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, A.reluOut}});
  if (A.pool)
    A.poolF.execute(strm, {{DNNL_ARG_SRC, A.reluOut}, {DNNL_ARG_DST, A.poolOut}, {DNNL_ARG_WORKSPACE, A.ws}});
}
// d(act output) in dAct (poolOut/relu grad) → dLayerOut (gradient wrt the layer output before ReLU)
void runActBwd(Act& A, const memory& dActOut, const memory& layerOut, memory& dLayerOut) {
  const memory* dRelu = &dActOut;
  if (A.pool) {
    A.poolB.execute(strm, {{DNNL_ARG_DIFF_DST, dActOut}, {DNNL_ARG_DIFF_SRC, A.dReluOut}, {DNNL_ARG_WORKSPACE, A.ws}});
    dRelu = &A.dReluOut;
  }
  A.reluB.execute(strm, {{DNNL_ARG_SRC, layerOut}, {DNNL_ARG_DIFF_DST, *dRelu}, {DNNL_ARG_DIFF_SRC, dLayerOut}});
}
void runLayerBwd(Layer& L, const memory& src) {
  L.bwdWeights.execute(strm, {{DNNL_ARG_SRC, src},
                              {DNNL_ARG_DIFF_DST, L.dOut},
                              {DNNL_ARG_DIFF_WEIGHTS, L.gBwd},
                              {DNNL_ARG_DIFF_BIAS, L.b.g}});
  if (L.reorderG) L.gradBack.execute(strm, {{DNNL_ARG_FROM, L.gBwd}, {DNNL_ARG_TO, L.w.g}});
  if (!L.hasBwdData) return;
  if (L.reorderW) L.toBwd.execute(strm, {{DNNL_ARG_FROM, L.w.w}, {DNNL_ARG_TO, L.wBwd}});
  L.bwdData.execute(strm, {{DNNL_ARG_DIFF_DST, L.dOut}, {DNNL_ARG_WEIGHTS, L.wBwd}, {DNNL_ARG_DIFF_SRC, L.dIn}});
}

void adam(Param& p, float lr, float c1, float c2) {
  float *w = ptr(p.w), *g = ptr(p.g), *m = ptr(p.m), *v = ptr(p.v);
  const size_t n = p.count();
#pragma omp parallel for simd if (n > 65536)
  for (size_t i = 0; i < n; i++) {
    m[i] = 0.9f * m[i] + 0.1f * g[i];
    v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
    w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8f);
  }
}

void put(char* buf, int32_t len, const std::string& s) {
  if (len <= 0) return;
  std::strncpy(buf, s.c_str(), static_cast<size_t>(len - 1));
  buf[len - 1] = 0;
}

}  // namespace

extern "C" {

int32_t cand_init(int32_t batch, int32_t threads, char* err, int32_t errlen) {
  try {
    omp_set_num_threads(threads);
    B = batch;
    eng = engine(engine::kind::cpu, 0);
    strm = stream(eng);
    std::mt19937 gen(0);
    auto x = md({B, 1, 28, 28}, tag::nchw);  // one channel: the same bytes as NHWC
    xMem = mem(x);
    conv1 = makeConv(x, 1, 20, 5, false, gen);
    a1 = makeAct(conv1.out.get_desc(), true);
    conv2 = makeConv(a1.poolOut.get_desc(), 20, 50, 5, true, gen);
    a2 = makeAct(conv2.out.get_desc(), true);
    fc1 = makeFc(a2.poolOut.get_desc(), 800, 200, gen);
    a3 = makeAct(fc1.out.get_desc(), false);
    fc2 = makeFc(a3.reluOut.get_desc(), 200, 10, gen);
    adamStep = 0;
    return 0;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return -1;
  }
}

float cand_step(const float* x, const int32_t* y) {
  std::memcpy(ptr(xMem), x, sizeof(float) * static_cast<size_t>(B) * 784);
  runLayerFwd(conv1, xMem);
  runActFwd(a1, conv1.out);
  runLayerFwd(conv2, actOut(a1));
  runActFwd(a2, conv2.out);
  runLayerFwd(fc1, actOut(a2));
  runActFwd(a3, fc1.out);
  runLayerFwd(fc2, actOut(a3));
  strm.wait();
  // softmax cross-entropy, mean over the batch; gradient into fc2.dOut
  const float* z = ptr(fc2.out);
  float* dz = ptr(fc2.dOut);
  double loss = 0;
  for (int i = 0; i < B; i++) {
    float mx = z[i * 10];
    for (int k = 1; k < 10; k++) mx = std::max(mx, z[i * 10 + k]);
    double s = 0;
    for (int k = 0; k < 10; k++) s += std::exp(static_cast<double>(z[i * 10 + k] - mx));
    loss += std::log(s) + mx - z[i * 10 + y[i]];
    for (int k = 0; k < 10; k++)
      dz[i * 10 + k] = static_cast<float>((std::exp(static_cast<double>(z[i * 10 + k] - mx)) / s -
                                           (k == y[i] ? 1.0 : 0.0)) / B);
  }
  runLayerBwd(fc2, actOut(a3));
  runActBwd(a3, fc2.dIn, fc1.out, fc1.dOut);
  runLayerBwd(fc1, actOut(a2));
  runActBwd(a2, fc1.dIn, conv2.out, conv2.dOut);
  runLayerBwd(conv2, actOut(a1));
  runActBwd(a1, conv2.dIn, conv1.out, conv1.dOut);
  runLayerBwd(conv1, xMem);
  strm.wait();
  adamStep++;
  const float c1 = 1.0f - std::pow(0.9f, static_cast<float>(adamStep));
  const float c2 = 1.0f - std::pow(0.999f, static_cast<float>(adamStep));
  for (Layer* L : {&conv1, &conv2, &fc1, &fc2}) adam(L->w, 1e-3f, c1, c2), adam(L->b, 1e-3f, c1, c2);
  return static_cast<float>(loss / B);
}

int32_t cand_describe(char* buf, int32_t len) {
  const auto* v = dnnl_version();
  put(buf, len, "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->patch) + ", " + std::to_string(omp_get_max_threads()) + " threads");
  return 0;
}

}  // extern "C"
