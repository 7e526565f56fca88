// Candidate (c) for the native training engine: one DB3 LeNet-5 training step with hand-written
// forward and backward kernels (C++17 standard library only, like lib/native/forward.cpp), behind the
// same C ABI as the other candidates (see libtorch_lenet_step.cpp). Prototype for measurement only.
//
// Design. The batch is split into one contiguous slice per thread (std::thread; the caller's thread
// takes slice 0). Each thread runs the whole forward and backward pass of its slice with private weight
// gradients, which are summed after the join; then Adam runs on the summed gradients. Every matrix
// operation is one NN GEMM (C = A·B or C += A·B, n a multiple of 8) with an 8-row × 8-column register
// block (GCC vector extension, 8 floats: AVX2 with -march=native): conv = im2col + GEMM, conv
// backward-weights = colᵀ·dZ, backward-data = dZ·Wᵀ + col2im, dense layers on the whole slice.
// Channel counts are padded to multiples of 8 in weights and activations (zeros that stay zero).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
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

template <int MR>
void kern(int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool acc) {
  v8 c[MR];
  for (int r = 0; r < MR; r++) c[r] = acc ? ld(C + r * ldc) : v8{};
  for (int p = 0; p < k; p++) {
    const v8 b = ld(B + static_cast<size_t>(p) * ldb);
    for (int r = 0; r < MR; r++) c[r] += A[r * lda + p] * b;
  }
  for (int r = 0; r < MR; r++) st(C + r * ldc, c[r]);
}

// C[m×n] (+)= A[m×k]·B[k×n]; n % 8 == 0.
void gemm(int m, int n, int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc, bool acc) {
  for (int j = 0; j < n; j += 8) {
    int i = 0;
    for (; i + 8 <= m; i += 8) kern<8>(k, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc);
    for (; i < m; i++) kern<1>(k, A + i * lda, lda, B + j, ldb, C + i * ldc + j, ldc, acc);
  }
}

void transpose(int rows, int cols, const float* src, int lds, float* dst, int ldd) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

// im2col for a k×k valid conv on an HWC image with `c` real channels stored with stride `cs`.
void im2col(const float* x, int h, int w, int c, int cs, int k, float* col) {
  const int oh = h - k + 1, ow = w - k + 1;
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
      float* row = col + (i * ow + j) * k * k * c;
      for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) std::memcpy(row + (a * k + b) * c, x + ((i + a) * w + j + b) * cs, 4 * c);
    }
}
void col2im(const float* col, int h, int w, int c, int cs, int k, float* dx) {
  const int oh = h - k + 1, ow = w - k + 1;
  std::memset(dx, 0, sizeof(float) * h * w * cs);
  for (int i = 0; i < oh; i++)
    for (int j = 0; j < ow; j++) {
      const float* row = col + (i * ow + j) * k * k * c;
      for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
          float* d = dx + ((i + a) * w + j + b) * cs;
          const float* s = row + (a * k + b) * c;
          for (int q = 0; q < c; q++) d[q] += s[q];
        }
    }
}
// bias + ReLU in place on rows×n; returns nothing (the output doubles as the ReLU mask).
void biasRelu(float* z, int rows, int n, const float* b, bool relu) {
  for (int r = 0; r < rows; r++)
    for (int q = 0; q < n; q++) {
      const float v = z[r * n + q] + b[q];
      z[r * n + q] = relu ? (v > 0 ? v : 0) : v;
    }
}
// 2×2 max pool on HWC (stride cs) → out, argmax index (into the input) per output element.
void pool2(const float* x, int h, int w, int cs, float* out, int32_t* idx) {
  for (int i = 0; i < h / 2; i++)
    for (int j = 0; j < w / 2; j++)
      for (int q = 0; q < cs; q++) {
        int best = ((2 * i) * w + 2 * j) * cs + q;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++) {
            const int t = ((2 * i + a) * w + 2 * j + b) * cs + q;
            if (x[t] > x[best]) best = t;
          }
        out[(i * (w / 2) + j) * cs + q] = x[best];
        idx[(i * (w / 2) + j) * cs + q] = best;
      }
}

