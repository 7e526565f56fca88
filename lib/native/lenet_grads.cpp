// boundary-kd native training engine, first piece: loss and gradients of a DB3 LeNet-5 (any widths)
// on a batch, on all cores. Built at first use by lib/native/build.ts (source "lenet_grads.cpp") and
// called through Deno FFI by lib/native/lenet_grads.ts. C++17 standard library only.
//
// Contract.
//   Network (lib/models/lenet.ts, db3LeNet5): NHWC input h×w×cin → conv c1 5×5 valid (+bias) → ReLU →
//   maxpool 2×2 → conv c2 5×5 valid → ReLU → maxpool 2×2 → flatten (h, w, c order) → dense hid → ReLU →
//   dense k (logits). Loss (bkd_lenet_loss_grads): Σ_rows hard·CE(s, y) + soft·D(p ‖ q) with p = softmax(t/τ),
//   q = softmax(s/τ), D = KL (kl ≠ 0) or soft cross-entropy −Σ p log q (kl = 0), t = target scores; the
//   caller folds the 1/N of "mean" terms into hard and soft, so every loss of lib/learn/losses.ts is one
//   (hard, soft, τ, kl) choice. bkd_lenet_grads: mean softmax cross-entropy (hard = 1/n, soft = 0).
//   Parameters and gradients: one float array holding, in tfjs `model.getWeights()` order and layout,
//   conv1 kernel [5,5,cin,c1], conv1 bias [c1], conv2 kernel [5,5,c1,c2], conv2 bias [c2],
//   fc1 kernel [flat,hid], fc1 bias [hid], fc2 kernel [hid,k], fc2 bias [k].
//   Max-pool gradient goes to the first maximum of each window (row-major), like tfjs's cpu backend;
//   the ReLU gradient at exactly 0 is 0.
//
// Method (measured in DESIGN.md, "Native training engine: choice by measurement"): the batch is split into
// one contiguous slice per thread (std::thread; the caller's thread takes slice 0), each thread runs
// forward and backward of its slice with private gradients, summed after the join. Every matrix product is
// one NN GEMM with an 8-row × 8-column register block (GCC/Clang vector extension of 8 floats): conv =
// im2col + GEMM, conv weight gradient = colᵀ·dZ, conv input gradient = dZ·Wᵀ + col2im, dense layers on
// the whole slice. Channel counts are padded to multiples of 8 internally (zeros that stay zero).
// No -ffast-math; sums are in a fixed order for a given thread count, so results are deterministic.
//
// ABI (all extern "C"):
//   void*   bkd_lenet_create(const int32_t* dims /* h, w, cin, c1, c2, hid, k */, char* err, int32_t errlen)
//   int64_t bkd_lenet_param_count(void* net)
//   int32_t bkd_lenet_grads(void* net, const float* params, const float* x, const int32_t* y, int64_t n,
//                           float* grads, float* loss, int32_t threads)   → 0, or −1 (label out of range)
//   int32_t bkd_lenet_loss_grads(void* net, const float* params, const float* x, const int32_t* y,
//                                const float* targets, int64_t n, const double* weights /* hard, soft, τ */,
//                                int32_t kl, float* grads, float* loss, int32_t threads)
//           → 0, −1 (label out of range; y is read only when hard ≠ 0), −2 (soft ≠ 0 with τ ≤ 0)
//   void    bkd_lenet_free(void* net)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

