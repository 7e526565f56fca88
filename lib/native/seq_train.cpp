// boundary-kd native training engine for feed-forward networks: loss, gradients and batch-norm running
// statistics of a graph of layers (a chain, or with residual adds) on a batch, on all cores. Built at first
// use by lib/native/build.ts (source "seq_train.cpp") and called through Deno FFI by
// lib/native/seq_train.ts, which derives the op list from a tfjs LayersModel (lib/native/seq_desc.ts).
// C++17 standard library only.
//
// Contract.
//   Activations are NHWC float32, batch-major; a flat feature vector is h = w = 1, c = features.
//   Ops, in an order where every op comes after its inputs (one record of SEQ_RECORD int32 words each:
//   kind, out h, w, c, kh, kw, sh, sw, pad top, pad left, flags, f1 bits, f2 bits, input op + 1, second
//   input op + 1 (0 = the network input), unused): conv 2-D (any kernel, stride, zero
//   padding top/left given, bottom/right implied by the output size; kernel [kh,kw,cin,cout], bias [cout]),
//   dense (kernel [in,out], bias [out]), batch norm over the last axis (γ, β trainable; moving mean and
//   variance as state), ReLU, max-pool (size, stride, padding top/left; windows clipped at the border),
//   dropout (rate r: keep with probability 1 − r, kept values scaled by 1/(1 − r)), zero padding, flatten,
//   add (two inputs of one shape), global average pooling (h×w → 1×1). The last op gives the logits.
//   Parameters and gradients: one float array, every op's weights in op order, each op's in tfjs
//   `getWeights()` layout (conv kernel, bias; dense kernel, bias; batch norm γ, β). State: the batch norms'
//   moving mean and moving variance, in op order (tfjs's non-trainable weights).
//   Training mode (training ≠ 0): batch norm normalises with the batch's mean and biased variance (over
//   rows n·h·w) and updates the state as tfjs does: m ← m − (m − batch)·decay (decay = 1 − momentum, per op);
//   dropout keeps element e of op o iff u(seed, o, e) ≥ r, u a counter-based hash in [0, 1) (the same
//   mask for any thread count and batch split; bkd_seq_dropout_mask returns it). Inference mode: moving
//   statistics, dropout is the identity; gradients are still returned (of the inference function).
//   Loss: Σ_rows hard·CE(s, y) + soft·D(p ‖ q), p = softmax(t/τ), q = softmax(s/τ), D = KL (kl ≠ 0) or soft
//   cross-entropy (kl = 0), exactly as bkd_lenet_loss_grads (lenet_grads.cpp); "mean" terms carry their
//   1/N in hard and soft. Max-pool gradient goes to the first maximum of a window (row-major); the ReLU
//   gradient at exactly 0 is 0.
//
// Method. Layer by layer on the whole batch: conv = im2col + GEMM, dense = GEMM, every weight gradient is
// one GEMM (colᵀ·dZ, xᵀ·dY) and every input gradient one GEMM (dZ·Wᵀ) + col2im. The GEMM packs A and B
// into 6-row / 16-column panels (k blocks of 256) and runs a 6×16 register-blocked kernel (GCC/Clang
// vector extension of 8 floats); it splits rows (else columns, else k with partial sums added in thread
// order) across std::threads; im2col runs in chunks of images (column buffer ≤ 16M floats). A ReLU right
// after a conv, dense, batch norm or add whose output feeds nothing else is applied in that op's last pass
// (and its gradient in the first pass of that op's backward). An output read by several ops (a residual
// shortcut) gets the sum of their input gradients. Elementwise ops, im2col and pooling split the batch.
// Sums are in a fixed order for a given thread count, so results are deterministic. No -ffast-math.
//
// ABI (all extern "C"):
//   void*   bkd_seq_create(const int32_t* words, int32_t nwords, char* err, int32_t errlen)
//           words = [SEQ_MAGIC, SEQ_VERSION, nOps, inH, inW, inC, classes, records…]
//   int64_t bkd_seq_param_count(void* net)        int64_t bkd_seq_state_count(void* net)
//   int32_t bkd_seq_loss_grads(void* net, const float* params, float* state, const float* x,
//                              const int32_t* y, const float* targets, int64_t n,
//                              const double* weights /* hard, soft, τ */, int32_t kl, int32_t training,
//                              uint64_t seed, float* grads /* or null: loss only */, float* loss,
//                              float* logits /* or null */, int32_t threads)
//           → 0, −1 (label out of range), −2 (soft ≠ 0 with τ ≤ 0), −3 (out of memory)
//   int32_t bkd_seq_infer(void* net, const float* params, const float* state, const float* x, int64_t n,
//                         float* logits, int32_t threads)
//           inference-mode forward (moving statistics, no dropout, state unchanged) → 0, −3 (out of memory);
//           keeps the activations for bkd_seq_input_grad
//   int32_t bkd_seq_input_grad(void* net, const float* params, const float* x, int64_t n,
//                              const float* dlogits /* n×classes upstream gradient */, float* dx, int32_t threads)
//           dx = (∂logits/∂x)ᵀ·dlogits of the inference function at the last bkd_seq_infer's batch (same
//           params, x and n; no parameter gradients) → 0, −3 (out of memory), −4 (no bkd_seq_infer of n
//           images before it)
//   int32_t bkd_seq_dropout_mask(void* net, int32_t op, uint64_t seed, int64_t n, float* out)
//           → 0 (out = n × op size: 0 or 1/(1 − r)), −1 (op is not a dropout)
//   int64_t bkd_seq_activation(void* net, int32_t op, float* out, int64_t cap)
//           → floats of op's output from the last pass (copied into out when cap allows), −1 (no such op)
//   void    bkd_seq_free(void* net)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

// Wall seconds per op, forward [0] and backward [1] (a development aid: only builds with
// -DBKD_SEQ_PROFILE record it).
#ifdef BKD_SEQ_PROFILE
double g_profile[2][64];
#endif
struct OpTimer {
#ifdef BKD_SEQ_PROFILE
  int dir, op;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  OpTimer(int d, size_t o) : dir(d), op(static_cast<int>(o)) {}
  ~OpTimer() {
    if (op < 64) g_profile[dir][op] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
#else
  OpTimer(int, size_t) {}
#endif
};

constexpr int32_t SEQ_MAGIC = 0x424b5331;
constexpr int32_t SEQ_VERSION = 2;
constexpr int SEQ_RECORD = 16;
enum Kind { PAD = 1, CONV = 2, DENSE = 3, BN = 4, RELU = 5, MAXPOOL = 6, DROPOUT = 7, FLATTEN = 8, ADD = 9, GAP = 10 };

typedef float v8 __attribute__((vector_size(32)));
inline v8 ld(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void st(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// ---- threads -------------------------------------------------------------------------------------------

// Run fn(t) for t = 0…T−1, t = 0 on the calling thread.
void parallel(int T, const std::function<void(int)>& fn) {
  if (T <= 1) {
    fn(0);
    return;
  }
  std::vector<std::thread> hs;
  hs.reserve(T - 1);
  for (int t = 1; t < T; t++) hs.emplace_back(fn, t);
  fn(0);
  for (auto& h : hs) h.join();
}
// Elementwise work below this many floats per thread runs on fewer threads: on a shared machine a
// parallel region waits for its slowest thread, and a descheduled helper costs more than the work.
constexpr int64_t MIN_FLOATS = int64_t{1} << 17;
inline int64_t rowsPer(int64_t width) { return std::max<int64_t>(1, MIN_FLOATS / std::max<int64_t>(1, width)); }
inline int threadsFor(int T, int64_t floats) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, floats / MIN_FLOATS)));
}

