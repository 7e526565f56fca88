/**
 * Conditional-generator baseline of the CAKE paper's Figure 1.
 *
 * A small MLP generator x = G(z, onehot(y)) is trained, through the same `logits+grad` oracle CAKE
 * uses, so that the teacher classifies G(z, y) as y (cross entropy). Each step draws a batch of codes
 * z and, per code, a pair of distinct classes that share it (the layout of the paper's notebook). The
 * teacher's gradient d CE / d x comes from the oracle; it is pushed through G locally with the
 * surrogate Σ G(z, y)·stopgrad(dx), whose parameter gradient is exactly Jᵀ·dx.
 *
 * An optional diversity weight adds a mode-seeking term (−mean|G(z,y) − G(z',y)| / mean|z − z'|)
 * computed locally. Without it the generator typically collapses each class to a small cluster far
 * from the boundary — which is the point the figure makes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LogitsGradOracle } from "../oracle/oracle.ts";
import { createProgress } from "../show/progress.ts";
import { Rng } from "../util/rng.ts";
import { argmaxRows, type SyntheticSet } from "./types.ts";

/** Options of the conditional generator (defaults: the paper's notebook, fewer steps). */
export interface GeneratorOptions {
  /** Dimension of the code z. Default 5. */
  zDim: number;
  /** Code distribution: U[0,1)^zDim (reference) or N(0, I). Default "uniform". */
  zDist: "uniform" | "normal";
  /** Hidden units per layer. Default 10. */
  hidden: number;
  /** Hidden layers (ReLU). Default 2. */
  depth: number;
  /** Adam steps. Default 3000 (the notebook used 15,000). */
  steps: number;
  /** Codes per step; every code is decoded for 2 distinct classes, so 2× this many teacher images. Default 64. */
  batchSize: number;
  /** Adam learning rate. Default 1e-3. */
  lr: number;
  /** Weight of the mode-seeking diversity term. Default 0 (off, as in the notebook). */
  diversity: number;
  /** Samples in the produced transfer set. Default 500. */
  numSamples: number;
  /** Seed of the generator's weights, codes and classes. */
  seed: number;
  /** Ledger phase of generator training; the final labelling is `${phase}.final`. */
  phase: string;
  /** Show a progress bar (default true); a string sets its label. */
  progress: boolean | string;
}

/** Defaults of {@link GeneratorOptions}. */
export const GENERATOR_DEFAULTS: GeneratorOptions = {
  zDim: 5,
  zDist: "uniform",
  hidden: 10,
  depth: 2,
  steps: 3000,
  batchSize: 64,
  lr: 1e-3,
  diversity: 0,
  numSamples: 500,
  seed: 0,
  phase: "generator.train",
  progress: true,
};

/** A generator's transfer set plus its training curve. */
export interface GeneratorSet extends SyntheticSet {
  /** Resolved options. */
  options: GeneratorOptions;
  /** Mean teacher CE of the generated batch, every 100 steps (and the last). */
  history: { step: number; ce: number }[];
  /** Wall-clock seconds. */
  seconds: number;
}

/** A trained conditional generator G(z, y). */
export interface ConditionalGenerator {
  /** Decode codes z (n×zDim) with classes y (length n) to inputs (n×dim). */
  decode(z: Float32Array, y: Int32Array): Float32Array;
  /** Draw n samples, classes cycling 0, 1, …, K−1; deterministic given `seed`. */
  sample(n: number, seed: number): { x: Float32Array; y: Int32Array };
  /** Free the weights. */
  dispose(): void;
}

/**
 * Train a conditional generator against the teacher behind `oracle` and return it with the transfer
 * set it makes (`numSamples` points, soft targets = teacher logits). Never touches real data.
 */
