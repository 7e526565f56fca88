/**
 * Native training engine (first piece: DB3 LeNet-5 loss and gradients, lib/native/lenet_grads.ts) against
 * the tfjs cpu backend through the kit's own training path (`Replica.gradients`, `optimizerStep`):
 * - per-layer gradients: for every weight tensor, max |native − tfjs| ≤ 1e-4 · max |tfjs gradient| + 1e-7
 *   (float32 sums in a different order; observed: 6e-8 … 1.5e-6 relative), on several input shapes
 *   (28×28×1, 30×30×2 with odd pooled sizes, 32×32×3), widths and batch sizes (odd, split over threads);
 * - a short Adam run and a short SGD-with-momentum run from the same initial weights on the same batches
 *   give the same loss at every step within 1e-4 relative;
 * - the kit's other losses (soft CE, DB3 KD with and without the hard term, standard KD) through
 *   `lossGrads` + `nativeLossWeights`: loss within 1e-5 relative, gradients within the same bound, on a
 *   batch split over 2 threads;
 * - the same call twice gives bit-identical gradients (determinism);
 * - clear errors: a non-LeNet model, a bad label, wrong array sizes, and an unusable compiler.
 * Needs a C++ compiler (as tests/native_test.ts); BKD_NATIVE=0 skips it on purpose.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert";
import { initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { nativeEnabled } from "../lib/native/build.ts";
import { leNetDims, NativeLeNetGrads, nativeLossWeights } from "../lib/native/lenet_grads.ts";
import type { LossSpec } from "../lib/learn/losses.ts";
import { gatherBatch, Replica } from "../lib/parallel/replica.ts";
import { createOptimizerState, type OptimizerConfig, optimizerStep } from "../lib/learn/optim.ts";
import { Rng } from "../lib/util/rng.ts";

const opts = { ignore: !nativeEnabled(), sanitizeResources: false, sanitizeOps: false };

function data(spec: ModelSpec, n: number, seed: number) {
  const rng = new Rng(seed);
  const dim = spec.inputShape.reduce((a, b) => a * b, 1);
  return {
    x: rng.fillUniform(new Float32Array(n * dim)),
    shape: [n, ...spec.inputShape],
    y: Int32Array.from({ length: n }, () => rng.int(spec.numClasses)),
  };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) out.set(p, off), off += p.length;
  return out;
}

/** Split a flat parameter/gradient array into the model's weight tensors. */
function split(flat: Float32Array, sizes: number[]): Float32Array[] {
  let off = 0;
  return sizes.map((s) => flat.subarray(off, off += s));
}

async function engineFor(replica: Replica, threads: number): Promise<NativeLeNetGrads> {
  const dims = leNetDims(replica.model);
  if (typeof dims === "string") throw new Error(dims);
  const r = await NativeLeNetGrads.tryCreate(dims, { threads });
  if (!r.ok) throw new Error(`native engine unavailable: ${r.reason}`);
  return r.engine;
}

const CASES: { spec: ModelSpec; n: number; threads: number }[] = [
  { spec: { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 }, n: 7, threads: 2 },
  { spec: { name: "db3-lenet5-half", inputShape: [30, 30, 2], numClasses: 5 }, n: 5, threads: 3 },
  { spec: { name: "db3-lenet5", inputShape: [32, 32, 3], numClasses: 10 }, n: 4, threads: 1 },
];

Deno.test({
  name: "native LeNet-5 gradients match the tfjs cpu backend layer by layer",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    for (const [c, { spec, n, threads }] of CASES.entries()) {
      const model = buildModel(spec, 10 + c);
      const rep = new Replica(model);
      rep.configure({ kind: "ce" }, { kind: "sgd", lr: 0.1 });
      const batch = data(spec, n, 20 + c);
      const ref = rep.gradients(batch, n);
      const eng = await engineFor(rep, threads);
      const params = concat(rep.getWeights());
      const got = eng.grads(params, batch.x, batch.y, n);
      assert.ok(
        Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss),
        `${spec.name}: loss ${got.loss} vs ${ref.loss}`,
      );
      const sizes = rep.getWeights().map((w) => w.length);
      const a = split(got.grads, sizes), b = split(ref.grads, sizes);
      model.weights.forEach((w, i) => {
        let maxRef = 0, maxDiff = 0;
        for (let j = 0; j < sizes[i]; j++) {
          maxRef = Math.max(maxRef, Math.abs(b[i][j]));
          maxDiff = Math.max(maxDiff, Math.abs(a[i][j] - b[i][j]));
        }
        assert.ok(
          maxRef > 0,
          `${spec.name} ${w.name}: the tfjs gradient is all zero; the case tests nothing`,
        );
        assert.ok(
          maxDiff <= 1e-4 * maxRef + 1e-7,
          `${spec.name} ${w.name}: max |native − tfjs| = ${maxDiff} (max |tfjs| = ${maxRef})`,
        );
      });
      // Determinism: the same call gives the same bits.
      const again = eng.grads(params, batch.x, batch.y, n);
      assert.deepStrictEqual(again.grads, got.grads);
      assert.strictEqual(again.loss, got.loss);
      eng.close();
      model.dispose();
    }
  },
});

const LOSSES: LossSpec[] = [
  { kind: "soft-ce" },
  { kind: "soft-ce", temperature: 3 },
  { kind: "kd-db3" },
  { kind: "kd-db3", temperature: 4, hard: false },
  { kind: "kd", alpha: 0.7, temperature: 4 },
  { kind: "kd", alpha: 1, temperature: 2 },
];

