/**
 * `Conv2DBackpropFilter` for the wasm backend (the backend ships without it).
 *
 * dW[a,c,i,o] = Σ_{b,y,x} X[b, y·sh + a − top, x·sw + c − left, i] · dY[b,y,x,o], i.e. dW = Pᵀ·dY with
 * P the patch matrix of X (rows = output pixels, columns = filter taps). Pᵀ is written in JS on the
 * wasm heap from a channel-planar copy of X, then one GEMM runs on the backend's XNNPACK matmul.
 * (The same product as one dilated convolution — X with batch and channels swapped, dY as the
 * filter — measured 1.7× slower in a LeNet step: XNNPACK handles a 24×24 "filter" poorly.) Large
 * batches are cut into chunks of images so that Pᵀ stays ≤ 16 MB; partial dW are summed.
 */
import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { type ConvGeometry, im2colTransposed } from "./im2col.ts";
import { callWasm, free, heapF32, transposeWasm, type WasmBackendLike } from "./kernel_call.ts";

/** Most floats one chunk's patch matrix may hold (16 MB by default). */
let chunkFloats = 1 << 22;

/** Change the chunk size of the patch matrices (tests use tiny chunks to exercise the chunked path). */
export function setIm2colChunkFloats(n: number): void {
  chunkFloats = Math.max(1, Math.floor(n));
}

/** Convolution geometry of a Conv2D / its gradients from tfjs's conv info. */
export function geometryOf(info: backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/** Images per chunk so that a chunk's R×K patch matrix holds at most `chunkFloats` floats. */
export function imagesPerChunk(g: ConvGeometry): number {
  const perImage = g.oh * g.ow * g.kh * g.kw * g.ci;
  return Math.max(1, Math.min(g.n, Math.floor(chunkFloats / perImage)));
}

/** Kernel function: inputs {x, dy}, attrs {strides, pad, dataFormat, dimRoundingMode, filterShape}. */
export function conv2dBackpropFilterWasm(
  args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: unknown; attrs: Conv2DBackpropFilterAttrs },
): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs;
  if (dataFormat === "NCHW") throw new Error("wasm Conv2DBackpropFilter supports NHWC only");
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g = geometryOf(info);
  const co = info.outChannels;
  const K = g.kh * g.kw * g.ci;
  const per = imagesPerChunk(g);
  const pix = g.oh * g.ow;
  // Channel-planar copy of x ([ci, n, h, w]) so that patch rows are contiguous reads.
  const planar = g.ci === 1 ? x : transposeWasm(backend, x, [3, 0, 1, 2]);
  let total: TensorInfo | undefined;
  for (let b0 = 0; b0 < g.n; b0 += per) {
    const nb = Math.min(per, g.n - b0);
    const R = nb * pix;
    const pt = backend.makeOutput([K, R], "float32");
    im2colTransposed(heapF32(backend, planar), g.n, b0, { ...g, n: nb }, heapF32(backend, pt));
    let dyc: TensorInfo;
    if (nb === g.n) {
      backend.incRef(dy.dataId);
      dyc = { dataId: dy.dataId, shape: [R, co], dtype: "float32" };
    } else {
      dyc = backend.makeOutput([R, co], "float32");
      heapF32(backend, dyc).set(heapF32(backend, dy).subarray(b0 * pix * co, (b0 * pix + R) * co));
    }
    const part = callWasm("BatchMatMul", backend, { a: pt, b: dyc }, {
      transposeA: false,
      transposeB: false,
    });
    free(backend, pt, dyc);
    if (!total) total = part;
    else {
      const acc = heapF32(backend, total), add = heapF32(backend, part);
      for (let k = 0; k < acc.length; k++) acc[k] += add[k];
      free(backend, part);
    }
  }
  if (planar !== x) free(backend, planar);
  return { dataId: total!.dataId, shape: [g.kh, g.kw, g.ci, co], dtype: "float32" };
}

/** Registration record for tfjs-core's kernel registry. */
export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: "wasm",
  kernelFunc: conv2dBackpropFilterWasm as unknown as KernelConfig["kernelFunc"],
};