// Split [0, n) into T contiguous ranges and run fn(begin, end) on each (fewer threads for small n).
void parallelRange(int T, int64_t n, int64_t minPer, const std::function<void(int64_t, int64_t)>& fn) {
  int use = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, n / std::max<int64_t>(1, minPer))));
  parallel(use, [&](int t) { fn(n * t / use, n * (t + 1) / use); });
}

// ---- GEMM ----------------------------------------------------------------------------------------------

constexpr int MR = 6, NR = 16, KC = 256, MC = 96, NC = 512;

// A(i, p) of an m×k operand stored row-major (lda) or, when t, transposed (A(i, p) = a[p·lda + i]).
struct Mat {
  const float* a;
  int64_t ld;
  bool t;
  float at(int64_t i, int64_t p) const { return t ? a[p * ld + i] : a[i * ld + p]; }
};

// Pack rows [i0, i0+mc) × cols [p0, p0+kc) of A into MR-row panels, p-major inside a panel, zero-padded.
void packA(const Mat& A, int64_t i0, int mc, int64_t p0, int kc, float* dst) {
  for (int ib = 0; ib < mc; ib += MR) {
    const int rows = std::min(MR, mc - ib);
    float* d = dst + static_cast<size_t>(ib) * kc;
    if (A.t) {
      for (int p = 0; p < kc; p++) {
        const float* s = A.a + (p0 + p) * A.ld + i0 + ib;
        int r = 0;
        for (; r < rows; r++) d[p * MR + r] = s[r];
        for (; r < MR; r++) d[p * MR + r] = 0;
      }
    } else {
      for (int r = 0; r < MR; r++) {
        if (r < rows) {
          const float* s = A.a + (i0 + ib + r) * A.ld + p0;
          for (int p = 0; p < kc; p++) d[p * MR + r] = s[p];
        } else {
          for (int p = 0; p < kc; p++) d[p * MR + r] = 0;
        }
      }
    }
  }
}
// Pack rows [p0, p0+kc) × cols [j0, j0+nc) of B (k×n) into NR-column panels, p-major, zero-padded.
void packB(const Mat& B, int64_t p0, int kc, int64_t j0, int nc, float* dst) {
  for (int jb = 0; jb < nc; jb += NR) {
    const int cols = std::min(NR, nc - jb);
    float* d = dst + static_cast<size_t>(jb) * kc;
    if (!B.t) {
      for (int p = 0; p < kc; p++) {
        const float* s = B.a + (p0 + p) * B.ld + j0 + jb;
        int c = 0;
        for (; c < cols; c++) d[p * NR + c] = s[c];
        for (; c < NR; c++) d[p * NR + c] = 0;
      }
    } else {
      for (int c = 0; c < NR; c++) {
        if (c < cols) {
          const float* s = B.a + (j0 + jb + c) * B.ld + p0;
          for (int p = 0; p < kc; p++) d[p * NR + c] = s[p];
        } else {
          for (int p = 0; p < kc; p++) d[p * NR + c] = 0;
        }
      }
    }
  }
}

// C[rows×cols] (+)= Apanel·Bpanel over kc.
void micro(int kc, const float* A, const float* B, float* C, int64_t ldc, bool acc, int rows, int cols) {
  v8 c0[MR], c1[MR];
  for (int r = 0; r < MR; r++) c0[r] = v8{}, c1[r] = v8{};
  for (int p = 0; p < kc; p++) {
    const v8 b0 = ld(B), b1 = ld(B + 8);
    for (int r = 0; r < MR; r++) {
      const float a = A[r];
      c0[r] += a * b0;
      c1[r] += a * b1;
    }
    A += MR;
    B += NR;
  }
  if (rows == MR && cols == NR) {
    for (int r = 0; r < MR; r++) {
      float* c = C + r * ldc;
      if (acc) {
        st(c, ld(c) + c0[r]);
        st(c + 8, ld(c + 8) + c1[r]);
      } else {
        st(c, c0[r]);
        st(c + 8, c1[r]);
      }
    }
    return;
  }
  float tmp[MR * NR];
  for (int r = 0; r < MR; r++) st(tmp + r * NR, c0[r]), st(tmp + r * NR + 8, c1[r]);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) C[r * ldc + c] = (acc ? C[r * ldc + c] : 0.0f) + tmp[r * NR + c];
}

struct GemmBuf {
  std::vector<float> a, b;
};

// C[m×n] (+)= A[m×k]·B[k×n] on one thread (rows i0…, cols j0… of the full problem).
void gemmSerial(int64_t m, int64_t n, int64_t k, const Mat& A, const Mat& B, float* C, int64_t ldc, bool acc,
                GemmBuf& buf) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!acc)
      for (int64_t i = 0; i < m; i++) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
    return;
  }
  buf.a.resize(static_cast<size_t>(MC) * KC), buf.b.resize(static_cast<size_t>(NC) * KC);
  for (int64_t j0 = 0; j0 < n; j0 += NC) {
    const int nc = static_cast<int>(std::min<int64_t>(NC, n - j0));
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
      const int kc = static_cast<int>(std::min<int64_t>(KC, k - p0));
      packB(B, p0, kc, j0, nc, buf.b.data());
      const bool accNow = acc || p0 > 0;
      for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int mc = static_cast<int>(std::min<int64_t>(MC, m - i0));
        packA(A, i0, mc, p0, kc, buf.a.data());
        for (int jb = 0; jb < nc; jb += NR)
          for (int ib = 0; ib < mc; ib += MR)
            micro(kc, buf.a.data() + static_cast<size_t>(ib) * kc, buf.b.data() + static_cast<size_t>(jb) * kc,
                  C + (i0 + ib) * ldc + j0 + jb, ldc, accNow, std::min(MR, mc - ib), std::min(NR, nc - jb));
      }
    }
  }
}

struct Ctx {
  int threads = 1;
  std::vector<GemmBuf> bufs;
  std::vector<std::vector<float>> partial;
};

Mat offsetRows(const Mat& A, int64_t i0) { return A.t ? Mat{A.a + i0, A.ld, true} : Mat{A.a + i0 * A.ld, A.ld, false}; }
Mat offsetCols(const Mat& B, int64_t j0) { return B.t ? Mat{B.a + j0 * B.ld, B.ld, true} : Mat{B.a + j0, B.ld, false}; }
Mat offsetK(const Mat& A, int64_t p0, bool isA) {
  // A (m×k): k is the column index; B (k×n): k is the row index.
  if (isA) return A.t ? Mat{A.a + p0 * A.ld, A.ld, true} : Mat{A.a + p0, A.ld, false};
  return A.t ? Mat{A.a + p0, A.ld, true} : Mat{A.a + p0 * A.ld, A.ld, false};
}

