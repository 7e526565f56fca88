// boundary-kd native inference engine: the forward pass of a sequential network on a batch of NHWC
// float32 images, on all cores. Built at first use by lib/native/build.ts and called through Deno FFI
// (lib/native/predictor.ts). C++17 standard library only.
//
// A *plan* is a list of ops (see the encoding below) plus their parameters; lib/native/plan.ts turns a
// tfjs LayersModel into one (batch norm already folded into the conv/dense before it where possible).
//
// Execution. bkd_forward splits the batch into contiguous chunks (about four per thread, at most TILE
// images each) that the caller's thread and up to threads − 1 persistent helper std::threads of the
// plan claim from an atomic counter (see Pool). Each thread owns scratch buffers that live in the plan
// and are reused across calls (grown when needed). Within a chunk, images go in tiles of up to TILE rows:
//   phase A — the ops before the first dense layer (pad, conv, pool, affine, relu) run image by image,
//             so activations stay in cache; each image's final feature map lands in a row of the tile;
//   phase B — dense/affine/relu ops run on the whole tile (rows share weight loads).
//
// Kernels. Conv and dense share one register-blocked microkernel: P output pixels (or batch rows) ×
// NV vectors of output channels accumulate in registers; per reduction step it loads NV weight
// vectors and broadcasts P inputs, so each weight load feeds P FMAs and each broadcast NV FMAs.
// Weights are packed [k][cout rounded up to the vector width] (tfjs HWIO / [in,out] order with the
// output axis padded with zeros), bias padded the same way. Convolutions read the NHWC input in place:
// for one kernel row the (kw, cin) run is contiguous whatever the stride, so no im2col buffer exists.
// ReLU is fused into the store. No -ffast-math: sums are plain IEEE float FMAs in (kh, kw, cin) order.
//
// Max-pooling ignores NaN like the tfjs cpu backend; ReLU keeps NaN (max(0, NaN) = NaN, as Math.max).
// Labels: the argmax of each logit row, first maximum wins (like tfjs argMax). A NaN logit never wins;
// a row whose logits are all NaN gets label 0. So the result is deterministic for any input.
//
// ABI (all extern "C"):
//   void*   bkd_plan_create(const int32_t* words, int64_t nwords, const float* params, int64_t nparams,
//                           char* err, int32_t errlen)          → plan, or null with a message in err
//   int64_t bkd_plan_info(void* plan, int32_t what)             → 0 input floats/image, 1 outputs/image,
//                                                                  2 multiply-adds/image
//   int32_t bkd_forward(void* plan, const float* x, int64_t n, float* logits_or_null,
//                       int32_t* labels_or_null, int32_t threads) → 0, or −1 (see bkd_last_error)
//   int32_t bkd_last_error(void* plan, char* buf, int32_t len)
//   void    bkd_plan_free(void* plan)
//   int32_t bkd_isa(char* buf, int32_t len)                     → vector ISA in use, e.g. "avx512f x16"
//
// Plan encoding (int32 words): header [MAGIC, VERSION, h, w, c, nops], then nops records of REC words,
// [kind, a1, a2, ...] (unused words 0); parameter offsets index `params` (floats):
//   PAD     1: top, bottom, left, right
//   CONV    2: kh, kw, cin, cout, strideH, strideW, relu, weightOff [kh,kw,cin,cout], biasOff (−1: none)
//   AFFINE  3: channels, relu, scaleOff, shiftOff            (y = x·scale + shift over the last axis)
//   RELU    4
//   MAXPOOL 5: poolH, poolW, strideH, strideW               (valid)
//   FLATTEN 6                                               (no-op on NHWC memory: (h, w, c) order)
//   DENSE   7: in, out, relu, weightOff [in,out], biasOff (−1: none)

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// Vector layer: one SIMD register of VW floats, and how many accumulators fit in registers.