export async function synthesizeWithGenerator(
  oracle: LogitsGradOracle,
  input: Partial<GeneratorOptions> = {},
): Promise<GeneratorSet & { generator: ConditionalGenerator }> {
  const o: GeneratorOptions = { ...GENERATOR_DEFAULTS, ...definedOnly(input) };
  const k = oracle.numClasses;
  if (k < 2) throw new Error("generator baseline needs at least 2 classes");
  const inputShape = oracle.inputShape.slice();
  const dim = inputShape.reduce((a, b) => a * b, 1);
  const t0 = performance.now();
  const rng = new Rng(o.seed);
  const net = createMlp([o.zDim + k, ...Array(o.depth).fill(o.hidden), dim], rng.fork());
  const drawRng = rng.fork();
  const drawZ = (n: number, r: Rng) => {
    const z = new Float32Array(n * o.zDim);
    return o.zDist === "uniform" ? r.fillUniform(z) : r.fillNormal(z);
  };
  const decodeT = (z: tf.Tensor2D, y: tf.Tensor1D) =>
    tf.reshape(net.apply(tf.concat([z, tf.cast(tf.oneHot(y, k), "float32")], 1)), [-1, ...inputShape]);

  const opt = tf.train.adam(o.lr);
  const history: { step: number; ce: number }[] = [];
  const label = typeof o.progress === "string" ? o.progress : "conditional generator";
  const bar = o.progress === false ? undefined : createProgress({ label, total: o.steps, unit: "step" });
  for (let step = 0; step < o.steps; step++) {
    const b = o.batchSize;
    const zh = drawZ(b, drawRng);
    const yh = new Int32Array(2 * b);
    for (let i = 0; i < b; i++) {
      const p = drawRng.permutation(k);
      yh[i] = p[0];
      yh[b + i] = p[1];
    }
    const zz = new Float32Array(2 * b * o.zDim);
    zz.set(zh);
    zz.set(zh, b * o.zDim);
    const z = tf.tensor2d(zz, [2 * b, o.zDim]);
    const y = tf.tensor1d(yh, "int32");
    const x = tf.tidy(() => decodeT(z, y));
    const ceOf = (logits: tf.Tensor2D) =>
      tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(y, k)), 1))) as tf.Scalar);
    const { loss, logits, dx } = await oracle.valueAndGrad(x, ceOf, o.phase);
    logits.dispose();
    x.dispose();
    const z2 = o.diversity !== 0 ? tf.tensor2d(drawZ(2 * b, drawRng), [2 * b, o.zDim]) : undefined;
    const { grads, value } = tf.variableGrads(() => {
      let surrogate = tf.sum(tf.mul(decodeT(z, y), dx)) as tf.Scalar;
      if (z2) {
        const gap = tf.mean(tf.abs(tf.sub(decodeT(z, y), decodeT(z2, y))));
        const zgap = tf.mean(tf.abs(tf.sub(z, z2)));
        surrogate = tf.sub(surrogate, tf.mul(tf.div(gap, zgap), o.diversity)) as tf.Scalar;
      }
      return surrogate;
    }, net.variables);
    opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
    tf.dispose([z, y, dx, value, z2, ...Object.values(grads)]);
    if (step % 100 === 0 || step === o.steps - 1) history.push({ step, ce: loss });
    bar?.update(step + 1, `CE ${loss.toFixed(3)}`);
  }
  opt.dispose();

  const generator: ConditionalGenerator = {
    decode(z, y) {
      return tf.tidy(() => {
        const n = y.length;
        return decodeT(tf.tensor2d(z, [n, o.zDim]), tf.tensor1d(y, "int32")).dataSync()
          .slice() as Float32Array;
      });
    },
    sample(n, seed) {
      const r = new Rng(seed);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) y[i] = i % k;
      return { x: this.decode(drawZ(n, r), y), y };
    },
    dispose() {
      net.dispose();
    },
  };
  const { x, y } = generator.sample(o.numSamples, rng.nextU32());
  const xt = tf.tensor(x, [o.numSamples, ...inputShape]);
  const zt = await oracle.logits(xt, `${o.phase}.final`);
  const targets = zt.dataSync().slice() as Float32Array;
  tf.dispose([xt, zt]);
  bar?.done(`final CE ${history.at(-1)?.ce.toFixed(3) ?? "-"}`);
  return {
    method: "generator",
    x,
    shape: [o.numSamples, ...inputShape],
    targets,
    numClasses: k,
    targetClass: y,
    teacherClass: argmaxRows(targets, k),
    ledger: oracle.ledger.snapshot(),
    options: o,
    history,
    seconds: (performance.now() - t0) / 1000,
    generator,
  };
}

/** A plain MLP on tf.Variables (ReLU between layers, linear output), PyTorch-style uniform init. */
interface Mlp {
  variables: tf.Variable[];
  apply(x: tf.Tensor): tf.Tensor2D;
  dispose(): void;
}

function createMlp(sizes: number[], rng: Rng): Mlp {
  const variables: tf.Variable[] = [];
  const layers: { w: tf.Variable; b: tf.Variable }[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const bound = 1 / Math.sqrt(sizes[i]);
    const init = (n: number, shape: number[]) => {
      const t = tf.tensor(rng.fillUniform(new Float32Array(n), -bound, bound), shape);
      const v = tf.variable(t);
      t.dispose();
      return v;
    };
    const w = init(sizes[i] * sizes[i + 1], [sizes[i], sizes[i + 1]]);
    const b = init(sizes[i + 1], [sizes[i + 1]]);
    layers.push({ w, b });
    variables.push(w, b);
  }
  return {
    variables,
    apply(x) {
      let h = x as tf.Tensor2D;
      layers.forEach(({ w, b }, i) => {
        h = tf.add(tf.matMul(h, w), b);
        if (i + 1 < layers.length) h = tf.relu(h);
      });
      return h;
    },
    dispose() {
      tf.dispose(variables);
    },
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