typedef float v8 __attribute__((vector_size(32)));
inline v8 ld(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void st(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
inline int up8(int v) { return (v + 7) / 8 * 8; }

template <int MR>
void kern(int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool acc) {
  v8 c[MR];
  for (int r = 0; r < MR; r++) c[r] = acc ? ld(C + static_cast<size_t>(r) * ldc) : v8{};
  for (int p = 0; p < k; p++) {
    const v8 b = ld(B + static_cast<size_t>(p) * ldb);
    for (int r = 0; r < MR; r++) c[r] += A[static_cast<size_t>(r) * lda + p] * b;
  }
  for (int r = 0; r < MR; r++) st(C + static_cast<size_t>(r) * ldc, c[r]);
}

// C[m×n] (+)= A[m×k]·B[k×n], n % 8 == 0.
void gemm(int m, int n, int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool acc) {
  for (int j = 0; j < n; j += 8) {
    int i = 0;
    for (; i + 8 <= m; i += 8)
      kern<8>(k, A + static_cast<size_t>(i) * lda, lda, B + j, ldb, C + static_cast<size_t>(i) * ldc + j, ldc, acc);
    for (; i < m; i++)
      kern<1>(k, A + static_cast<size_t>(i) * lda, lda, B + j, ldb, C + static_cast<size_t>(i) * ldc + j, ldc, acc);
  }
}

void transpose(int rows, int cols, const float* src, int lds, float* dst, int ldd) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[static_cast<size_t>(c) * ldd + r] = src[static_cast<size_t>(r) * lds + c];
}

// im2col of a 5×5 valid conv on an h×w image with c real channels stored with channel stride cs.
void im2col(const float* x, int h, int w, int c, int cs, float* col) {
  const int oh = h - 4, ow = w - 4;
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
      float* row = col + static_cast<size_t>(i * ow + j) * 25 * c;
      for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
          std::memcpy(row + (a * 5 + b) * c, x + static_cast<size_t>((i + a) * w + j + b) * cs, sizeof(float) * c);
    }
}
void col2im(const float* col, int h, int w, int c, int cs, float* dx) {
  const int oh = h - 4, ow = w - 4;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(h) * w * cs);
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
      const float* row = col + static_cast<size_t>(i * ow + j) * 25 * c;
      for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) {
          float* d = dx + static_cast<size_t>((i + a) * w + j + b) * cs;
          const float* s = row + (a * 5 + b) * c;
          for (int q = 0; q < c; q++) d[q] += s[q];
        }
    }
}
void biasAct(float* z, int rows, int n, const float* b, bool relu) {
  for (int r = 0; r < rows; r++)
    for (int q = 0; q < n; q++) {
      const float v = z[static_cast<size_t>(r) * n + q] + b[q];
      z[static_cast<size_t>(r) * n + q] = relu ? (v > 0 ? v : 0) : v;
    }
}
// 2×2/2 max pool (floor) on HWC with channel stride cs; idx = input offset of the first maximum.
void pool2(const float* x, int h, int w, int cs, float* out, int32_t* idx) {
  const int ph = h / 2, pw = w / 2;
  for (int i = 0; i < ph; i++)
    for (int j = 0; j < pw; j++)
      for (int q = 0; q < cs; q++) {
        int best = ((2 * i) * w + 2 * j) * cs + q;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++) {
            const int t = ((2 * i + a) * w + 2 * j + b) * cs + q;
            if (x[t] > x[best]) best = t;
          }
        out[(i * pw + j) * cs + q] = x[best];
        idx[(i * pw + j) * cs + q] = best;
      }
}

struct Dims {
  int h, w, cin, c1, c2, hid, k;
  int c1p, c2p, hp, kp;  // padded widths
  int o1h, o1w, p1h, p1w, o2h, o2w, p2h, p2w;
  int k1, k2, k2p, flat, flatp;  // im2col widths 25·cin, 25·c1 (and padded), flatten size
};

// Padded internal parameters.
struct Packed {
  std::vector<float> w1, b1, w2, b2, w3, b3, w4, b4;
  void zero(const Dims& d) {
    w1.assign(static_cast<size_t>(d.k1) * d.c1p, 0), b1.assign(d.c1p, 0);
    w2.assign(static_cast<size_t>(d.k2) * d.c2p, 0), b2.assign(d.c2p, 0);
    w3.assign(static_cast<size_t>(d.flat) * d.hp, 0), b3.assign(d.hp, 0);
    w4.assign(static_cast<size_t>(d.hp) * d.kp, 0), b4.assign(d.kp, 0);
  }
};

// Per-row loss: hard · CE(s, y) + soft · [KL(p ‖ q) if kl, else CE(p, q)], p = softmax(t/τ), q = softmax(s/τ).
// The weights already hold the 1/N of "mean" terms (see lib/learn/losses.ts).
struct LossWeights {
  double hard, soft, tau;
  bool kl;
  const float* targets;  // n×k target scores (read only when soft ≠ 0)
};

struct Work {
  Packed g;
  const LossWeights* lw = nullptr;
  std::vector<double> prob;
  std::vector<float> col1, z1, p1, col2, z2, p2, colT, dcol, dp1, da1, dz1, dz2, x3, z3, z4, a3T, x3T, da3, dx3;
  std::vector<int32_t> i1, i2;
  double loss = 0;
  bool badLabel = false;
};

struct Net {
  Dims d;
  Packed w;
  std::vector<float> w2T, w3T, w4T;
  std::vector<Work> work;
};