constexpr int C1 = 20, C1P = 24, C2 = 50, C2P = 56, H = 200, K = 10, KP = 16, FLAT = 800;

struct Params {
  std::vector<float> w1, b1, w2, b2, w3, b3, w4, b4;  // [25×24] [24] [500×56] [56] [800×200] [200] [200×16] [16]
  std::vector<float*> all() { return {w1.data(), b1.data(), w2.data(), b2.data(), w3.data(), b3.data(), w4.data(), b4.data()}; }
  std::vector<size_t> sizes() const {
    return {w1.size(), b1.size(), w2.size(), b2.size(), w3.size(), b3.size(), w4.size(), b4.size()};
  }
  void zeros() {
    w1.assign(25 * C1P, 0), b1.assign(C1P, 0), w2.assign(500 * C2P, 0), b2.assign(C2P, 0);
    w3.assign(FLAT * H, 0), b3.assign(H, 0), w4.assign(H * KP, 0), b4.assign(KP, 0);
  }
};

struct Work {  // per-thread scratch and gradients
  Params g;
  std::vector<float> col1, z1, p1, col2, z2, p2, colT, dcol, dp1, da1, dz, x3, z3, z4, x3T, a3T, dx3, da3;
  std::vector<int32_t> i1, i2;  // pool argmax per image (whole slice)
  double loss = 0;
};

struct State {
  int batch = 0, threads = 1;
  int64_t t = 0;
  Params w, m, v;
  std::vector<float> w2T, w3T, w4T;
  std::vector<Work> work;
} S;