// C[m×n] (+)= A·B on ctx.threads threads: rows split, else columns, else k (partials summed in order).
void gemm(Ctx& ctx, int64_t m, int64_t n, int64_t k, const Mat& A, const Mat& B, float* C, int64_t ldc, bool acc) {
  const int T = ctx.threads;
  if (ctx.bufs.size() < static_cast<size_t>(T)) ctx.bufs.resize(T);
  const double work = static_cast<double>(m) * n * k;
  if (T <= 1 || work < 2e5) {
    gemmSerial(m, n, k, A, B, C, ldc, acc, ctx.bufs[0]);
    return;
  }
  if (m >= static_cast<int64_t>(MR) * 4 * T) {
    const int64_t blocks = (m + MR - 1) / MR;
    parallel(T, [&](int t) {
      const int64_t b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
      const int64_t i0 = b0 * MR, i1 = std::min(m, b1 * MR);
      if (i1 > i0) gemmSerial(i1 - i0, n, k, offsetRows(A, i0), B, C + i0 * ldc, ldc, acc, ctx.bufs[t]);
    });
    return;
  }
  if (n >= static_cast<int64_t>(NR) * 2 * T) {
    const int64_t blocks = (n + NR - 1) / NR;
    parallel(T, [&](int t) {
      const int64_t b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
      const int64_t j0 = b0 * NR, j1 = std::min(n, b1 * NR);
      if (j1 > j0) gemmSerial(m, j1 - j0, k, A, offsetCols(B, j0), C + j0, ldc, acc, ctx.bufs[t]);
    });
    return;
  }
  if (ctx.partial.size() < static_cast<size_t>(T)) ctx.partial.resize(T);
  parallel(T, [&](int t) {
    const int64_t p0 = k * t / T, p1 = k * (t + 1) / T;
    std::vector<float>& part = ctx.partial[t];
    part.assign(static_cast<size_t>(m * n), 0.0f);
    gemmSerial(m, n, p1 - p0, offsetK(A, p0, true), offsetK(B, p0, false), part.data(), n, false, ctx.bufs[t]);
  });
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      float s = acc ? C[i * ldc + j] : 0.0f;
      for (int t = 0; t < T; t++) s += ctx.partial[t][i * n + j];
      C[i * ldc + j] = s;
    }
}

// ---- network -------------------------------------------------------------------------------------------

struct Op {
  int kind;
  int ih, iw, ic, oh, ow, oc;  // input and output shapes (per image)
  int kh, kw, sh, sw, pt, pl;  // kernel / pool window, stride, padding top/left (pad: top, left)
  int flags;                   // conv/dense: 1 = bias; bn: 1 = β (center), 2 = γ (scale)
  float f1, f2;                // dropout: rate, scale 1/(1−r); bn: ε, decay (1 − momentum)
  int64_t w, b;                // parameter offsets (kernel / γ, bias / β), −1 when absent
  int64_t s;                   // state offset (bn: mean, then variance)
  int src, src2;               // input op (−1: the network input); add: second input
  bool relu = false;           // conv/dense/bn/add: the ReLU after it is applied here (fused)
  bool skip = false;           // relu: fused into its input op, nothing to do
  int out = 0;                 // the op whose buffer holds this op's output (itself unless skipped)
  int64_t inSize() const { return static_cast<int64_t>(ih) * iw * ic; }
  int64_t outSize() const { return static_cast<int64_t>(oh) * ow * oc; }
};

struct Net {
  std::vector<Op> ops;
  int inH = 0, inW = 0, inC = 0, classes = 0;
  int64_t params = 0, state = 0;
  Ctx ctx;
  std::vector<std::vector<float>> act;  // act[i] = output of op i
  std::vector<std::vector<int32_t>> arg;  // maxpool argmax (input offsets within the image)
  std::vector<std::vector<double>> bnMean, bnInv;  // per bn op: batch mean and 1/√(var + ε) used
  std::vector<float> col, dcol, scratch;
  std::vector<std::vector<float>> grad;  // grad[i] = dL/d(output of op i), summed over its consumers
  std::vector<char> haveGrad, needGrad;  // needGrad[i]: a parameter lies at or before op i
  std::vector<float> gradIn;             // dL/dx of the network input (input-gradient passes)
  bool haveGradIn = false;
  int64_t lastN = -1;                     // batch size of the last inference forward (−1: none)
};

// The output of op `src` (−1: the network input x).
const float* outputOf(const Net& net, const float* x, int src) {
  return src < 0 ? x : net.act[net.ops[src].out].data();
}

// Images per im2col chunk for a conv: the column buffer stays below ≈ 16M floats.
int64_t convChunk(const Op& o, int64_t n) {
  const int64_t perImage = static_cast<int64_t>(o.oh) * o.ow * o.kh * o.kw * o.ic;
  return std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{1} << 24) / std::max<int64_t>(1, perImage)));
}

float bitsToFloat(int32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}

uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Dropout stream of op `op` under `seed`; dropoutU(stream, e) is element e's uniform in [0, 1) (24 bits).
inline uint64_t dropoutStream(uint64_t seed, int op) {
  return mix(seed ^ (static_cast<uint64_t>(op + 1) * 0xd1b54a32d192ed03ULL));
}
inline float dropoutU(uint64_t stream, int64_t e) {
  return static_cast<float>(mix(stream + static_cast<uint64_t>(e)) >> 40) * (1.0f / 16777216.0f);
}

// im2col of images [0, n) of an ih×iw×ic batch into rows (image, oy, ox) × (a, b, c).
void im2col(Ctx& ctx, const Op& o, const float* x, int64_t n, float* col) {
  const int64_t K = static_cast<int64_t>(o.kh) * o.kw * o.ic, rows = static_cast<int64_t>(o.oh) * o.ow;
  parallelRange(ctx.threads, n, rowsPer(rows * K), [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; i++) {
      const float* xi = x + i * o.inSize();
      for (int y = 0; y < o.oh; y++)
        for (int xq = 0; xq < o.ow; xq++) {
          float* row = col + (i * rows + static_cast<int64_t>(y) * o.ow + xq) * K;
          for (int a = 0; a < o.kh; a++) {
            const int iy = y * o.sh - o.pt + a;
            for (int b = 0; b < o.kw; b++) {
              const int ix = xq * o.sw - o.pl + b;
              float* d = row + (static_cast<int64_t>(a) * o.kw + b) * o.ic;
              if (iy < 0 || iy >= o.ih || ix < 0 || ix >= o.iw) std::fill(d, d + o.ic, 0.0f);
              else std::memcpy(d, xi + (static_cast<int64_t>(iy) * o.iw + ix) * o.ic, sizeof(float) * o.ic);
            }
          }
        }
    }
  });
}
void col2im(Ctx& ctx, const Op& o, const float* col, int64_t n, float* dx) {
  const int64_t K = static_cast<int64_t>(o.kh) * o.kw * o.ic, rows = static_cast<int64_t>(o.oh) * o.ow;
  parallelRange(ctx.threads, n, rowsPer(rows * K), [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; i++) {
      float* di = dx + i * o.inSize();
      std::fill(di, di + o.inSize(), 0.0f);
      for (int y = 0; y < o.oh; y++)
        for (int xq = 0; xq < o.ow; xq++) {
          const float* row = col + (i * rows + static_cast<int64_t>(y) * o.ow + xq) * K;
          for (int a = 0; a < o.kh; a++) {
            const int iy = y * o.sh - o.pt + a;
            if (iy < 0 || iy >= o.ih) continue;
            for (int b = 0; b < o.kw; b++) {
              const int ix = xq * o.sw - o.pl + b;
              if (ix < 0 || ix >= o.iw) continue;
              float* d = di + (static_cast<int64_t>(iy) * o.iw + ix) * o.ic;
              const float* s = row + (static_cast<int64_t>(a) * o.kw + b) * o.ic;
              for (int c = 0; c < o.ic; c++) d[c] += s[c];
            }
          }
        }
    }
  });
}