// Copy a [rows × real] tfjs matrix into a [rows × stride] padded one (and back).
void pack(const float*& src, std::vector<float>& dst, int rows, int real, int stride) {
  for (int r = 0; r < rows; r++) std::memcpy(&dst[static_cast<size_t>(r) * stride], src + static_cast<size_t>(r) * real, sizeof(float) * real);
  src += static_cast<size_t>(rows) * real;
}
void unpack(const std::vector<float>& src, float*& dst, int rows, int real, int stride) {
  for (int r = 0; r < rows; r++) std::memcpy(dst + static_cast<size_t>(r) * real, &src[static_cast<size_t>(r) * stride], sizeof(float) * real);
  dst += static_cast<size_t>(rows) * real;
}

void slice(const Net& net, Work& wk, const float* x, const int32_t* y, int64_t begin, int64_t end) {
  const Dims& d = net.d;
  const Packed& W = net.w;
  const int n = static_cast<int>(end - begin);
  Packed& g = wk.g;
  g.zero(d);
  wk.loss = 0;
  wk.badLabel = false;
  if (n <= 0) return;
  const size_t s1 = static_cast<size_t>(d.o1h) * d.o1w * d.c1p, sp1 = static_cast<size_t>(d.p1h) * d.p1w * d.c1p;
  const size_t s2 = static_cast<size_t>(d.o2h) * d.o2w * d.c2p, sp2 = static_cast<size_t>(d.p2h) * d.p2w * d.c2p;
  const int m1 = d.o1h * d.o1w, m2 = d.o2h * d.o2w, np2 = d.p2h * d.p2w;
  wk.z1.resize(s1 * n), wk.p1.resize(sp1 * n), wk.i1.resize(sp1 * n);
  wk.z2.resize(s2 * n), wk.p2.resize(sp2 * n), wk.i2.resize(sp2 * n);
  wk.col1.resize(static_cast<size_t>(m1) * d.k1), wk.col2.resize(static_cast<size_t>(m2) * d.k2p);
  wk.colT.resize(std::max(static_cast<size_t>(m1) * d.k1, static_cast<size_t>(m2) * d.k2));
  wk.dcol.resize(static_cast<size_t>(m2) * d.k2p), wk.dp1.resize(sp1), wk.da1.resize(s1), wk.dz1.resize(s1), wk.dz2.resize(s2);
  wk.x3.resize(static_cast<size_t>(n) * d.flat), wk.z3.resize(static_cast<size_t>(n) * d.hp), wk.z4.resize(static_cast<size_t>(n) * d.kp);
  const size_t inSize = static_cast<size_t>(d.h) * d.w * d.cin;
  for (int i = 0; i < n; i++) {
    const float* xi = x + static_cast<size_t>(begin + i) * inSize;
    float* z1 = &wk.z1[s1 * i];
    im2col(xi, d.h, d.w, d.cin, d.cin, wk.col1.data());
    gemm(m1, d.c1p, d.k1, wk.col1.data(), d.k1, W.w1.data(), d.c1p, z1, d.c1p, false);
    biasAct(z1, m1, d.c1p, W.b1.data(), true);
    float* p1 = &wk.p1[sp1 * i];
    pool2(z1, d.o1h, d.o1w, d.c1p, p1, &wk.i1[sp1 * i]);
    im2col(p1, d.p1h, d.p1w, d.c1, d.c1p, wk.col2.data());
    float* z2 = &wk.z2[s2 * i];
    gemm(m2, d.c2p, d.k2, wk.col2.data(), d.k2, W.w2.data(), d.c2p, z2, d.c2p, false);
    biasAct(z2, m2, d.c2p, W.b2.data(), true);
    float* p2 = &wk.p2[sp2 * i];
    pool2(z2, d.o2h, d.o2w, d.c2p, p2, &wk.i2[sp2 * i]);
    for (int p = 0; p < np2; p++) std::memcpy(&wk.x3[static_cast<size_t>(i) * d.flat + p * d.c2], p2 + p * d.c2p, sizeof(float) * d.c2);
  }
  gemm(n, d.hp, d.flat, wk.x3.data(), d.flat, W.w3.data(), d.hp, wk.z3.data(), d.hp, false);
  biasAct(wk.z3.data(), n, d.hp, W.b3.data(), true);
  gemm(n, d.kp, d.hp, wk.z3.data(), d.hp, W.w4.data(), d.kp, wk.z4.data(), d.kp, false);
  biasAct(wk.z4.data(), n, d.kp, W.b4.data(), false);
  const LossWeights& L = *wk.lw;
  const int kk = d.k;
  for (int i = 0; i < n; i++) {  // loss of row i (weights in LossWeights), dL/dlogits in place
    float* z = &wk.z4[static_cast<size_t>(i) * d.kp];
    std::vector<double>& dz = wk.prob;
    dz.assign(kk, 0.0);
    if (L.hard != 0) {  // hard · CE(s, y)
      const int label = y[begin + i];
      if (label < 0 || label >= d.k) {
        wk.badLabel = true;
        return;
      }
      float mx = z[0];
      for (int c = 1; c < kk; c++) mx = z[c] > mx ? z[c] : mx;
      double s = 0;
      for (int c = 0; c < kk; c++) s += std::exp(static_cast<double>(z[c]) - mx);
      wk.loss += L.hard * (std::log(s) + mx - z[label]);
      for (int c = 0; c < kk; c++)
        dz[c] += L.hard * (std::exp(static_cast<double>(z[c]) - mx) / s - (c == label ? 1.0 : 0.0));
    }
    if (L.soft != 0) {  // soft · KL(p ‖ q) or soft · CE(p, q), p = softmax(t/τ), q = softmax(s/τ)
      const float* t = L.targets + static_cast<size_t>(begin + i) * kk;
      const double tau = L.tau;
      double ms = z[0] / tau, mt = t[0] / tau;
      for (int c = 1; c < kk; c++) ms = std::max(ms, z[c] / tau), mt = std::max(mt, t[c] / tau);
      double ss = 0, st = 0;
      for (int c = 0; c < kk; c++) ss += std::exp(z[c] / tau - ms), st += std::exp(t[c] / tau - mt);
      const double lss = std::log(ss) + ms, lst = std::log(st) + mt;
      double v = 0;
      for (int c = 0; c < kk; c++) {
        const double logq = z[c] / tau - lss, logp = t[c] / tau - lst, p = std::exp(logp);
        if (p > 0) v += p * ((L.kl ? logp : 0.0) - logq);
        dz[c] += L.soft * (std::exp(logq) - p) / tau;
      }
      wk.loss += L.soft * v;
    }
    for (int c = 0; c < kk; c++) z[c] = static_cast<float>(dz[c]);
    for (int c = kk; c < d.kp; c++) z[c] = 0;
  }
  wk.a3T.resize(static_cast<size_t>(d.hp) * n), wk.x3T.resize(static_cast<size_t>(d.flat) * n);
  wk.da3.resize(static_cast<size_t>(n) * d.hp), wk.dx3.resize(static_cast<size_t>(n) * d.flatp);
  transpose(n, d.hp, wk.z3.data(), d.hp, wk.a3T.data(), n);
  gemm(d.hp, d.kp, n, wk.a3T.data(), n, wk.z4.data(), d.kp, g.w4.data(), d.kp, true);
  for (int i = 0; i < n; i++)
    for (int q = 0; q < d.kp; q++) g.b4[q] += wk.z4[static_cast<size_t>(i) * d.kp + q];
  gemm(n, d.hp, d.kp, wk.z4.data(), d.kp, net.w4T.data(), d.hp, wk.da3.data(), d.hp, false);
  for (size_t e = 0; e < static_cast<size_t>(n) * d.hp; e++) wk.da3[e] = wk.z3[e] > 0 ? wk.da3[e] : 0;
  transpose(n, d.flat, wk.x3.data(), d.flat, wk.x3T.data(), n);
  gemm(d.flat, d.hp, n, wk.x3T.data(), n, wk.da3.data(), d.hp, g.w3.data(), d.hp, true);
  for (int i = 0; i < n; i++)
    for (int q = 0; q < d.hp; q++) g.b3[q] += wk.da3[static_cast<size_t>(i) * d.hp + q];
  gemm(n, d.flatp, d.hp, wk.da3.data(), d.hp, net.w3T.data(), d.flatp, wk.dx3.data(), d.flatp, false);
  for (int i = 0; i < n; i++) {
    float* dz2 = wk.dz2.data();
    std::fill(wk.dz2.begin(), wk.dz2.end(), 0.0f);
    const float* z2 = &wk.z2[s2 * i];
    const int32_t* i2 = &wk.i2[sp2 * i];
    for (int p = 0; p < np2; p++)
      for (int q = 0; q < d.c2; q++) dz2[i2[p * d.c2p + q]] += wk.dx3[static_cast<size_t>(i) * d.flatp + p * d.c2 + q];
    for (size_t e = 0; e < s2; e++) dz2[e] = z2[e] > 0 ? dz2[e] : 0;
    for (int p = 0; p < m2; p++)
      for (int q = 0; q < d.c2p; q++) g.b2[q] += dz2[p * d.c2p + q];
    const float* p1 = &wk.p1[sp1 * i];
    im2col(p1, d.p1h, d.p1w, d.c1, d.c1p, wk.col2.data());
    transpose(m2, d.k2, wk.col2.data(), d.k2, wk.colT.data(), m2);
    gemm(d.k2, d.c2p, m2, wk.colT.data(), m2, dz2, d.c2p, g.w2.data(), d.c2p, true);
    gemm(m2, d.k2p, d.c2p, dz2, d.c2p, net.w2T.data(), d.k2p, wk.dcol.data(), d.k2p, false);
    for (int p = 1; p < m2; p++) std::memmove(&wk.dcol[static_cast<size_t>(p) * d.k2], &wk.dcol[static_cast<size_t>(p) * d.k2p], sizeof(float) * d.k2);
    col2im(wk.dcol.data(), d.p1h, d.p1w, d.c1, d.c1p, wk.dp1.data());
    std::fill(wk.da1.begin(), wk.da1.end(), 0.0f);
    const int32_t* i1 = &wk.i1[sp1 * i];
    for (size_t e = 0; e < sp1; e++) wk.da1[i1[e]] += wk.dp1[e];
    const float* z1 = &wk.z1[s1 * i];
    for (size_t e = 0; e < s1; e++) wk.dz1[e] = z1[e] > 0 ? wk.da1[e] : 0;
    for (int p = 0; p < m1; p++)
      for (int q = 0; q < d.c1p; q++) g.b1[q] += wk.dz1[static_cast<size_t>(p) * d.c1p + q];
    im2col(x + static_cast<size_t>(begin + i) * inSize, d.h, d.w, d.cin, d.cin, wk.col1.data());
    transpose(m1, d.k1, wk.col1.data(), d.k1, wk.colT.data(), m1);
    gemm(d.k1, d.c1p, m1, wk.colT.data(), m1, wk.dz1.data(), d.c1p, g.w1.data(), d.c1p, true);
  }
}