void slice(Work& wk, const float* x, const int32_t* y, int begin, int end, int B) {
  const int n = end - begin;
  Params& g = wk.g;
  g.zeros();
  wk.loss = 0;
  wk.x3.resize(n * FLAT), wk.z3.resize(n * H), wk.z4.resize(n * KP);
  wk.z1.resize(static_cast<size_t>(n) * 576 * C1P), wk.p1.resize(static_cast<size_t>(n) * 144 * C1P);
  wk.z2.resize(n * 64 * C2P), wk.p2.resize(n * 16 * C2P);
  wk.i1.resize(static_cast<size_t>(n) * 144 * C1P), wk.i2.resize(n * 16 * C2P);
  wk.col1.resize(576 * 25), wk.col2.resize(64 * 500), wk.colT.resize(576 * 25 > 500 * 64 ? 576 * 25 : 500 * 64);
  wk.dcol.resize(64 * 500), wk.dp1.resize(144 * C1P), wk.da1.resize(576 * C1P), wk.dz.resize(576 * C1P);
  // forward, image by image, to the flattened features
  for (int i = 0; i < n; i++) {
    const float* xi = x + static_cast<size_t>(begin + i) * 784;
    float* z1 = &wk.z1[static_cast<size_t>(i) * 576 * C1P];
    im2col(xi, 28, 28, 1, 1, 5, wk.col1.data());
    gemm(576, C1P, 25, wk.col1.data(), 25, S.w.w1.data(), C1P, z1, C1P, false);
    biasRelu(z1, 576, C1P, S.w.b1.data(), true);
    float* p1 = &wk.p1[static_cast<size_t>(i) * 144 * C1P];
    pool2(z1, 24, 24, C1P, p1, &wk.i1[static_cast<size_t>(i) * 144 * C1P]);
    im2col(p1, 12, 12, C1, C1P, 5, wk.col2.data());
    float* z2 = &wk.z2[i * 64 * C2P];
    gemm(64, C2P, 500, wk.col2.data(), 500, S.w.w2.data(), C2P, z2, C2P, false);
    biasRelu(z2, 64, C2P, S.w.b2.data(), true);
    float* p2 = &wk.p2[i * 16 * C2P];
    pool2(z2, 8, 8, C2P, p2, &wk.i2[i * 16 * C2P]);
    for (int p = 0; p < 16; p++) std::memcpy(&wk.x3[i * FLAT + p * C2], p2 + p * C2P, 4 * C2);
  }
  // dense layers on the slice
  gemm(n, H, FLAT, wk.x3.data(), FLAT, S.w.w3.data(), H, wk.z3.data(), H, false);
  biasRelu(wk.z3.data(), n, H, S.w.b3.data(), true);
  gemm(n, KP, H, wk.z3.data(), H, S.w.w4.data(), KP, wk.z4.data(), KP, false);
  biasRelu(wk.z4.data(), n, KP, S.w.b4.data(), false);
  // softmax cross-entropy (mean over the whole batch B) → dz4 in place
  for (int i = 0; i < n; i++) {
    float* z = &wk.z4[i * KP];
    float mx = z[0];
    for (int q = 1; q < K; q++) mx = z[q] > mx ? z[q] : mx;
    double s = 0;
    for (int q = 0; q < K; q++) s += std::exp(static_cast<double>(z[q] - mx));
    wk.loss += std::log(s) + mx - z[y[begin + i]];
    for (int q = 0; q < K; q++)
      z[q] = static_cast<float>((std::exp(static_cast<double>(z[q] - mx)) / s - (q == y[begin + i])) / B);
    for (int q = K; q < KP; q++) z[q] = 0;
  }
  // dense backward
  wk.a3T.resize(H * n), wk.x3T.resize(FLAT * n), wk.da3.resize(n * H), wk.dx3.resize(n * FLAT);
  transpose(n, H, wk.z3.data(), H, wk.a3T.data(), n);
  gemm(H, KP, n, wk.a3T.data(), n, wk.z4.data(), KP, g.w4.data(), KP, true);
  for (int i = 0; i < n; i++)
    for (int q = 0; q < KP; q++) g.b4[q] += wk.z4[i * KP + q];
  gemm(n, H, KP, wk.z4.data(), KP, S.w4T.data(), H, wk.da3.data(), H, false);
  for (int i = 0; i < n * H; i++) wk.da3[i] = wk.z3[i] > 0 ? wk.da3[i] : 0;
  transpose(n, FLAT, wk.x3.data(), FLAT, wk.x3T.data(), n);
  gemm(FLAT, H, n, wk.x3T.data(), n, wk.da3.data(), H, g.w3.data(), H, true);
  for (int i = 0; i < n; i++)
    for (int q = 0; q < H; q++) g.b3[q] += wk.da3[i * H + q];
  gemm(n, FLAT, H, wk.da3.data(), H, S.w3T.data(), FLAT, wk.dx3.data(), FLAT, false);
  // conv backward, image by image
  std::vector<float> dz2(64 * C2P);
  for (int i = 0; i < n; i++) {
    std::fill(dz2.begin(), dz2.end(), 0.0f);
    const float* z2 = &wk.z2[i * 64 * C2P];
    const int32_t* i2 = &wk.i2[i * 16 * C2P];
    for (int p = 0; p < 16; p++)
      for (int q = 0; q < C2; q++) dz2[i2[p * C2P + q]] += wk.dx3[i * FLAT + p * C2 + q];
    for (int e = 0; e < 64 * C2P; e++) dz2[e] = z2[e] > 0 ? dz2[e] : 0;
    for (int p = 0; p < 64; p++)
      for (int q = 0; q < C2P; q++) g.b2[q] += dz2[p * C2P + q];
    float* p1 = &wk.p1[static_cast<size_t>(i) * 144 * C1P];
    im2col(p1, 12, 12, C1, C1P, 5, wk.col2.data());
    transpose(64, 500, wk.col2.data(), 500, wk.colT.data(), 64);
    gemm(500, C2P, 64, wk.colT.data(), 64, dz2.data(), C2P, g.w2.data(), C2P, true);
    // dcol2[64×500] = dz2[64×56]·W2ᵀ[56×500]  (500 is not a multiple of 8: W2ᵀ is stored 504 wide)
    gemm(64, 504, C2P, dz2.data(), C2P, S.w2T.data(), 504, wk.dcol.data(), 504, false);
    // col2im with the 504 stride: compact first
    for (int p = 0; p < 64; p++) std::memmove(&wk.dcol[p * 500], &wk.dcol[p * 504], 4 * 500);
    col2im(wk.dcol.data(), 12, 12, C1, C1P, 5, wk.dp1.data());
    std::fill(wk.da1.begin(), wk.da1.end(), 0.0f);
    const int32_t* i1 = &wk.i1[static_cast<size_t>(i) * 144 * C1P];
    for (int e = 0; e < 144 * C1P; e++) wk.da1[i1[e]] += wk.dp1[e];
    const float* z1 = &wk.z1[static_cast<size_t>(i) * 576 * C1P];
    for (int e = 0; e < 576 * C1P; e++) wk.dz[e] = z1[e] > 0 ? wk.da1[e] : 0;
    for (int p = 0; p < 576; p++)
      for (int q = 0; q < C1P; q++) g.b1[q] += wk.dz[p * C1P + q];
    im2col(x + static_cast<size_t>(begin + i) * 784, 28, 28, 1, 1, 5, wk.col1.data());
    transpose(576, 25, wk.col1.data(), 25, wk.colT.data(), 576);
    gemm(25, C1P, 576, wk.colT.data(), 576, wk.dz.data(), C1P, g.w1.data(), C1P, true);
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
  S.batch = batch;
  S.threads = threads < 1 ? 1 : threads;
  S.t = 0;
  S.w.zeros(), S.m.zeros(), S.v.zeros();
  std::mt19937 gen(0);
  auto fill = [&](std::vector<float>& w, int rows, int real, int stride, int fanIn) {
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(static_cast<float>(fanIn)),
                                            1.0f / std::sqrt(static_cast<float>(fanIn)));
    for (int r = 0; r < rows; r++)
      for (int q = 0; q < real; q++) w[r * stride + q] = u(gen);
  };
  fill(S.w.w1, 25, C1, C1P, 25), fill(S.w.b1, 1, C1, C1P, 25);
  fill(S.w.w2, 500, C2, C2P, 500), fill(S.w.b2, 1, C2, C2P, 500);
  fill(S.w.w3, FLAT, H, H, FLAT), fill(S.w.b3, 1, H, H, FLAT);
  fill(S.w.w4, H, K, KP, H), fill(S.w.b4, 1, K, KP, H);
  S.work.assign(S.threads, Work());
  (void)err, (void)errlen;
  return 0;
}

