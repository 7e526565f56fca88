/**
 * Small-dataset Vision Transformer (CAKE's ViT-8 / ViT-4) as tfjs-layers models with custom layers.
 *
 *   input [h, w, c] → {@link Patchify} (p×p patches, flattened in (row, col, channel) order)
 *   → dense dim (patch embedding) → {@link TokenEmbedding} (prepend a learned class token, add learned
 *   position embeddings) → dropout
 *   → depth × [ x + MHSA(LN(x)) ; x + MLP(LN(x)) ]        (pre-norm)
 *   → LN → pool (class token via {@link TakeToken}, or mean over tokens) → dense K (logits)
 *
 * Defaults (the table): patch 4, dim 64, depth 8 (vit8) / 4 (vit4), heads 8, head dim 64 (inner width 512,
 * projected back to 64), MLP dim 64, class-token pooling, dropout 0.
 * {@link MultiHeadSelfAttention}: q, k, v = x·Wq, x·Wk, x·Wv (no bias), softmax(q kᵀ/√dh) v over heads by
 * batched matmul, then ·Wo + bo.
 * MLP: dense mlpDim with exact GELU (tfjs' erf-based `gelu`; erf kernels exist on cpu and wasm) → dense dim.
 * LayerNorm: tfjs-layers' built-in `layerNormalization` (ε = 1e-5, γ = 1, β = 0).
 * Init: PyTorch-default dense/qkv init; class token and position embeddings truncated N(0, 0.02²).
 * Options (ModelSpec.options): patch, dim, depth, heads, headDim, mlpDim, pool (0 = class token,
 * 1 = mean), dropout.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, SeedStream, torchBias, torchKernel, truncNormal } from "./init.ts";
import { apply } from "./layers.ts";

type LayerArgs = ConstructorParameters<typeof tfl.layers.Layer>[0];
type Shape = (number | null)[];

/** ViT hyper-parameters. */
export interface VitOptions {
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  headDim: number;
  mlpDim: number;
  /** 0 = class token, 1 = mean over tokens. */
  pool: number;
  dropout: number;
}

/** Defaults shared by vit8 and vit4 (depth differs). */
export const VIT_DEFAULTS: VitOptions = {
  patch: 4,
  dim: 64,
  depth: 8,
  heads: 8,
  headDim: 64,
  mlpDim: 64,
  pool: 0,
  dropout: 0,
};

/** Cut [b, h, w, c] images into non-overlapping p×p patches: [b, (h/p)(w/p), p·p·c]. No weights. */
export class Patchify extends tfl.layers.Layer {
  /** Registered class name. */
  static className = "BkdPatchify";
  readonly patch: number;

  /** `patch` is the patch side p; h and w must be multiples of p. */
  constructor(args: LayerArgs & { patch: number }) {
    super(args);
    this.patch = args.patch;
  }

  override computeOutputShape(s: Shape): Shape {
    const p = this.patch;
    const [b, h, w, c] = s as number[];
    return [b, (h / p) * (w / p), p * p * c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [b, h, w, c] = x.shape;
      const p = this.patch;
      if (h % p !== 0 || w % p !== 0) throw new Error(`Patchify: ${h}×${w} is not divisible by patch ${p}`);
      const rows = tf.reshape(x, [b * (h / p), p, w / p, p * c]);
      return tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b, (h / p) * (w / p), p * p * c]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), patch: this.patch };
  }
}

/** Prepend a learned class token (optional) and add learned position embeddings to [b, n, d] tokens. */
export class TokenEmbedding extends tfl.layers.Layer {
  /** Registered class name. */
  static className = "BkdTokenEmbedding";
  readonly classToken: boolean;
  readonly seed: number;
  #cls?: tfl.LayerVariable;
  #pos?: tfl.LayerVariable;

  /** `classToken` adds one token in front; `seed` seeds the N(0, 0.02²) inits. */
  constructor(args: LayerArgs & { classToken: boolean; seed: number }) {
    super(args);
    this.classToken = args.classToken;
    this.seed = args.seed;
  }

  override build(s: Shape | Shape[]): void {
    const [, n, d] = s as number[];
    const seeds = new SeedStream(this.seed);
    const clsInit = truncNormal(0.02, seeds), posInit = truncNormal(0.02, seeds);
    if (this.classToken) this.#cls = this.addWeight("cls", [1, 1, d], "float32", clsInit);
    this.#pos = this.addWeight("pos", [1, n + (this.classToken ? 1 : 0), d], "float32", posInit);
    this.built = true;
  }