// Column sums of a rows×c matrix added into g (double accumulation, fixed order).
void colSums(Ctx& ctx, const float* z, int64_t rows, int c, float* g) {
  const int T = threadsFor(ctx.threads, rows * c);
  std::vector<std::vector<double>> part(T, std::vector<double>(c, 0.0));
  parallel(T, [&](int t) {
    std::vector<double>& p = part[t];
    for (int64_t r = rows * t / T; r < rows * (t + 1) / T; r++)
      for (int q = 0; q < c; q++) p[q] += z[r * c + q];
  });
  for (int q = 0; q < c; q++) {
    double s = 0;
    for (int t = 0; t < T; t++) s += part[t][q];
    g[q] += static_cast<float>(s);
  }
}

// rows×c matrix z: z += bias (when given), then ReLU (when relu).
void biasRelu(int T, float* z, int64_t rows, int c, const float* bias, bool relu) {
  if (!bias && !relu) return;
  parallelRange(T, rows, rowsPer(c), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      for (int q = 0; q < c; q++) {
        const float v = bias ? z[r * c + q] + bias[q] : z[r * c + q];
        z[r * c + q] = relu && !(v > 0) ? 0.0f : v;
      }
  });
}

// Forward pass; in training mode it also updates the batch norms' moving statistics in `state`.
void forward(Net& net, const float* params, float* state, const float* x, int64_t n, bool training, uint64_t seed) {
  Ctx& ctx = net.ctx;
  const int T = ctx.threads;
  for (size_t oi = 0; oi < net.ops.size(); oi++) {
    const OpTimer timer(0, oi);
    const Op& o = net.ops[oi];
    if (o.skip) continue;
    const float* in = outputOf(net, x, o.src);
    std::vector<float>& outV = net.act[oi];
    outV.resize(static_cast<size_t>(n * o.outSize()));
    float* out = outV.data();
    const int64_t total = n * o.outSize();
    switch (o.kind) {
      case PAD:
        parallelRange(T, n, rowsPer(o.outSize()), [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; i++) {
            float* d = out + i * o.outSize();
            std::fill(d, d + o.outSize(), 0.0f);
            for (int y = 0; y < o.ih; y++)
              std::memcpy(d + (static_cast<int64_t>(y + o.pt) * o.ow + o.pl) * o.oc,
                          in + i * o.inSize() + static_cast<int64_t>(y) * o.iw * o.ic, sizeof(float) * o.iw * o.ic);
          }
        });
        break;
      case CONV: {
        const int64_t K = static_cast<int64_t>(o.kh) * o.kw * o.ic, rows = n * o.oh * o.ow;
        const int64_t per = static_cast<int64_t>(o.oh) * o.ow;
        const bool direct = o.kh == 1 && o.kw == 1 && o.sh == 1 && o.sw == 1 && o.pt == 0 && o.pl == 0;
        if (direct) {
          gemm(ctx, rows, o.oc, K, Mat{in, K, false}, Mat{params + o.w, o.oc, false}, out, o.oc, false);
        } else {
          const int64_t chunk = convChunk(o, n);
          net.col.resize(static_cast<size_t>(chunk * per * K));
          for (int64_t c0 = 0; c0 < n; c0 += chunk) {
            const int64_t m = std::min(chunk, n - c0);
            im2col(ctx, o, in + c0 * o.inSize(), m, net.col.data());
            gemm(ctx, m * per, o.oc, K, Mat{net.col.data(), K, false}, Mat{params + o.w, o.oc, false},
                 out + c0 * per * o.oc, o.oc, false);
          }
        }
        biasRelu(T, out, rows, o.oc, o.b >= 0 ? params + o.b : nullptr, o.relu);
        break;
      }
      case DENSE: {
        gemm(ctx, n, o.oc, o.ic, Mat{in, o.ic, false}, Mat{params + o.w, o.oc, false}, out, o.oc, false);
        biasRelu(T, out, n, o.oc, o.b >= 0 ? params + o.b : nullptr, o.relu);
        break;
      }
      case BN: {
        const int C = o.oc;
        const int64_t rows = n * o.oh * o.ow;
        std::vector<double>& mean = net.bnMean[oi];
        std::vector<double>& inv = net.bnInv[oi];
        mean.assign(C, 0.0), inv.assign(C, 0.0);
        float* mm = state + o.s;
        float* mv = state + o.s + C;
        if (training) {
          const int TT = threadsFor(T, rows * C);
          std::vector<std::vector<double>> part(TT, std::vector<double>(C, 0.0));
          parallel(TT, [&](int t) {
            for (int64_t r = rows * t / TT; r < rows * (t + 1) / TT; r++)
              for (int q = 0; q < C; q++) part[t][q] += in[r * C + q];
          });
          for (int q = 0; q < C; q++) {
            for (int t = 0; t < TT; t++) mean[q] += part[t][q];
            mean[q] /= static_cast<double>(rows);
          }
          for (auto& p : part) std::fill(p.begin(), p.end(), 0.0);
          parallel(TT, [&](int t) {
            for (int64_t r = rows * t / TT; r < rows * (t + 1) / TT; r++)
              for (int q = 0; q < C; q++) {
                const double d = in[r * C + q] - mean[q];
                part[t][q] += d * d;
              }
          });
          for (int q = 0; q < C; q++) {
            double v = 0;
            for (int t = 0; t < TT; t++) v += part[t][q];
            v /= static_cast<double>(rows);
            inv[q] = 1.0 / std::sqrt(v + static_cast<double>(o.f1));
            // tfjs: m ← m − (m − batch)·decay, in float32
            mm[q] = mm[q] - (mm[q] - static_cast<float>(mean[q])) * o.f2;
            mv[q] = mv[q] - (mv[q] - static_cast<float>(v)) * o.f2;
          }
        } else {
          for (int q = 0; q < C; q++) {
            mean[q] = mm[q];
            inv[q] = 1.0 / std::sqrt(static_cast<double>(mv[q]) + static_cast<double>(o.f1));
          }
        }
        // y = (x − mean)·(γ/√(var + ε)) + β: centring first keeps x̂ exact when |mean| ≫ std.
        std::vector<float> mu(C), sc(C), sh(C);
        for (int q = 0; q < C; q++) {
          const double g = (o.flags & 2) ? params[o.w + q] : 1.0;
          mu[q] = static_cast<float>(mean[q]);
          sc[q] = static_cast<float>(g * inv[q]);
          sh[q] = (o.flags & 1) ? params[o.b + q] : 0.0f;
        }
        parallelRange(T, rows, rowsPer(C), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; r++)
            for (int q = 0; q < C; q++) {
              const float v = (in[r * C + q] - mu[q]) * sc[q] + sh[q];
              out[r * C + q] = o.relu && !(v > 0) ? 0.0f : v;
            }
        });
        break;
      }
      case RELU:
        parallelRange(T, total, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
          for (int64_t e = e0; e < e1; e++) out[e] = in[e] > 0 ? in[e] : 0.0f;
        });
        break;
      case MAXPOOL: {
        std::vector<int32_t>& arg = net.arg[oi];
        arg.resize(static_cast<size_t>(total));
        parallelRange(T, n, rowsPer(o.inSize()), [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; i++) {
            const float* xi = in + i * o.inSize();
            for (int y = 0; y < o.oh; y++)
              for (int xq = 0; xq < o.ow; xq++)
                for (int q = 0; q < o.oc; q++) {
                  int best = -1;
                  for (int a = 0; a < o.kh; a++) {
                    const int iy = y * o.sh - o.pt + a;
                    if (iy < 0 || iy >= o.ih) continue;
                    for (int b = 0; b < o.kw; b++) {
                      const int ix = xq * o.sw - o.pl + b;
                      if (ix < 0 || ix >= o.iw) continue;
                      const int t = (iy * o.iw + ix) * o.ic + q;
                      if (best < 0 || xi[t] > xi[best]) best = t;
                    }
                  }
                  const int64_t e = i * o.outSize() + (static_cast<int64_t>(y) * o.ow + xq) * o.oc + q;
                  arg[e] = best;
                  out[e] = best < 0 ? 0.0f : xi[best];
                }
          }
        });
        break;
      }
      case DROPOUT:
        if (!training || o.f1 <= 0) {
          std::memcpy(out, in, sizeof(float) * total);
        } else {
          const uint64_t stream = dropoutStream(seed, static_cast<int>(oi));
          parallelRange(T, total, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
            for (int64_t e = e0; e < e1; e++) out[e] = dropoutU(stream, e) >= o.f1 ? in[e] * o.f2 : 0.0f;
          });
        }
        break;
      case FLATTEN:
        std::memcpy(out, in, sizeof(float) * total);
        break;
      case ADD: {
        const float* in2 = outputOf(net, x, o.src2);
        parallelRange(T, total, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
          for (int64_t e = e0; e < e1; e++) {
            const float v = in[e] + in2[e];
            out[e] = o.relu && !(v > 0) ? 0.0f : v;
          }
        });
        break;
      }
      case GAP: {  // mean over the h×w positions of every image and channel (double sums)
        const int64_t hw = static_cast<int64_t>(o.ih) * o.iw;
        parallelRange(T, n, rowsPer(o.inSize()), [&](int64_t b0, int64_t b1) {
          std::vector<double> acc(o.ic);
          for (int64_t i = b0; i < b1; i++) {
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t p = 0; p < hw; p++)
              for (int c = 0; c < o.ic; c++) acc[c] += in[(i * hw + p) * o.ic + c];
            for (int c = 0; c < o.ic; c++) out[i * o.oc + c] = static_cast<float>(acc[c] / static_cast<double>(hw));
          }
        });
        break;
      }
    }
  }
}