float cand_step(const float* x, const int32_t* y) {
  const int B = S.batch, T = S.threads;
  S.w2T.assign(C2P * 504, 0), S.w3T.resize(H * FLAT), S.w4T.resize(KP * H);
  transpose(500, C2P, S.w.w2.data(), C2P, S.w2T.data(), 504);
  transpose(FLAT, H, S.w.w3.data(), H, S.w3T.data(), FLAT);
  transpose(H, KP, S.w.w4.data(), KP, S.w4T.data(), H);
  std::vector<std::thread> helpers;
  for (int t = 1; t < T; t++) helpers.emplace_back(slice, std::ref(S.work[t]), x, y, B * t / T, B * (t + 1) / T, B);
  slice(S.work[0], x, y, 0, B / T, B);
  for (auto& h : helpers) h.join();
  double loss = 0;
  for (auto& wk : S.work) loss += wk.loss;
  S.t++;
  const float c1 = 1.0f - std::pow(0.9f, static_cast<float>(S.t)), c2 = 1.0f - std::pow(0.999f, static_cast<float>(S.t));
  auto W = S.w.all(), M = S.m.all(), V = S.v.all();
  const auto sizes = S.w.sizes();
  std::vector<std::vector<float*>> G;
  for (auto& wk : S.work) G.push_back(wk.g.all());
  for (size_t p = 0; p < W.size(); p++) {
    for (size_t i = 0; i < sizes[p]; i++) {
      float g = 0;
      for (auto& gt : G) g += gt[p][i];
      M[p][i] = 0.9f * M[p][i] + 0.1f * g;
      V[p][i] = 0.999f * V[p][i] + 0.001f * g * g;
      W[p][i] -= 1e-3f * (M[p][i] / c1) / (std::sqrt(V[p][i] / c2) + 1e-8f);
    }
  }
  return static_cast<float>(loss / B);
}

int32_t cand_describe(char* buf, int32_t len) {
  put(buf, len, "hand-written C++ (im2col + 8×8 GEMM, " + std::to_string(S.threads) + " threads)");
  return 0;
}

}  // extern "C"
