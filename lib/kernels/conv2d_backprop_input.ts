/**
 * `Conv2DBackpropInput` for the wasm backend, replacing the backend's direct loop. Two formulations:
 *
 * - "gemm" (default, fastest measured: 1.8× the "conv" one on LeNet's conv2): dX = col2im(dY·Wᵀ),
 *   one XNNPACK GEMM and a JS scatter-add; any stride and padding.
 * - "conv": one XNNPACK convolution dX = conv(dY↑s, flip(W)ᵀ), where flip(W)ᵀ[a,b,o,i] =
 *   W[kh−1−a, kw−1−b, i, o], dY↑s is dY with s−1 zeros between neighbours (only built when the stride
 *   is > 1), stride 1, padding kh−1−padTop on top / kw−1−padLeft on the left (bottom/right make the
 *   output exactly the input size); padding wider than the filter falls back to "gemm".
 *
 * NCHW goes to the backend's own kernel.
 */
import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { geometryOf, imagesPerChunk } from "./conv2d_backprop_filter.ts";
import { col2imAdd, type ConvGeometry } from "./im2col.ts";
import { callWasm, free, heapF32, reshapeInfo, transposeWasm, type WasmBackendLike } from "./kernel_call.ts";

let fallback: KernelConfig | undefined;

/** Remember the backend's own kernel, used for the layouts the fast path does not cover. */
export function setConv2dBackpropInputFallback(k: KernelConfig | undefined): void {
  fallback = k;
}

/** W[kh,kw,ci,co] → W'[kh,kw,co,ci] flipped in both spatial axes, on the wasm heap. */
function flipFilter(backend: WasmBackendLike, filter: TensorInfo): TensorInfo {
  const [kh, kw, ci, co] = filter.shape;
  const out = backend.makeOutput([kh, kw, co, ci], "float32");
  const src = heapF32(backend, filter), dst = heapF32(backend, out);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const s0 = ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      const d0 = (a * kw + b) * co * ci;
      for (let i = 0; i < ci; i++) {
        const si = s0 + i * co;
        for (let o = 0; o < co; o++) dst[d0 + o * ci + i] = src[si + o];
      }
    }
  }
  return out;
}

/** dY[n,oh,ow,c] → [n,(oh−1)sh+1,(ow−1)sw+1,c] with zeros between the original entries. */
function dilate(backend: WasmBackendLike, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  const [n, oh, ow, c] = dy.shape;
  const dh = (oh - 1) * sh + 1, dw = (ow - 1) * sw + 1;
  const out = backend.makeOutput([n, dh, dw, c], "float32");
  const src = heapF32(backend, dy), dst = heapF32(backend, out);
  dst.fill(0);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const s = ((b * oh + y) * ow + x) * c;
        dst.set(src.subarray(s, s + c), ((b * dh + y * sh) * dw + x * sw) * c);
      }
    }
  }
  return out;
}

/**
 * dX = col2im(dY·Wᵀ): one GEMM ([R, co] × [co, K]) on XNNPACK, then a JS scatter-add of the R×K
 * result into the image, in chunks of images. Handles any stride and padding.
 */
function viaGemm(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo {
  const co = filter.shape[3];
  const K = g.kh * g.kw * g.ci;
  const pix = g.oh * g.ow;
  const w2 = reshapeInfo(backend, filter, [K, co]);
  const wt = transposeWasm(backend, w2, [1, 0]); // [co, K]
  free(backend, w2);
  const dx = backend.makeOutput([g.n, g.h, g.w, g.ci], "float32");
  heapF32(backend, dx).fill(0);
  const per = imagesPerChunk(g);
  const img = g.h * g.w * g.ci;
  for (let b0 = 0; b0 < g.n; b0 += per) {
    const nb = Math.min(per, g.n - b0);
    const R = nb * pix;
    let dyc: TensorInfo;
    if (nb === g.n) dyc = reshapeInfo(backend, dy, [R, co]);
    else {
      dyc = backend.makeOutput([R, co], "float32");
      heapF32(backend, dyc).set(heapF32(backend, dy).subarray(b0 * pix * co, (b0 * pix + R) * co));
    }
    const cols = callWasm("BatchMatMul", backend, { a: dyc, b: wt }, {
      transposeA: false,
      transposeB: false,
    });
    col2imAdd(
      heapF32(backend, cols),
      { ...g, n: nb },
      heapF32(backend, dx).subarray(b0 * img, (b0 + nb) * img),
    );
    free(backend, dyc, cols);
  }
  free(backend, wt);
  return dx;
}

/** Kernel function: inputs {dy, filter}, attrs {strides, pad, dataFormat, dimRoundingMode, inputShape}. */
export function conv2dBackpropInputWasm(
  args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: unknown; attrs: Conv2DBackpropInputAttrs },
): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs;
  if (dataFormat === "NCHW") {
    if (!fallback) throw new Error("wasm Conv2DBackpropInput: NCHW needs the backend's own kernel");
    return fallback.kernelFunc(args as never) as TensorInfo;
  }
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g = geometryOf(info);
  if (mode === "gemm") return viaGemm(backend, dy, filter, g);
  const { h, w, kh, kw, sh, sw, oh, ow } = g;
  const top = kh - 1 - g.top, left = kw - 1 - g.left;
  const dh = (oh - 1) * sh + 1, dw = (ow - 1) * sw + 1;
  const bottom = h + kh - 1 - dh - top, right = w + kw - 1 - dw - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return viaGemm(backend, dy, filter, g);
  const temps: TensorInfo[] = [];
  const wf = flipFilter(backend, filter);
  temps.push(wf);
  let d = dy;
  if (sh > 1 || sw > 1) {
    d = dilate(backend, dy, sh, sw);
    temps.push(d);
  }
  const dx = callWasm("Conv2D", backend, { x: d, filter: wf }, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: undefined,
  });
  free(backend, ...temps);
  return dx;
}

/** Which formulation to use: "gemm" (default, fastest measured) or "conv" (flipped-filter convolution). */
let mode: "gemm" | "conv" = "gemm";

/** Choose the formulation of dX (for benchmarks and tests; both are exact up to float rounding). */
export function setConv2dBackpropInputMode(m: "gemm" | "conv"): void {
  mode = m;
}

/** Registration record for tfjs-core's kernel registry (setup of the replaced kernel is kept). */
export function conv2dBackpropInputConfig(original: KernelConfig | undefined): KernelConfig {
  return {
    kernelName: Conv2DBackpropInput,
    backendName: "wasm",
    setupFunc: original?.setupFunc,
    kernelFunc: conv2dBackpropInputWasm as unknown as KernelConfig["kernelFunc"],
  };
}