struct LossWeights {
  double hard, soft, tau;
  bool kl;
};

// Loss of the logits z (n×k) and dL/dz into dz; false on a bad label.
bool lossRows(Ctx& ctx, const float* z, int64_t n, int k, const int32_t* y, const float* targets, const LossWeights& L,
              float* dz, double* lossOut) {
  const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(ctx.threads, n / 16)));
  std::vector<double> part(T, 0.0);
  std::vector<char> bad(T, 0);
  parallel(T, [&](int t) {
    std::vector<double> d(k);
    for (int64_t i = n * t / T; i < n * (t + 1) / T; i++) {
      const float* s = z + i * k;
      std::fill(d.begin(), d.end(), 0.0);
      if (L.hard != 0) {
        const int label = y[i];
        if (label < 0 || label >= k) {
          bad[t] = 1;
          return;
        }
        float mx = s[0];
        for (int c = 1; c < k; c++) mx = s[c] > mx ? s[c] : mx;
        double sum = 0;
        for (int c = 0; c < k; c++) sum += std::exp(static_cast<double>(s[c]) - mx);
        part[t] += L.hard * (std::log(sum) + mx - s[label]);
        for (int c = 0; c < k; c++)
          d[c] += L.hard * (std::exp(static_cast<double>(s[c]) - mx) / sum - (c == label ? 1.0 : 0.0));
      }
      if (L.soft != 0) {
        const float* tt = targets + i * k;
        const double tau = L.tau;
        double ms = s[0] / tau, mt = tt[0] / tau;
        for (int c = 1; c < k; c++) ms = std::max(ms, s[c] / tau), mt = std::max(mt, tt[c] / tau);
        double ss = 0, sT = 0;
        for (int c = 0; c < k; c++) ss += std::exp(s[c] / tau - ms), sT += std::exp(tt[c] / tau - mt);
        const double lss = std::log(ss) + ms, lst = std::log(sT) + mt;
        double v = 0;
        for (int c = 0; c < k; c++) {
          const double logq = s[c] / tau - lss, logp = tt[c] / tau - lst, p = std::exp(logp);
          if (p > 0) v += p * ((L.kl ? logp : 0.0) - logq);
          d[c] += L.soft * (std::exp(logq) - p) / tau;
        }
        part[t] += L.soft * v;
      }
      if (dz)
        for (int c = 0; c < k; c++) dz[i * k + c] = static_cast<float>(d[c]);
    }
  });
  double total = 0;
  for (int t = 0; t < T; t++) {
    if (bad[t]) return false;
    total += part[t];
  }
  *lossOut = total;
  return true;
}