#if defined(__AVX512F__)
constexpr int VW = 16;
constexpr int ACC_REGS = 24;  // of 32 zmm: the rest hold weights and the broadcast
constexpr const char* ISA = "avx512f";
using vec = __m512;
inline vec vload(const float* p) { return _mm512_load_ps(p); }     // 64-byte aligned
inline vec vloadu(const float* p) { return _mm512_loadu_ps(p); }
inline vec vset1(float s) { return _mm512_set1_ps(s); }
inline vec vzero() { return _mm512_setzero_ps(); }
inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
// max(0, x) with x second: MAXPS returns the second operand when either is NaN, so NaN propagates.
inline vec vrelu(vec x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
inline vec vmax(vec a, vec b) { return _mm512_max_ps(a, b); }  // a > b ? a : b (b if NaN)
inline void vstoreu(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline void vstoren(float* p, vec v, int n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int VW = 8;
constexpr int ACC_REGS = 12;  // of 16 ymm
constexpr const char* ISA = "avx2";
using vec = __m256;
inline vec vload(const float* p) { return _mm256_load_ps(p); }
inline vec vloadu(const float* p) { return _mm256_loadu_ps(p); }
inline vec vset1(float s) { return _mm256_set1_ps(s); }
inline vec vzero() { return _mm256_setzero_ps(); }
inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec vrelu(vec x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }
inline vec vmax(vec a, vec b) { return _mm256_max_ps(a, b); }
inline void vstoreu(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline void vstoren(float* p, vec v, int n) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  std::memcpy(p, t, sizeof(float) * static_cast<size_t>(n));
}
#else
// Portable fallback: GCC/Clang vector extensions (4 floats; the compiler picks the instructions).
constexpr int VW = 4;
constexpr int ACC_REGS = 12;
constexpr const char* ISA = "generic";
typedef float vec __attribute__((vector_size(16)));
inline vec vload(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vec vloadu(const float* p) { return vload(p); }
inline vec vset1(float s) { return vec{s, s, s, s}; }
inline vec vzero() { return vec{0, 0, 0, 0}; }
inline vec vfma(vec a, vec b, vec c) { return a * b + c; }
inline vec vrelu(vec x) { return x < 0 ? vzero() : x; }  // NaN compares false: stays NaN
inline vec vmax(vec a, vec b) { return a > b ? a : b; }  // b if NaN, like MAXPS
inline void vstoreu(float* p, vec v) { std::memcpy(p, &v, sizeof v); }
inline void vstoren(float* p, vec v, int n) { std::memcpy(p, &v, sizeof(float) * static_cast<size_t>(n)); }
#endif

constexpr int NV_MAX = 4;   // output-channel vectors per microkernel call
constexpr int P_MAX = 12;   // output pixels / rows per microkernel call
constexpr int TILE = 64;    // rows per phase-B tile
constexpr int32_t MAGIC = 0x424b4431;  // "BKD1"
constexpr int32_t VERSION = 1;
constexpr int REC = 12;     // words per op record

/** Pixels per microkernel call for NV output vectors: as many as the accumulator registers allow. */
constexpr int pFor(int nv) { return std::min(P_MAX, ACC_REGS / nv); }

inline size_t roundUp(size_t n, size_t m) { return (n + m - 1) / m * m; }

/** A 64-byte aligned float buffer. */
struct Buf {
  float* p = nullptr;
  size_t n = 0;
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  ~Buf() { std::free(p); }
  /** Ensure room for `m` floats (contents are not kept). Throws std::bad_alloc. */
  void reserve(size_t m) {
    if (m <= n) return;
    std::free(p);
    p = nullptr;
    n = 0;
    void* q = std::aligned_alloc(64, roundUp(std::max<size_t>(m, 1) * sizeof(float), 64));
    if (!q) throw std::bad_alloc();
    p = static_cast<float*>(q);
    n = m;
  }
  /** Ensure room for `m` floats, all zero. */
  void zeros(size_t m) {
    reserve(m);
    std::memset(p, 0, sizeof(float) * m);
  }
};

// ---------------------------------------------------------------------------------------------
// The microkernel shared by conv (P output pixels) and dense (P batch rows).

struct MicroArgs {
  const float* in[P_MAX];  // input origin of each of the P pixels/rows
  int kOuter;              // kernel rows (1 for dense)
  ptrdiff_t outerStride;   // floats between kernel rows in the input (W·C)
  int kInner;              // contiguous reduction run per kernel row (KW·C, or `in` for dense)
  const float* w;          // packed weights at this block's first output channel
  ptrdiff_t wStride;       // packed row length (cout rounded up to VW)
  const float* bias;       // padded bias at this block's first output channel
  float* out;              // output of the first pixel/row at this block's first channel
  ptrdiff_t outStride;     // floats between consecutive pixels/rows in the output (cout)
  int nLast;               // valid lanes of the block's last vector (1..VW)
  bool relu;
};

template <int P, int NV>
void micro(const MicroArgs& a) {
  vec acc[P][NV];
  for (int v = 0; v < NV; ++v) {
    const vec b = vload(a.bias + v * VW);
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  const float* w = a.w;
  for (int o = 0; o < a.kOuter; ++o) {
    const float* ip[P];
    for (int p = 0; p < P; ++p) ip[p] = a.in[p] + o * a.outerStride;
    for (int j = 0; j < a.kInner; ++j, w += a.wStride) {
      vec wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = vload(w + v * VW);
      for (int p = 0; p < P; ++p) {
        const vec x = vset1(ip[p][j]);
        for (int v = 0; v < NV; ++v) acc[p][v] = vfma(x, wv[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    float* o = a.out + p * a.outStride;
    for (int v = 0; v < NV; ++v) {
      const vec r = a.relu ? vrelu(acc[p][v]) : acc[p][v];
      if (v < NV - 1 || a.nLast == VW) vstoreu(o + v * VW, r);
      else vstoren(o + v * VW, r, a.nLast);
    }
  }
}

using MicroFn = void (*)(const MicroArgs&);

template <int NV, int... Ps>
constexpr std::array<MicroFn, P_MAX + 1> microRow(std::integer_sequence<int, Ps...>) {
  return {{nullptr, (Ps + 1 <= pFor(NV) ? &micro<(Ps + 1 <= pFor(NV) ? Ps + 1 : 1), NV> : nullptr)...}};
}

/** MICRO[nv][p]: the microkernel for p pixels × nv vectors (p ≤ pFor(nv)). */
const std::array<std::array<MicroFn, P_MAX + 1>, NV_MAX + 1> MICRO = {{
    {},
    microRow<1>(std::make_integer_sequence<int, P_MAX>{}),
    microRow<2>(std::make_integer_sequence<int, P_MAX>{}),
    microRow<3>(std::make_integer_sequence<int, P_MAX>{}),
    microRow<4>(std::make_integer_sequence<int, P_MAX>{}),
}};

/**
 * Shared GEMM-like driver: `count` outputs (pixels or rows), `origin(i)` gives output i's input origin;
 * output i is written at out + i·cout. Output channels go in blocks of ≤ NV_MAX vectors (balanced),
 * each block sweeping all outputs in groups of pFor(nv).
 */
template <class Origin>
void gemmLike(int count, Origin origin, int kOuter, ptrdiff_t outerStride, int kInner, const float* w,
              int cout, int coutPad, const float* bias, bool relu, float* out) {
  const int nvTotal = coutPad / VW;
  const int blocks = (nvTotal + NV_MAX - 1) / NV_MAX;
  MicroArgs a;
  a.kOuter = kOuter;
  a.outerStride = outerStride;
  a.kInner = kInner;
  a.wStride = coutPad;
  a.outStride = cout;
  a.relu = relu;
  int v0 = 0;
  for (int b = 0; b < blocks; ++b) {
    const int nv = nvTotal / blocks + (b < nvTotal % blocks ? 1 : 0);
    const int c0 = v0 * VW;
    a.w = w + c0;
    a.bias = bias + c0;
    a.nLast = std::min(VW, cout - (c0 + (nv - 1) * VW));
    const int pmax = pFor(nv);
    for (int i = 0; i < count; i += pmax) {
      const int p = std::min(pmax, count - i);
      for (int q = 0; q < p; ++q) a.in[q] = origin(i + q);
      a.out = out + static_cast<ptrdiff_t>(i) * cout + c0;
      MICRO[nv][p](a);
    }
    v0 += nv;
  }
}

// ---------------------------------------------------------------------------------------------
// Plan.

enum Kind : int32_t { PAD = 1, CONV = 2, AFFINE = 3, RELU = 4, MAXPOOL = 5, FLATTEN = 6, DENSE = 7 };

struct Shape {
  int h, w, c;
  size_t size() const { return static_cast<size_t>(h) * w * c; }
};

/** One executable step (flatten and identities are compiled away). */
struct Step {
  Kind kind;
  Shape in, out;
  int kh = 0, kw = 0, sh = 1, sw = 1;  // conv kernel / pool window, strides
  int top = 0, left = 0;               // pad
  int coutPad = 0;
  bool relu = false;
  Buf w, b;                            // packed weights + padded bias, or affine scale + shift
};

/** Per-thread scratch: two image buffers (phase A), two row-tile buffers (phase B). */
struct Scratch {
  Buf a, b, r0, r1;
};

struct Plan;

/**
 * Persistent helper threads of one plan. A forward call publishes a job; the caller and every helper
 * that joins claim contiguous chunks of images from an atomic counter until none are left. The caller
 * waits only for chunks to finish and for helpers that actually joined, never for a helper the OS has
 * not scheduled yet (on a loaded machine the caller then simply does more of the work itself).
 */
struct Pool {
  std::mutex m;
  std::condition_variable wake, finished;
  std::vector<std::thread> helpers;
  uint64_t generation = 0;
  bool open = false, stop = false;
  int allowed = 0;  // helpers 0..allowed-1 may join the current job
  int active = 0;   // helpers inside the current job
  // The current job.
  const float* x = nullptr;
  int64_t n = 0, chunk = 1;
  float* logits = nullptr;
  int32_t* labels = nullptr;
  std::atomic<int64_t> next{0}, done{0};
  std::exception_ptr error;

  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m);
      stop = true;
    }
    wake.notify_all();
    for (auto& t : helpers) t.join();
  }
};

struct Plan {
  Shape input{};
  std::vector<Step> steps;
  size_t split = 0;      // steps[0, split) run per image, steps[split, end) per row tile
  size_t inSize = 0, outSize = 0, featSize = 0;
  size_t maxImage = 0;   // largest phase-A activation (floats)
  size_t maxRow = 0;     // widest phase-B row (floats)
  double macs = 0;       // multiply-adds per image
  std::mutex mu;         // one forward at a time (scratch and pool are shared)
  std::vector<std::unique_ptr<Scratch>> scratch;  // slot 0: the caller, slot k + 1: helper k
  std::string error;
  Pool pool;             // declared last: its helpers stop before anything else is destroyed
};

void setErr(char* err, int32_t len, const std::string& msg) {
  if (!err || len <= 0) return;
  const size_t n = std::min(msg.size(), static_cast<size_t>(len - 1));
  std::memcpy(err, msg.data(), n);
  err[n] = 0;
}

struct PlanError : std::exception {
  std::string msg;
  explicit PlanError(std::string m) : msg(std::move(m)) {}
  const char* what() const noexcept override { return msg.c_str(); }
};

std::string opName(int32_t k) {
  switch (k) {
    case PAD: return "pad";
    case CONV: return "conv";
    case AFFINE: return "affine";
    case RELU: return "relu";
    case MAXPOOL: return "maxpool";
    case FLATTEN: return "flatten";
    case DENSE: return "dense";
    default: return "op " + std::to_string(k);
  }
}

/** Parameter view [off, off + n) with bounds check. */
const float* params(const float* p, int64_t np, int64_t off, int64_t n, size_t op, const char* what) {
  if (off < 0 || n < 0 || off + n > np) {
    throw PlanError("op " + std::to_string(op) + ": " + what + " [" + std::to_string(off) + ", +" +
                    std::to_string(n) + ") lies outside the " + std::to_string(np) + " parameters");
  }
  return p + off;
}

/** Pack [k][cout] weights into [k][coutPad] (zero columns) and bias into [coutPad]. */
void packMatrix(Step& s, const float* w, const float* b, size_t k, int cout) {
  s.coutPad = static_cast<int>(roundUp(static_cast<size_t>(cout), VW));
  s.w.zeros(k * s.coutPad);
  for (size_t r = 0; r < k; ++r) std::memcpy(s.w.p + r * s.coutPad, w + r * cout, sizeof(float) * cout);
  s.b.zeros(s.coutPad);
  if (b) std::memcpy(s.b.p, b, sizeof(float) * cout);
}

std::unique_ptr<Plan> buildPlan(const int32_t* words, int64_t nwords, const float* p, int64_t np) {
  if (nwords < 6 || words[0] != MAGIC) throw PlanError("not a boundary-kd plan (bad header)");
  if (words[1] != VERSION) {
    throw PlanError("plan version " + std::to_string(words[1]) + ", engine expects " + std::to_string(VERSION));
  }
  auto plan = std::make_unique<Plan>();
  Shape cur{words[2], words[3], words[4]};
  if (cur.h < 1 || cur.w < 1 || cur.c < 1) throw PlanError("input shape must be positive");
  plan->input = cur;
  plan->inSize = cur.size();
  const int64_t nops = words[5];
  if (nops < 0 || nwords != 6 + nops * REC) {
    throw PlanError("plan has " + std::to_string(nwords) + " words for " + std::to_string(nops) + " ops");
  }
  bool rows = false;  // reached phase B (after the first dense)
  for (int64_t i = 0; i < nops; ++i) {
    const int32_t* r = words + 6 + i * REC;
    const size_t op = static_cast<size_t>(i);
    const auto fail = [&](const std::string& m) {
      throw PlanError("op " + std::to_string(i) + " (" + opName(r[0]) + "): " + m);
    };
    Step s;
    s.kind = static_cast<Kind>(r[0]);
    s.in = cur;
    switch (r[0]) {
      case FLATTEN:
        cur = Shape{1, 1, static_cast<int>(cur.size())};
        continue;
      case PAD: {
        if (r[1] < 0 || r[2] < 0 || r[3] < 0 || r[4] < 0) fail("negative padding");
        s.top = r[1];
        s.left = r[3];
        s.out = Shape{cur.h + r[1] + r[2], cur.w + r[3] + r[4], cur.c};
        break;
      }
      case CONV: {
        const int kh = r[1], kw = r[2], cin = r[3], cout = r[4], sh = r[5], sw = r[6];
        if (kh < 1 || kw < 1 || cout < 1 || sh < 1 || sw < 1) fail("kernel, filters and strides must be ≥ 1");
        if (cin != cur.c) fail("expects " + std::to_string(cin) + " input channels, gets " + std::to_string(cur.c));
        if (kh > cur.h || kw > cur.w) fail("kernel larger than its input");
        s.kh = kh, s.kw = kw, s.sh = sh, s.sw = sw, s.relu = r[7] != 0;
        s.out = Shape{(cur.h - kh) / sh + 1, (cur.w - kw) / sw + 1, cout};
        const size_t k = static_cast<size_t>(kh) * kw * cin;
        const float* w = params(p, np, r[8], static_cast<int64_t>(k) * cout, op, "conv kernel");
        const float* b = r[9] < 0 ? nullptr : params(p, np, r[9], cout, op, "conv bias");
        packMatrix(s, w, b, k, cout);
        plan->macs += static_cast<double>(s.out.h) * s.out.w * k * cout;
        break;
      }
      case AFFINE: {
        if (r[1] != cur.c) fail("has " + std::to_string(r[1]) + " channels, input has " + std::to_string(cur.c));
        s.relu = r[2] != 0;
        s.out = cur;
        const size_t cp = roundUp(static_cast<size_t>(cur.c), VW);
        s.w.zeros(cp);
        s.b.zeros(cp);
        std::memcpy(s.w.p, params(p, np, r[3], cur.c, op, "scale"), sizeof(float) * cur.c);
        std::memcpy(s.b.p, params(p, np, r[4], cur.c, op, "shift"), sizeof(float) * cur.c);
        break;
      }
      case RELU:
        s.out = cur;
        break;
      case MAXPOOL: {
        const int ph = r[1], pw = r[2], sh = r[3], sw = r[4];
        if (ph < 1 || pw < 1 || sh < 1 || sw < 1) fail("pool size and strides must be ≥ 1");
        if (ph > cur.h || pw > cur.w) fail("pool window larger than its input");
        s.kh = ph, s.kw = pw, s.sh = sh, s.sw = sw;
        s.out = Shape{(cur.h - ph) / sh + 1, (cur.w - pw) / sw + 1, cur.c};
        break;
      }
      case DENSE: {
        const int in = r[1], out = r[2];
        if (in < 1 || out < 1) fail("sizes must be ≥ 1");
        if (static_cast<size_t>(in) != cur.size()) {
          fail("expects " + std::to_string(in) + " inputs, gets " + std::to_string(cur.size()));
        }
        s.in = Shape{1, 1, in};
        s.relu = r[3] != 0;
        s.out = Shape{1, 1, out};
        const float* w = params(p, np, r[4], static_cast<int64_t>(in) * out, op, "dense kernel");
        const float* b = r[5] < 0 ? nullptr : params(p, np, r[5], out, op, "dense bias");
        packMatrix(s, w, b, static_cast<size_t>(in), out);
        plan->macs += static_cast<double>(in) * out;
        if (!rows) {
          rows = true;
          plan->split = plan->steps.size();
        }
        break;
      }
      default:
        fail("unknown op kind");
    }
    if (rows && (s.kind == PAD || s.kind == CONV || s.kind == MAXPOOL)) {
      fail("spatial op after a dense layer is not supported");
    }
    if (s.out.h < 1 || s.out.w < 1 || s.out.c < 1) fail("empty output");
    if (rows) {
      s.in = Shape{1, 1, static_cast<int>(s.in.size())};
      s.out = Shape{1, 1, static_cast<int>(s.out.size())};
    }
    cur = s.out;
    plan->steps.push_back(std::move(s));
  }
  if (!rows) plan->split = plan->steps.size();
  plan->outSize = cur.size();
  // Phase A's output (= phase B's input) and the buffer sizes.
  plan->featSize = plan->split == 0 ? plan->inSize : plan->steps[plan->split - 1].out.size();
  plan->maxRow = std::max(plan->featSize, plan->outSize);
  for (size_t i = 0; i < plan->steps.size(); ++i) {
    const size_t sz = plan->steps[i].out.size();
    if (i < plan->split) plan->maxImage = std::max(plan->maxImage, sz);
    else plan->maxRow = std::max(plan->maxRow, sz);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Ops on one image (phase A) or on `m` rows (phase B).

void runConv(const Step& s, const float* src, float* dst) {
  const Shape in = s.in, out = s.out;
  const ptrdiff_t rowIn = static_cast<ptrdiff_t>(in.w) * in.c;
  const int ow = out.w;
  const auto origin = [&](int i) {
    const int y = i / ow, x = i - y * ow;
    return src + static_cast<ptrdiff_t>(y) * s.sh * rowIn + static_cast<ptrdiff_t>(x) * s.sw * in.c;
  };
  gemmLike(out.h * out.w, origin, s.kh, rowIn, s.kw * in.c, s.w.p, out.c, s.coutPad, s.b.p, s.relu, dst);
}

void runDense(const Step& s, const float* src, ptrdiff_t srcStride, int m, float* dst) {
  const auto origin = [&](int i) { return src + i * srcStride; };
  gemmLike(m, origin, 1, 0, s.in.c, s.w.p, s.out.c, s.coutPad, s.b.p, s.relu, dst);
}

void runPad(const Step& s, const float* src, float* dst) {
  const Shape in = s.in, out = s.out;
  std::memset(dst, 0, sizeof(float) * out.size());
  const size_t run = static_cast<size_t>(in.w) * in.c;
  for (int y = 0; y < in.h; ++y) {
    std::memcpy(dst + (static_cast<size_t>(y + s.top) * out.w + s.left) * out.c, src + y * run,
                sizeof(float) * run);
  }
}

/** Max over each window, ignoring NaN (an all-NaN window gives −∞), like the tfjs cpu backend. */
void runMaxPool(const Step& s, const float* src, float* dst) {
  const Shape in = s.in, out = s.out;
  const int c = in.c;
  for (int y = 0; y < out.h; ++y) {
    for (int x = 0; x < out.w; ++x) {
      float* o = dst + (static_cast<size_t>(y) * out.w + x) * c;
      const float* first = src + (static_cast<size_t>(y) * s.sh * in.w + static_cast<size_t>(x) * s.sw) * c;
      int ch = 0;
      for (; ch + VW <= c; ch += VW) {
        vec m = vset1(-INFINITY);
        for (int dy = 0; dy < s.kh; ++dy) {
          for (int dx = 0; dx < s.kw; ++dx) {
            m = vmax(vloadu(first + (static_cast<size_t>(dy) * in.w + dx) * c + ch), m);
          }
        }
        vstoreu(o + ch, m);
      }
      for (; ch < c; ++ch) {
        float m = -INFINITY;
        for (int dy = 0; dy < s.kh; ++dy) {
          for (int dx = 0; dx < s.kw; ++dx) {
            const float v = first[(static_cast<size_t>(dy) * in.w + dx) * c + ch];
            m = v > m ? v : m;
          }
        }
        o[ch] = m;
      }
    }
  }
}

/** Elementwise ops over `count` positions of `c` channels (affine uses scale/shift per channel). */
void runAffine(const Step& s, const float* src, float* dst, size_t count) {
  const int c = s.in.c;
  for (size_t i = 0; i < count; ++i) {
    const float* x = src + i * c;
    float* y = dst + i * c;
    int ch = 0;
    for (; ch + VW <= c; ch += VW) {
      vec v = vfma(vloadu(x + ch), vload(s.w.p + ch), vload(s.b.p + ch));
      vstoreu(y + ch, s.relu ? vrelu(v) : v);
    }
    for (; ch < c; ++ch) {
      const float v = std::fma(x[ch], s.w.p[ch], s.b.p[ch]);
      y[ch] = s.relu ? (v < 0 ? 0.f : v) : v;
    }
  }
}

void runRelu(const float* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + VW <= n; i += VW) vstoreu(dst + i, vrelu(vloadu(src + i)));
  for (; i < n; ++i) dst[i] = src[i] < 0 ? 0.f : src[i];
}

/** Phase A on one image: returns the buffer holding the result (src itself if there are no steps). */
const float* runImage(const Plan& plan, Scratch& sc, const float* src) {
  const float* cur = src;
  for (size_t i = 0; i < plan.split; ++i) {
    const Step& s = plan.steps[i];
    float* dst = cur == sc.a.p ? sc.b.p : sc.a.p;
    switch (s.kind) {
      case PAD: runPad(s, cur, dst); break;
      case CONV: runConv(s, cur, dst); break;
      case AFFINE: runAffine(s, cur, dst, static_cast<size_t>(s.in.h) * s.in.w); break;
      case RELU: runRelu(cur, dst, s.in.size()); break;
      case MAXPOOL: runMaxPool(s, cur, dst); break;
      default: break;
    }
    cur = dst;
  }
  return cur;
}

/** Index of the first maximum among non-NaN values; 0 if all are NaN. */
int32_t argmax(const float* z, size_t k) {
  int32_t best = -1;
  float bv = 0;
  for (size_t j = 0; j < k; ++j) {
    const float v = z[j];
    if (v == v && (best < 0 || v > bv)) {
      bv = v;
      best = static_cast<int32_t>(j);
    }
  }
  return best < 0 ? 0 : best;
}

/** Images [begin, end) on one thread. */
void runChunk(const Plan& plan, Scratch& sc, const float* x, int64_t begin, int64_t end, float* logits,
              int32_t* labels) {
  const size_t K = plan.outSize;
  for (int64_t t = begin; t < end; t += TILE) {
    const int m = static_cast<int>(std::min<int64_t>(TILE, end - t));
    // Phase A: each image's features into a row of r0 (or read the input rows directly).
    const float* rows = x + t * static_cast<int64_t>(plan.inSize);
    ptrdiff_t stride = static_cast<ptrdiff_t>(plan.inSize);
    if (plan.split > 0) {
      for (int i = 0; i < m; ++i) {
        const float* f = runImage(plan, sc, x + (t + i) * static_cast<int64_t>(plan.inSize));
        std::memcpy(sc.r0.p + static_cast<size_t>(i) * plan.featSize, f, sizeof(float) * plan.featSize);
      }
      rows = sc.r0.p;
      stride = static_cast<ptrdiff_t>(plan.featSize);
    }
    // Phase B on the tile.
    for (size_t i = plan.split; i < plan.steps.size(); ++i) {
      const Step& s = plan.steps[i];
      float* dst = rows == sc.r0.p ? sc.r1.p : sc.r0.p;
      const size_t w = s.in.c;
      if (s.kind == DENSE) {
        runDense(s, rows, stride, m, dst);
      } else {
        // Elementwise: compact rows first if they are strided input rows (stride == width anyway).
        for (int r = 0; r < m; ++r) {
          if (s.kind == AFFINE) runAffine(s, rows + r * stride, dst + r * w, 1);
          else runRelu(rows + r * stride, dst + r * w, w);
        }
      }
      rows = dst;
      stride = static_cast<ptrdiff_t>(s.out.c);
    }
    for (int i = 0; i < m; ++i) {
      const float* z = rows + i * stride;
      if (logits) std::memcpy(logits + (t + i) * static_cast<int64_t>(K), z, sizeof(float) * K);
      if (labels) labels[t + i] = argmax(z, K);
    }
  }
}

/** Claim and run chunks of the current job with scratch `slot` until none are left. */
void work(Plan& plan, size_t slot) {
  Pool& p = plan.pool;
  Scratch& sc = *plan.scratch[slot];
  for (;;) {
    const int64_t b = p.next.fetch_add(p.chunk);
    if (b >= p.n) return;
    const int64_t e = std::min(p.n, b + p.chunk);
    try {
      runChunk(plan, sc, p.x, b, e, p.logits, p.labels);
    } catch (...) {
      std::lock_guard<std::mutex> lk(p.m);
      if (!p.error) p.error = std::current_exception();
    }
    p.done.fetch_add(e - b);
  }
}

void helperLoop(Plan* plan, int k) {
  Pool& p = plan->pool;
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lk(p.m);
  for (;;) {
    p.wake.wait(lk, [&] { return p.stop || (p.open && p.generation != seen && k < p.allowed); });
    if (p.stop) return;
    seen = p.generation;
    ++p.active;
    lk.unlock();
    work(*plan, static_cast<size_t>(k) + 1);
    lk.lock();
    --p.active;
    p.finished.notify_all();
  }
}

/** Start helpers up to `count` (fewer if the system refuses more threads). */
void ensureHelpers(Plan& plan, int count) {
  Pool& p = plan.pool;
  while (static_cast<int>(p.helpers.size()) < count) {
    try {
      p.helpers.emplace_back(helperLoop, &plan, static_cast<int>(p.helpers.size()));
    } catch (const std::system_error&) {
      return;
    }
  }
}

/** Run the whole batch on the caller's thread plus up to `helpers` pool threads. */
void runParallel(Plan& plan, const float* x, int64_t n, float* logits, int32_t* labels, int helpers) {
  Pool& p = plan.pool;
  // Chunks: about four per thread for balance, at most one phase-B tile each.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(TILE, (n + 4 * (helpers + 1) - 1) / (4 * (helpers + 1))));
  const int64_t chunks = (n + chunk - 1) / chunk;
  helpers = static_cast<int>(std::min<int64_t>(helpers, chunks - 1));
  if (helpers > 0) ensureHelpers(plan, helpers);
  helpers = std::min(helpers, static_cast<int>(p.helpers.size()));
  {
    std::lock_guard<std::mutex> lk(p.m);
    p.x = x;
    p.n = n;
    p.chunk = chunk;
    p.logits = logits;
    p.labels = labels;
    p.next.store(0);
    p.done.store(0);
    p.error = nullptr;
    p.allowed = helpers;
    p.open = true;
    ++p.generation;
  }
  if (helpers > 0) p.wake.notify_all();
  work(plan, 0);
  std::unique_lock<std::mutex> lk(p.m);
  p.finished.wait(lk, [&] { return p.done.load() >= n; });
  p.open = false;
  p.finished.wait(lk, [&] { return p.active == 0; });
  if (p.error) {
    std::exception_ptr e = p.error;
    p.error = nullptr;
    std::rethrow_exception(e);
  }
}

void ensureScratch(Plan& plan, size_t threads) {
  while (plan.scratch.size() < threads) plan.scratch.push_back(std::make_unique<Scratch>());
  for (size_t i = 0; i < threads; ++i) {
    Scratch& s = *plan.scratch[i];
    s.a.reserve(plan.maxImage);
    s.b.reserve(plan.maxImage);
    s.r0.reserve(static_cast<size_t>(TILE) * plan.maxRow);
    s.r1.reserve(static_cast<size_t>(TILE) * plan.maxRow);
  }
}

}  // namespace

extern "C" {

void* bkd_plan_create(const int32_t* words, int64_t nwords, const float* params, int64_t nparams, char* err,
                      int32_t errlen) {
  try {
    if (!words || (!params && nparams > 0)) throw PlanError("null plan arrays");
    return buildPlan(words, nwords, params, nparams).release();
  } catch (const std::bad_alloc&) {
    setErr(err, errlen, "out of memory while packing the plan");
  } catch (const std::exception& e) {
    setErr(err, errlen, e.what());
  }
  return nullptr;
}

int64_t bkd_plan_info(void* handle, int32_t what) {
  const Plan* plan = static_cast<const Plan*>(handle);
  if (!plan) return -1;
  switch (what) {
    case 0: return static_cast<int64_t>(plan->inSize);
    case 1: return static_cast<int64_t>(plan->outSize);
    case 2: return static_cast<int64_t>(plan->macs);
    default: return -1;
  }
}

int32_t bkd_forward(void* handle, const float* x, int64_t n, float* logits, int32_t* labels, int32_t threads) {
  Plan* plan = static_cast<Plan*>(handle);
  if (!plan) return -1;
  std::lock_guard<std::mutex> lock(plan->mu);
  try {
    if (n < 0 || (n > 0 && !x)) throw PlanError("bad input (null or negative count)");
    if (n == 0) return 0;
    const int t = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({threads, 256, n})));
    ensureScratch(*plan, static_cast<size_t>(t));
    runParallel(*plan, x, n, logits, labels, t - 1);
    return 0;
  } catch (const std::bad_alloc&) {
    plan->error = "out of memory for scratch buffers";
  } catch (const std::exception& e) {
    plan->error = e.what();
  }
  return -1;
}

int32_t bkd_last_error(void* handle, char* buf, int32_t len) {
  const Plan* plan = static_cast<const Plan*>(handle);
  if (!plan) return -1;
  setErr(buf, len, plan->error);
  return static_cast<int32_t>(plan->error.size());
}

void bkd_plan_free(void* handle) { delete static_cast<Plan*>(handle); }

int32_t bkd_isa(char* buf, int32_t len) {
  const std::string s = std::string(ISA) + " x" + std::to_string(VW);
  setErr(buf, len, s);
  return static_cast<int32_t>(s.size());
}

}  // extern "C"