Deno.test({
  name: "native LeNet-5 loss gradients match the tfjs cpu backend for soft CE, DB3 KD and standard KD",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const spec: ModelSpec = { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 };
    const n = 9;
    const model = buildModel(spec, 5);
    const rep = new Replica(model);
    const eng = await engineFor(rep, 2);
    const rng = new Rng(6);
    // Target scores spread like logits (some near-one-hot after /τ, some flat).
    const batch = {
      ...data(spec, n, 7),
      targets: Float32Array.from({ length: n * 10 }, () => 12 * rng.uniform() - 6),
    };
    const params = concat(rep.getWeights());
    const sizes = rep.getWeights().map((w) => w.length);
    for (const loss of LOSSES) {
      rep.configure(loss, { kind: "sgd", lr: 0.1 });
      const ref = rep.gradients(batch, n);
      const got = eng.lossGrads(params, batch, n, nativeLossWeights(loss, n));
      const tag = JSON.stringify(loss);
      assert.ok(
        Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss) + 1e-7,
        `${tag}: loss ${got.loss} vs ${ref.loss}`,
      );
      const a = split(got.grads, sizes), b = split(ref.grads, sizes);
      model.weights.forEach((w, i) => {
        let maxRef = 0, maxDiff = 0;
        for (let j = 0; j < sizes[i]; j++) {
          maxRef = Math.max(maxRef, Math.abs(b[i][j]));
          maxDiff = Math.max(maxDiff, Math.abs(a[i][j] - b[i][j]));
        }
        assert.ok(maxRef > 0, `${tag} ${w.name}: the tfjs gradient is all zero; the case tests nothing`);
        assert.ok(
          maxDiff <= 1e-4 * maxRef + 1e-7,
          `${tag} ${w.name}: max |native − tfjs| = ${maxDiff} (max |tfjs| = ${maxRef})`,
        );
      });
    }
    const noTargets = { x: batch.x, y: batch.y };
    assert.throws(
      () => eng.lossGrads(params, noTargets, n, nativeLossWeights({ kind: "kd-db3" }, n)),
      /soft term; pass 9×10 target scores/,
    );
    assert.throws(
      () => eng.lossGrads(params, batch, n, { hard: 0, soft: 1, tau: 0, kl: true }),
      /temperature 0 must be > 0/,
    );
    eng.close();
    model.dispose();
  },
});

for (
  const optimizer of [{ kind: "adam", lr: 1e-3 }, {
    kind: "sgd",
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
  }] as OptimizerConfig[]
) {
  Deno.test({
    name: `native LeNet-5 gradients give the tfjs path's losses over 6 ${optimizer.kind} steps`,
    ...opts,
    fn: async () => {
      await initBackend("cpu");
      const spec: ModelSpec = { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 };
      const model = buildModel(spec, 3);
      const rep = new Replica(model);
      rep.configure({ kind: "ce" }, optimizer);
      const eng = await engineFor(rep, 2);
      const sizes = rep.getWeights().map((w) => w.length);
      const params = rep.getWeights();
      const state = createOptimizerState(optimizer, sizes);
      const all = data(spec, 48, 4);
      for (let step = 0; step < 6; step++) {
        const idx = Int32Array.from({ length: 16 }, (_, j) => ((step * 16 + j) * 7) % 48);
        const b = gatherBatch(all, idx);
        const ref = rep.gradients(b, 16);
        rep.apply(ref.grads, { lr: optimizer.lr });
        const got = eng.grads(concat(params), b.x, b.y!, 16);
        optimizerStep(optimizer, state, params, split(got.grads, sizes), { lr: optimizer.lr });
        assert.ok(
          Math.abs(got.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss),
          `step ${step}: native loss ${got.loss} vs tfjs ${ref.loss}`,
        );
      }
      eng.close();
      model.dispose();
    },
  });
}

Deno.test({
  name: "native LeNet-5 gradients: clear errors for other models, bad labels, sizes, and no compiler",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const mlp = buildModel({ name: "mlp", inputShape: [4], numClasses: 3 }, 1);
    const why = leNetDims(mlp);
    assert.ok(typeof why === "string" && why.includes("not a DB3 LeNet-5"), String(why));
    mlp.dispose();
    const dims = { h: 28, w: 28, cin: 1, c1: 4, c2: 10, hid: 40, k: 10 };
    const r = await NativeLeNetGrads.tryCreate(dims, { threads: 2 });
    assert.ok(r.ok, r.ok ? "" : r.reason);
    const eng = r.engine;
    const params = new Float32Array(eng.paramCount);
    const x = new Float32Array(2 * 784);
    assert.throws(() => eng.grads(params, x, Int32Array.from([0, 10]), 2), /outside 0…9/);
    assert.throws(() => eng.grads(params.subarray(1), x, Int32Array.from([0, 1]), 2), /needs \d+/);
    assert.throws(() => eng.grads(params, x.subarray(10), Int32Array.from([0, 1]), 2), /input floats/);
    eng.close();
    assert.throws(() => eng.grads(params, x, Int32Array.from([0, 1]), 2), /after close/);
    const small = await NativeLeNetGrads.tryCreate({ ...dims, h: 12, w: 12 });
    assert.ok(!small.ok && small.reason.includes("at least 16×16"), small.ok ? "" : small.reason);
    const none = await NativeLeNetGrads.tryCreate(dims, { build: { compiler: "no-such-compiler-bkd" } });
    assert.ok(!none.ok && none.reason.includes("no-such-compiler-bkd"), none.ok ? "" : none.reason);
    tf.disposeVariables();
  },
});