// Backward from grad[last]. grads null: no parameter gradients. wantInput: the input gradient into
// net.gradIn (every op then needs its output gradient).
void backward(Net& net, const float* params, const float* x, int64_t n, bool training, uint64_t seed,
              float* grads, bool wantInput = false) {
  Ctx& ctx = net.ctx;
  const int T = ctx.threads;
  const size_t nops = net.ops.size();
  // The loss gradient is in grad[last]; every other op's output gradient is summed from its consumers
  // (all later in the list), so one pass from the end sees each one complete.
  for (size_t oi = nops; oi-- > 0;) {
    const OpTimer timer(1, oi);
    const Op& o = net.ops[oi];
    if (o.skip || !net.haveGrad[oi]) continue;
    const float* in = outputOf(net, x, o.src);
    const float* out = net.act[oi].data();
    const int64_t inTotal = n * o.inSize(), outTotal = n * o.outSize();
    float* dy = net.grad[oi].data();
    if (o.relu) {  // the fused ReLU's gradient first: dy where the output is > 0, else 0
      parallelRange(T, outTotal, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; e++) dy[e] = out[e] > 0 ? dy[e] : 0.0f;
      });
    }
    // dx: straight into the input's gradient when it is the first contribution, else via scratch.
    auto target = [&](int src) -> std::pair<float*, bool> {
      if (src < 0) {
        if (!wantInput) return {nullptr, false};
        if (!net.haveGradIn) {
          net.gradIn.resize(static_cast<size_t>(inTotal));
          net.haveGradIn = true;
          return {net.gradIn.data(), false};
        }
        net.scratch.resize(static_cast<size_t>(inTotal));
        return {net.scratch.data(), true};
      }
      if (!wantInput && !net.needGrad[net.ops[src].out]) return {nullptr, false};
      const int t = net.ops[src].out;
      if (!net.haveGrad[t]) {
        net.grad[t].resize(static_cast<size_t>(inTotal));
        net.haveGrad[t] = 1;
        return {net.grad[t].data(), false};
      }
      net.scratch.resize(static_cast<size_t>(inTotal));
      return {net.scratch.data(), true};
    };
    auto finish = [&](int src, bool viaScratch) {
      if (!viaScratch) return;
      float* g = src < 0 ? net.gradIn.data() : net.grad[net.ops[src].out].data();
      const float* d = net.scratch.data();
      parallelRange(T, inTotal, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; e++) g[e] += d[e];
      });
    };
    if (o.kind == ADD) {  // both inputs get dy
      for (const int src : {o.src, o.src2}) {
        auto [dx, via] = target(src);
        if (!dx) continue;
        std::memcpy(dx, dy, sizeof(float) * outTotal);
        finish(src, via);
      }
      continue;
    }
    auto [dx, viaScratch] = target(o.src);
    const bool needDx = dx != nullptr;
    if (!needDx && (!grads || (o.w < 0 && o.b < 0))) continue;  // nothing upstream to train
    switch (o.kind) {
      case PAD:
        parallelRange(T, n, rowsPer(o.outSize()), [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; i++)
            for (int y = 0; y < o.ih; y++)
              std::memcpy(dx + i * o.inSize() + static_cast<int64_t>(y) * o.iw * o.ic,
                          dy + i * o.outSize() + (static_cast<int64_t>(y + o.pt) * o.ow + o.pl) * o.oc,
                          sizeof(float) * o.iw * o.ic);
        });
        break;
      case CONV: {
        const int64_t K = static_cast<int64_t>(o.kh) * o.kw * o.ic, rows = n * o.oh * o.ow;
        const int64_t per = static_cast<int64_t>(o.oh) * o.ow;
        const bool direct = o.kh == 1 && o.kw == 1 && o.sh == 1 && o.sw == 1 && o.pt == 0 && o.pl == 0;
        if (grads && o.b >= 0) colSums(ctx, dy, rows, o.oc, grads + o.b);
        if (direct) {
          // dW[K×oc] = xᵀ·dZ, dx = dZ·Wᵀ
          if (grads) gemm(ctx, K, o.oc, rows, Mat{in, K, true}, Mat{dy, o.oc, false}, grads + o.w, o.oc, false);
          if (needDx) gemm(ctx, rows, K, o.oc, Mat{dy, o.oc, false}, Mat{params + o.w, o.oc, true}, dx, K, false);
          break;
        }
        const int64_t chunk = convChunk(o, n);
        if (grads) net.col.resize(static_cast<size_t>(chunk * per * K));
        if (needDx) net.dcol.resize(static_cast<size_t>(chunk * per * K));
        for (int64_t c0 = 0; c0 < n; c0 += chunk) {
          const int64_t m = std::min(chunk, n - c0);
          const float* dz = dy + c0 * per * o.oc;
          if (grads) {
            im2col(ctx, o, in + c0 * o.inSize(), m, net.col.data());
            // dW[K×oc] (+)= colᵀ·dZ over the chunks
            gemm(ctx, K, o.oc, m * per, Mat{net.col.data(), K, true}, Mat{dz, o.oc, false}, grads + o.w, o.oc,
                 c0 > 0);
          }
          if (needDx) {
            // dcol = dZ·Wᵀ, then col2im into dx
            gemm(ctx, m * per, K, o.oc, Mat{dz, o.oc, false}, Mat{params + o.w, o.oc, true}, net.dcol.data(), K,
                 false);
            col2im(ctx, o, net.dcol.data(), m, dx + c0 * o.inSize());
          }
        }
        break;
      }
      case DENSE:
        if (grads && o.b >= 0) colSums(ctx, dy, n, o.oc, grads + o.b);
        if (grads) gemm(ctx, o.ic, o.oc, n, Mat{in, o.ic, true}, Mat{dy, o.oc, false}, grads + o.w, o.oc, false);
        if (needDx) gemm(ctx, n, o.ic, o.oc, Mat{dy, o.oc, false}, Mat{params + o.w, o.oc, true}, dx, o.ic, false);
        break;
      case BN: {
        const int C = o.oc;
        const int64_t rows = n * o.oh * o.ow;
        const std::vector<double>& mean = net.bnMean[oi];
        const std::vector<double>& inv = net.bnInv[oi];
        // Column sums of dy and dy·x̂: for γ/β gradients, and for dx in training mode.
        const bool sums = grads || training;
        const int TT = sums ? threadsFor(T, rows * C) : 0;
        std::vector<std::vector<double>> sdy(TT, std::vector<double>(C, 0.0)), sdyx(TT, std::vector<double>(C, 0.0));
        if (sums) parallel(TT, [&](int t) {
          for (int64_t r = rows * t / TT; r < rows * (t + 1) / TT; r++)
            for (int q = 0; q < C; q++) {
              const double g = dy[r * C + q];
              sdy[t][q] += g;
              sdyx[t][q] += g * (in[r * C + q] - mean[q]) * inv[q];
            }
        });
        std::vector<double> dbeta(C, 0.0), dgamma(C, 0.0);
        for (int q = 0; q < C; q++)
          for (int t = 0; t < TT; t++) dbeta[q] += sdy[t][q], dgamma[q] += sdyx[t][q];
        if (grads && (o.flags & 2))
          for (int q = 0; q < C; q++) grads[o.w + q] += static_cast<float>(dgamma[q]);
        if (grads && (o.flags & 1))
          for (int q = 0; q < C; q++) grads[o.b + q] += static_cast<float>(dbeta[q]);
        if (needDx) {
          std::vector<double> a(C), bb(C), cc(C);
          for (int q = 0; q < C; q++) {
            const double g = (o.flags & 2) ? params[o.w + q] : 1.0;
            a[q] = g * inv[q];
            if (training) {  // dx = γ·inv·(dy − Σdy/R − x̂·Σ(dy·x̂)/R)
              bb[q] = dbeta[q] / static_cast<double>(rows);
              cc[q] = dgamma[q] / static_cast<double>(rows);
            } else {
              bb[q] = 0, cc[q] = 0;
            }
          }
          parallelRange(T, rows, rowsPer(C), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++)
              for (int q = 0; q < C; q++) {
                const double xh = (in[r * C + q] - mean[q]) * inv[q];
                dx[r * C + q] = static_cast<float>(a[q] * (dy[r * C + q] - bb[q] - xh * cc[q]));
              }
          });
        }
        break;
      }
      case RELU:
        parallelRange(T, outTotal, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
          for (int64_t e = e0; e < e1; e++) dx[e] = out[e] > 0 ? dy[e] : 0.0f;
        });
        break;
      case MAXPOOL: {
        const std::vector<int32_t>& arg = net.arg[oi];
        parallelRange(T, n, rowsPer(o.inSize()), [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; i++) {
            float* di = dx + i * o.inSize();
            std::fill(di, di + o.inSize(), 0.0f);
            for (int64_t e = i * o.outSize(); e < (i + 1) * o.outSize(); e++)
              if (arg[e] >= 0) di[arg[e]] += dy[e];
          }
        });
        break;
      }
      case DROPOUT:
        if (!training || o.f1 <= 0) {
          std::memcpy(dx, dy, sizeof(float) * outTotal);
        } else {
          const uint64_t stream = dropoutStream(seed, static_cast<int>(oi));
          parallelRange(T, outTotal, MIN_FLOATS, [&](int64_t e0, int64_t e1) {
            for (int64_t e = e0; e < e1; e++) dx[e] = dropoutU(stream, e) >= o.f1 ? dy[e] * o.f2 : 0.0f;
          });
        }
        break;
      case FLATTEN:
        std::memcpy(dx, dy, sizeof(float) * outTotal);
        break;
      case GAP: {
        const int64_t hw = static_cast<int64_t>(o.ih) * o.iw;
        const float scale = 1.0f / static_cast<float>(hw);
        if (needDx) parallelRange(T, n, rowsPer(o.inSize()), [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; i++)
            for (int64_t p = 0; p < hw; p++)
              for (int c = 0; c < o.ic; c++) dx[(i * hw + p) * o.ic + c] = dy[i * o.oc + c] * scale;
        });
        break;
      }
    }
    if (needDx) finish(o.src, viaScratch);
  }
}