void setErr(char* err, int32_t len, const std::string& msg) {
  if (!err || len <= 0) return;
  std::strncpy(err, msg.c_str(), static_cast<size_t>(len - 1));
  err[len - 1] = 0;
}

}  // namespace

extern "C" {

void* bkd_lenet_create(const int32_t* dims, char* err, int32_t errlen) {
  Dims d{};
  d.h = dims[0], d.w = dims[1], d.cin = dims[2], d.c1 = dims[3], d.c2 = dims[4], d.hid = dims[5], d.k = dims[6];
  d.o1h = d.h - 4, d.o1w = d.w - 4, d.p1h = d.o1h / 2, d.p1w = d.o1w / 2;
  d.o2h = d.p1h - 4, d.o2w = d.p1w - 4, d.p2h = d.o2h / 2, d.p2w = d.o2w / 2;
  if (d.cin < 1 || d.c1 < 1 || d.c2 < 1 || d.hid < 1 || d.k < 2 || d.p2h < 1 || d.p2w < 1) {
    setErr(err, errlen,
           "LeNet-5 dims invalid: need cin, c1, c2, hid ≥ 1, k ≥ 2 and an input of at least 16×16 (got h=" +
               std::to_string(d.h) + ", w=" + std::to_string(d.w) + ")");
    return nullptr;
  }
  d.c1p = up8(d.c1), d.c2p = up8(d.c2), d.hp = up8(d.hid), d.kp = up8(d.k);
  d.k1 = 25 * d.cin, d.k2 = 25 * d.c1, d.k2p = up8(d.k2);
  d.flat = d.p2h * d.p2w * d.c2, d.flatp = up8(d.flat);
  try {
    auto* net = new Net();
    net->d = d;
    net->w.zero(d);
    return net;
  } catch (const std::exception& e) {
    setErr(err, errlen, std::string("out of memory: ") + e.what());
    return nullptr;
  }
}

int64_t bkd_lenet_param_count(void* handle) {
  const Dims& d = static_cast<Net*>(handle)->d;
  return static_cast<int64_t>(d.k1) * d.c1 + d.c1 + static_cast<int64_t>(d.k2) * d.c2 + d.c2 +
         static_cast<int64_t>(d.flat) * d.hid + d.hid + static_cast<int64_t>(d.hid) * d.k + d.k;
}

int32_t bkd_lenet_loss_grads(void* handle, const float* params, const float* x, const int32_t* y, const float* targets,
                             int64_t n, const double* weights, int32_t kl, float* grads, float* loss, int32_t threads) {
  Net& net = *static_cast<Net*>(handle);
  const Dims& d = net.d;
  const LossWeights lw{weights[0], weights[1], weights[2], kl != 0, targets};
  if (lw.soft != 0 && !(lw.tau > 0)) return -2;
  const float* src = params;
  net.w.zero(d);
  pack(src, net.w.w1, d.k1, d.c1, d.c1p), pack(src, net.w.b1, 1, d.c1, d.c1p);
  pack(src, net.w.w2, d.k2, d.c2, d.c2p), pack(src, net.w.b2, 1, d.c2, d.c2p);
  pack(src, net.w.w3, d.flat, d.hid, d.hp), pack(src, net.w.b3, 1, d.hid, d.hp);
  pack(src, net.w.w4, d.hid, d.k, d.kp), pack(src, net.w.b4, 1, d.k, d.kp);
  net.w2T.assign(static_cast<size_t>(d.c2p) * d.k2p, 0), net.w3T.assign(static_cast<size_t>(d.hp) * d.flatp, 0);
  net.w4T.assign(static_cast<size_t>(d.kp) * d.hp, 0);
  transpose(d.k2, d.c2p, net.w.w2.data(), d.c2p, net.w2T.data(), d.k2p);
  transpose(d.flat, d.hp, net.w.w3.data(), d.hp, net.w3T.data(), d.flatp);
  transpose(d.hp, d.kp, net.w.w4.data(), d.kp, net.w4T.data(), d.hp);
  const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads < 1 ? 1 : threads, n)));
  if (net.work.size() < static_cast<size_t>(T)) net.work.resize(T);
  std::vector<std::thread> helpers;
  for (int t = 0; t < T; t++) net.work[t].lw = &lw;
  for (int t = 1; t < T; t++)
    helpers.emplace_back(slice, std::cref(net), std::ref(net.work[t]), x, y, n * t / T, n * (t + 1) / T);
  slice(net, net.work[0], x, y, 0, n / T);
  for (auto& h : helpers) h.join();
  double total = 0;
  for (int t = 0; t < T; t++) {
    if (net.work[t].badLabel) return -1;
    total += net.work[t].loss;
  }
  *loss = static_cast<float>(total);
  Packed& g = net.work[0].g;  // sum the other threads' gradients into thread 0's, in thread order
  for (int t = 1; t < T; t++) {
    Packed& o = net.work[t].g;
    std::vector<float>* a[] = {&g.w1, &g.b1, &g.w2, &g.b2, &g.w3, &g.b3, &g.w4, &g.b4};
    std::vector<float>* b[] = {&o.w1, &o.b1, &o.w2, &o.b2, &o.w3, &o.b3, &o.w4, &o.b4};
    for (int p = 0; p < 8; p++)
      for (size_t i = 0; i < a[p]->size(); i++) (*a[p])[i] += (*b[p])[i];
  }
  float* dst = grads;
  unpack(g.w1, dst, d.k1, d.c1, d.c1p), unpack(g.b1, dst, 1, d.c1, d.c1p);
  unpack(g.w2, dst, d.k2, d.c2, d.c2p), unpack(g.b2, dst, 1, d.c2, d.c2p);
  unpack(g.w3, dst, d.flat, d.hid, d.hp), unpack(g.b3, dst, 1, d.hid, d.hp);
  unpack(g.w4, dst, d.hid, d.k, d.kp), unpack(g.b4, dst, 1, d.k, d.kp);
  return 0;
}

int32_t bkd_lenet_grads(void* handle, const float* params, const float* x, const int32_t* y, int64_t n, float* grads,
                        float* loss, int32_t threads) {
  const double weights[3] = {1.0 / static_cast<double>(n > 0 ? n : 1), 0.0, 1.0};
  return bkd_lenet_loss_grads(handle, params, x, y, nullptr, n, weights, 0, grads, loss, threads);
}

void bkd_lenet_free(void* handle) { delete static_cast<Net*>(handle); }

}  // extern "C"