  override computeOutputShape(s: Shape): Shape {
    const [b, n, d] = s;
    return [b, (n as number) + (this.classToken ? 1 : 0), d];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = Array.isArray(inputs) ? inputs[0] : inputs;
      if (this.#cls) x = tf.concat([tf.tile(this.#cls.read(), [x.shape[0], 1, 1]), x], 1);
      return tf.add(x, this.#pos!.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), classToken: this.classToken, seed: this.seed };
  }
}

/** Multi-head self-attention on [b, n, d] tokens, output [b, n, d]. */
export class MultiHeadSelfAttention extends tfl.layers.Layer {
  /** Registered class name. */
  static className = "BkdMultiHeadSelfAttention";
  readonly heads: number;
  readonly headDim: number;
  readonly seed: number;
  #wq?: tfl.LayerVariable;
  #wk?: tfl.LayerVariable;
  #wv?: tfl.LayerVariable;
  #wo?: tfl.LayerVariable;
  #bo?: tfl.LayerVariable;

  /** `heads` × `headDim` is the inner width; `seed` seeds the PyTorch-default inits. */
  constructor(args: LayerArgs & { heads: number; headDim: number; seed: number }) {
    super(args);
    this.heads = args.heads;
    this.headDim = args.headDim;
    this.seed = args.seed;
  }

  override build(s: Shape | Shape[]): void {
    const d = (s as number[])[2];
    const inner = this.heads * this.headDim;
    const seeds = new SeedStream(this.seed);
    this.#wq = this.addWeight("wq", [d, inner], "float32", torchKernel(seeds));
    this.#wk = this.addWeight("wk", [d, inner], "float32", torchKernel(seeds));
    this.#wv = this.addWeight("wv", [d, inner], "float32", torchKernel(seeds));
    this.#wo = this.addWeight("wo", [inner, d], "float32", torchKernel(seeds));
    this.#bo = this.addWeight("bo", [d], "float32", torchBias(inner, seeds));
    this.built = true;
  }

  override computeOutputShape(s: Shape): Shape {
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [b, n, d] = x.shape;
      const h = this.heads, dh = this.headDim;
      const flat = tf.reshape(x, [b * n, d]);
      const split = (w: tfl.LayerVariable) =>
        tf.reshape(tf.transpose(tf.reshape(tf.matMul(flat, w.read()), [b, n, h, dh]), [0, 2, 1, 3]), [
          b * h,
          n,
          dh,
        ]);
      const q = split(this.#wq!), k = split(this.#wk!), v = split(this.#wv!);
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
      const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, v), [b, h, n, dh]), [0, 2, 1, 3]), [
        b * n,
        h * dh,
      ]);
      return tf.reshape(tf.add(tf.matMul(o, this.#wo!.read()), this.#bo!.read()), [b, n, d]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads, headDim: this.headDim, seed: this.seed };
  }
}

/** Select token `index` of [b, n, d] tokens: [b, d]. No weights. */
export class TakeToken extends tfl.layers.Layer {
  /** Registered class name. */
  static className = "BkdTakeToken";
  readonly index: number;

  /** `index` is the token to keep (0 = class token). */
  constructor(args: LayerArgs & { index: number }) {
    super(args);
    this.index = args.index;
  }

  override computeOutputShape(s: Shape): Shape {
    return [s[0], s[2]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [b, , d] = x.shape;
      return tf.reshape(tf.slice(x, [0, this.index, 0], [b, 1, d]), [b, d]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}

tf.serialization.registerClass(Patchify);
tf.serialization.registerClass(TokenEmbedding);
tf.serialization.registerClass(MultiHeadSelfAttention);
tf.serialization.registerClass(TakeToken);

/** Build a ViT on `inputShape` = [h, w, c] (h, w multiples of `patch`) with `numClasses` logits. */
export function vit(
  inputShape: number[],
  numClasses: number,
  o: VitOptions,
  seeds: SeedStream,
  name = `vit${o.depth}`,
): tfl.LayersModel {
  const [hh, ww, c] = inputShape;
  const p = o.patch;
  if (hh % p !== 0 || ww % p !== 0) {
    throw new Error(`${name}: input ${hh}×${ww} is not a multiple of patch ${p}`);
  }
  const ln = (n: string) => tfl.layers.layerNormalization({ axis: -1, epsilon: 1e-5, name: n });
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = apply(new Patchify({ patch: p, name: "patchify" }), input);
  x = apply(tfl.layers.dense({ units: o.dim, ...denseInit(p * p * c, seeds), name: "patch_embed" }), x);
  x = apply(new TokenEmbedding({ classToken: o.pool === 0, seed: seeds.next(), name: "tokens" }), x);
  if (o.dropout > 0) x = apply(tfl.layers.dropout({ rate: o.dropout, name: "embed_dropout" }), x);
  for (let i = 1; i <= o.depth; i++) {
    let y = apply(ln(`b${i}_ln1`), x);
    y = apply(
      new MultiHeadSelfAttention({
        heads: o.heads,
        headDim: o.headDim,
        seed: seeds.next(),
        name: `b${i}_attn`,
      }),
      y,
    );
    if (o.dropout > 0) y = apply(tfl.layers.dropout({ rate: o.dropout, name: `b${i}_attn_dropout` }), y);
    x = apply(tfl.layers.add({ name: `b${i}_add1` }), [x, y]);
    y = apply(ln(`b${i}_ln2`), x);
    y = apply(
      tfl.layers.dense({
        units: o.mlpDim,
        activation: "gelu",
        ...denseInit(o.dim, seeds),
        name: `b${i}_mlp1`,
      }),
      y,
    );
    if (o.dropout > 0) y = apply(tfl.layers.dropout({ rate: o.dropout, name: `b${i}_mlp_dropout` }), y);
    y = apply(tfl.layers.dense({ units: o.dim, ...denseInit(o.mlpDim, seeds), name: `b${i}_mlp2` }), y);
    x = apply(tfl.layers.add({ name: `b${i}_add2` }), [x, y]);
  }
  x = apply(ln("final_ln"), x);
  x = o.pool === 0
    ? apply(new TakeToken({ index: 0, name: "cls" }), x)
    : apply(tfl.layers.globalAveragePooling1d({ name: "mean_pool" }), x);
  x = apply(tfl.layers.dense({ units: numClasses, ...denseInit(o.dim, seeds), name: "head" }), x);
  return tfl.model({ inputs: input, outputs: x, name });
}