void setErr(char* err, int32_t len, const std::string& msg) {
  if (!err || len <= 0) return;
  std::strncpy(err, msg.c_str(), static_cast<size_t>(len - 1));
  err[len - 1] = 0;
}

}  // namespace

extern "C" {

void* bkd_seq_create(const int32_t* words, int32_t nwords, char* err, int32_t errlen) {
  if (nwords < 7 || words[0] != SEQ_MAGIC || words[1] != SEQ_VERSION) {
    setErr(err, errlen, "op list header is not a seq_train v2 header; rebuild it with lib/native/seq_desc.ts");
    return nullptr;
  }
  const int nops = words[2];
  if (nops < 1 || nwords != 7 + nops * SEQ_RECORD) {
    setErr(err, errlen, "op list has " + std::to_string(nwords) + " words for " + std::to_string(nops) + " ops");
    return nullptr;
  }
  try {
    auto* net = new Net();
    net->inH = words[3], net->inW = words[4], net->inC = words[5], net->classes = words[6];
    for (int i = 0; i < nops; i++) {
      const int32_t* r = words + 7 + i * SEQ_RECORD;
      Op o{};
      o.src = r[13] - 1, o.src2 = r[14] - 1;
      if (o.src < -1 || o.src >= i || o.src2 < -1 || o.src2 >= i) {
        setErr(err, errlen, "op " + std::to_string(i) + ": input is not an earlier op");
        delete net;
        return nullptr;
      }
      int ph = net->inH, pw = net->inW, pc = net->inC;
      if (o.src >= 0) ph = net->ops[o.src].oh, pw = net->ops[o.src].ow, pc = net->ops[o.src].oc;
      o.kind = r[0], o.ih = ph, o.iw = pw, o.ic = pc, o.oh = r[1], o.ow = r[2], o.oc = r[3];
      o.kh = r[4], o.kw = r[5], o.sh = r[6], o.sw = r[7], o.pt = r[8], o.pl = r[9], o.flags = r[10];
      o.f1 = bitsToFloat(r[11]), o.f2 = bitsToFloat(r[12]);
      o.w = o.b = o.s = -1;
      std::string bad;
      if (o.oh < 1 || o.ow < 1 || o.oc < 1) bad = "empty output";
      switch (o.kind) {
        case CONV:
          if (o.kh < 1 || o.kw < 1 || o.sh < 1 || o.sw < 1 || o.pt < 0 || o.pl < 0 ||
              (o.oh - 1) * o.sh - o.pt >= o.ih || (o.ow - 1) * o.sw - o.pl >= o.iw)
            bad = "bad conv geometry";
          o.w = net->params, net->params += static_cast<int64_t>(o.kh) * o.kw * o.ic * o.oc;
          if (o.flags & 1) o.b = net->params, net->params += o.oc;
          break;
        case DENSE:
          if (o.ih != 1 || o.iw != 1 || o.oh != 1 || o.ow != 1) bad = "dense needs a flat input";
          o.w = net->params, net->params += static_cast<int64_t>(o.ic) * o.oc;
          if (o.flags & 1) o.b = net->params, net->params += o.oc;
          break;
        case BN:
          if (o.oh != o.ih || o.ow != o.iw || o.oc != o.ic) bad = "batch norm changes the shape";
          if (o.flags & 2) o.w = net->params, net->params += o.oc;
          if (o.flags & 1) o.b = net->params, net->params += o.oc;
          o.s = net->state, net->state += 2 * static_cast<int64_t>(o.oc);
          break;
        case PAD:
          if (o.oc != o.ic || o.oh < o.ih + o.pt || o.ow < o.iw + o.pl) bad = "bad padding";
          break;
        case MAXPOOL:
          if (o.oc != o.ic || o.kh < 1 || o.kw < 1 || o.sh < 1 || o.sw < 1) bad = "bad pool geometry";
          break;
        case RELU:
        case DROPOUT:
          if (o.oh != o.ih || o.ow != o.iw || o.oc != o.ic) bad = "elementwise op changes the shape";
          if (o.kind == DROPOUT && !(o.f1 >= 0 && o.f1 < 1)) bad = "dropout rate outside [0, 1)";
          break;
        case FLATTEN:
          if (o.oh != 1 || o.ow != 1 || static_cast<int64_t>(o.oc) != o.inSize()) bad = "flatten size";
          break;
        case ADD: {
          const Op* b = o.src2 >= 0 ? &net->ops[o.src2] : nullptr;
          const int bh = b ? b->oh : net->inH, bw = b ? b->ow : net->inW, bc = b ? b->oc : net->inC;
          if (o.oh != o.ih || o.ow != o.iw || o.oc != o.ic || bh != o.ih || bw != o.iw || bc != o.ic)
            bad = "add of different shapes";
          break;
        }
        case GAP:
          if (o.oh != 1 || o.ow != 1 || o.oc != o.ic) bad = "global average pool size";
          break;
        default:
          bad = "unknown op kind " + std::to_string(o.kind);
      }
      if (!bad.empty()) {
        setErr(err, errlen, "op " + std::to_string(i) + ": " + bad);
        delete net;
        return nullptr;
      }
      o.out = i;
      net->ops.push_back(o);
    }
    const Op& last = net->ops.back();
    if (last.oh != 1 || last.ow != 1 || last.oc != net->classes || net->classes < 2) {
      setErr(err, errlen, "the last op must give " + std::to_string(net->classes) + " logits (≥ 2) per image");
      delete net;
      return nullptr;
    }
    // Fuse a ReLU into the op right before it when that op's output feeds nothing else.
    std::vector<int> consumers(nops, 0);
    for (const Op& o : net->ops) {
      if (o.src >= 0) consumers[o.src]++;
      if (o.kind == ADD && o.src2 >= 0) consumers[o.src2]++;
    }
    for (int i = 0; i + 1 < nops; i++) {
      Op& o = net->ops[i];
      Op& next = net->ops[i + 1];
      if ((o.kind == CONV || o.kind == DENSE || o.kind == BN || o.kind == ADD) && next.kind == RELU &&
          next.src == i && consumers[i] == 1) {
        o.relu = true;
        next.skip = true;
        next.out = i;
      }
    }
    net->needGrad.assign(nops, 0);
    for (int i = 0; i < nops; i++) {
      const Op& o = net->ops[i];
      bool need = o.w >= 0 || o.b >= 0;
      if (o.src >= 0) need = need || net->needGrad[o.src];
      if (o.kind == ADD && o.src2 >= 0) need = need || net->needGrad[o.src2];
      net->needGrad[i] = need;
    }
    net->act.resize(nops), net->arg.resize(nops), net->bnMean.resize(nops), net->bnInv.resize(nops);
    net->grad.resize(nops), net->haveGrad.assign(nops, 0);
    return net;
  } catch (const std::exception& e) {
    setErr(err, errlen, std::string("out of memory: ") + e.what());
    return nullptr;
  }
}

int64_t bkd_seq_param_count(void* handle) { return static_cast<Net*>(handle)->params; }
int64_t bkd_seq_state_count(void* handle) { return static_cast<Net*>(handle)->state; }

int32_t bkd_seq_loss_grads(void* handle, const float* params, float* state, const float* x, const int32_t* y,
                           const float* targets, int64_t n, const double* weights, int32_t kl, int32_t training,
                           uint64_t seed, float* grads, float* loss, float* logits, int32_t threads) {
  Net& net = *static_cast<Net*>(handle);
  const LossWeights lw{weights[0], weights[1], weights[2], kl != 0};
  if (lw.soft != 0 && !(lw.tau > 0)) return -2;
  if (n <= 0) {
    *loss = 0;
    if (grads) std::fill(grads, grads + net.params, 0.0f);
    return 0;
  }
  try {
    net.lastN = -1;
    net.ctx.threads = std::max(1, threads);
    const bool train = training != 0;
    // The running statistics change only once the labels are known to be valid (checked in the loss).
    std::vector<float> before(state, state + net.state);
    forward(net, params, state, x, n, train, seed);
    const int last = net.ops.back().out;
    const float* z = net.act[last].data();
    if (logits) std::memcpy(logits, z, sizeof(float) * n * net.classes);
    std::fill(net.haveGrad.begin(), net.haveGrad.end(), 0);
    std::vector<float>& g = net.grad[last];
    g.resize(static_cast<size_t>(n * net.classes));
    net.haveGrad[last] = 1;
    double total = 0;
    if (!lossRows(net.ctx, z, n, net.classes, y, targets, lw, grads ? g.data() : nullptr, &total)) {
      std::copy(before.begin(), before.end(), state);
      return -1;
    }
    *loss = static_cast<float>(total);
    if (grads) {
      std::fill(grads, grads + net.params, 0.0f);
      backward(net, params, x, n, train, seed, grads);
    }
    return 0;
  } catch (const std::bad_alloc&) {
    return -3;
  }
}

int32_t bkd_seq_infer(void* handle, const float* params, float* state, const float* x, int64_t n, float* logits,
                      int32_t threads) {
  Net& net = *static_cast<Net*>(handle);
  net.lastN = -1;
  if (n <= 0) return 0;
  try {
    net.ctx.threads = std::max(1, threads);
    forward(net, params, state, x, n, false, 0);  // inference mode: `state` is only read
    std::memcpy(logits, net.act[net.ops.back().out].data(), sizeof(float) * n * net.classes);
    net.lastN = n;
    return 0;
  } catch (const std::bad_alloc&) {
    return -3;
  }
}

int32_t bkd_seq_input_grad(void* handle, const float* params, const float* x, int64_t n, const float* dlogits,
                           float* dx, int32_t threads) {
  Net& net = *static_cast<Net*>(handle);
  if (n <= 0) return 0;
  if (net.lastN != n) return -4;
  try {
    net.ctx.threads = std::max(1, threads);
    const int last = net.ops.back().out;
    std::fill(net.haveGrad.begin(), net.haveGrad.end(), 0);
    net.haveGradIn = false;
    std::vector<float>& g = net.grad[last];
    g.assign(dlogits, dlogits + n * net.classes);
    net.haveGrad[last] = 1;
    backward(net, params, x, n, false, 0, nullptr, true);
    const int64_t size = n * static_cast<int64_t>(net.inH) * net.inW * net.inC;
    if (net.haveGradIn) std::memcpy(dx, net.gradIn.data(), sizeof(float) * size);
    else std::fill(dx, dx + size, 0.0f);
    return 0;
  } catch (const std::bad_alloc&) {
    return -3;
  }
}

int32_t bkd_seq_dropout_mask(void* handle, int32_t op, uint64_t seed, int64_t n, float* out) {
  Net& net = *static_cast<Net*>(handle);
  if (op < 0 || op >= static_cast<int32_t>(net.ops.size()) || net.ops[op].kind != DROPOUT) return -1;
  const Op& o = net.ops[op];
  const uint64_t stream = dropoutStream(seed, op);
  for (int64_t e = 0; e < n * o.outSize(); e++) out[e] = dropoutU(stream, e) >= o.f1 ? o.f2 : 0.0f;
  return 0;
}

int64_t bkd_seq_activation(void* handle, int32_t op, float* out, int64_t cap) {
  Net& net = *static_cast<Net*>(handle);
  if (op < 0 || op >= static_cast<int32_t>(net.ops.size())) return -1;
  const std::vector<float>& a = net.act[net.ops[op].out];  // a fused ReLU's output is the fused op's
  if (out && cap >= static_cast<int64_t>(a.size())) std::memcpy(out, a.data(), sizeof(float) * a.size());
  return static_cast<int64_t>(a.size());
}

void bkd_seq_free(void* handle) { delete static_cast<Net*>(handle); }

}  // extern "C"
