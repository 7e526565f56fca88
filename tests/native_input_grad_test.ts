/**
 * Frozen teachers on the native engine (lib/native/frozen_net.ts, issue 12) against the tfjs cpu backend:
 * - input gradients: (∂logits/∂x)ᵀ·g for a random upstream g, native vs `tf.grad` of Σ g ⊙ model(x) in
 *   inference mode, on a ResNet-8 (identity and projection shortcuts, global average pooling) and a CAKE
 *   LeNet-5, batch norms with random moving statistics, γ and β. Bound: max |native − tfjs| ≤
 *   1e-4 · max |tfjs| + 1e-6 for the gradient, and for the logits (float32 sums in other orders; observed
 *   2.0e-7 relative on both nets);
 * - the `logits+grad` oracle on the native engine answers as on tfjs (loss, logits, dx; with a clamp that
 *   cuts some pixels, whose gradient is 0 on both), books the same ledger, and says which engine answered;
 * - label/logit queries for a ResNet-8 through `teacherPredictor`: the native engine (seq_train in
 *   inference mode) gives the tfjs labels exactly and the logits within the bound above; more images than
 *   one chunk agree with one tfjs call;
 * - determinism: the same batch twice gives bit-identical logits and input gradients.
 * Needs a C++ compiler (as tests/native_test.ts); BKD_NATIVE=0 skips it on purpose.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { nativeEnabled } from "../lib/native/build.ts";
import { NativeFrozenNet } from "../lib/native/frozen_net.ts";
import { engineInfo, teacherPredictor } from "../lib/native/teacher_predictor.ts";
import { logitsGradOracle } from "../lib/oracle/oracle.ts";
import { Rng } from "../lib/util/rng.ts";

const opts = { ignore: !nativeEnabled(), sanitizeResources: false, sanitizeOps: false };

const RESNET8: ModelSpec = {
  name: "resnet",
  inputShape: [16, 16, 3],
  numClasses: 5,
  options: { depth: 8, width: 4 },
};
const LENET: ModelSpec = { name: "cake-lenet5", inputShape: [28, 28, 1], numClasses: 10 };

/** Random batch-norm statistics, γ and β, so inference mode is not the identity. */
function randomiseNorms(model: tfl.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  for (const w of model.weights) {
    const base = w.name.split("/").pop()!;
    const size = (w.shape as number[]).reduce((a, b) => a * b, 1);
    const vals = Float32Array.from({ length: size }, () => rng.uniform());
    if (/moving_variance|gamma/.test(base)) w.write(tf.tensor(vals.map((v) => 0.5 + v), w.shape as number[]));
    else if (/moving_mean|beta/.test(base)) w.write(tf.tensor(vals.map((v) => v - 0.5), w.shape as number[]));
  }
}

function randomArray(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rel = 1e-4): number {
  assert.equal(got.length, want.length, `${what}: length`);
  let err = 0;
  for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  const bound = rel * maxAbs(want) + 1e-6;
  assert.ok(err <= bound, `${what}: max |native − tfjs| = ${err} > ${bound}`);
  return err / Math.max(maxAbs(want), 1e-30);
}

Deno.test({
  name: "native input gradients match tf.grad on the tfjs cpu backend (ResNet-8, CAKE LeNet-5)",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    for (const [i, spec] of [RESNET8, LENET].entries()) {
      const model = buildModel(spec, 60 + i);
      randomiseNorms(model, 70 + i);
      const made = await NativeFrozenNet.tryCreate(model, { threads: 2 });
      assert.ok(made.ok, made.ok ? "" : made.reason);
      const net = made.net;
      const rng = new Rng(80 + i);
      const n = 5, k = spec.numClasses, d = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = randomArray(n * d, rng), g = randomArray(n * k, rng);
      const z = net.logits(x, n);
      const dx = net.inputGrad(x, n, g);
      const ref = tf.tidy(() => {
        const xt = tf.tensor(x, [n, ...spec.inputShape]);
        const gt = tf.tensor2d(g, [n, k]);
        const logits = model.apply(xt, { training: false }) as tf.Tensor2D;
        const grad = tf.grad((xi: tf.Tensor) =>
          tf.sum(tf.mul(model.apply(xi, { training: false }) as tf.Tensor, gt))
        )(
          xt,
        );
        return { z: logits.dataSync() as Float32Array, dx: grad.dataSync() as Float32Array };
      });
      assertClose(`${spec.name} logits`, z, ref.z);
      assertClose(`${spec.name} input gradient`, dx, ref.dx);
      assert.ok(maxAbs(ref.dx) > 0, "the reference gradient is not all zero");
      // Deterministic: the same batch again gives bit-identical logits and gradients.
      assert.deepEqual(net.logits(x, n), z);
      assert.deepEqual(net.inputGrad(x, n, g), dx);
      // Another upstream gradient on the same forward pass, then a new forward pass of another size.
      const g2 = randomArray(n * k, rng);
      const dx2 = net.inputGrad(x, n, g2);
      const ref2 = tf.tidy(() =>
        tf.grad((xi: tf.Tensor) =>
          tf.sum(tf.mul(model.apply(xi, { training: false }) as tf.Tensor, tf.tensor2d(g2, [n, k])))
        )(tf.tensor(x, [n, ...spec.inputShape])).dataSync() as Float32Array
      );
      assertClose(`${spec.name} input gradient (second upstream)`, dx2, ref2);
      net.logits(x.subarray(0, 2 * d), 2);
      assert.throws(() => net.inputGrad(x, n, g), /without an infer\(\) of that batch/);
      net.close();
      model.dispose();
    }
  },
});

/** Mean cross-entropy of the logits against fixed labels (a CAKE-like loss of the logits). */
function ceLoss(labels: Int32Array, k: number) {
  return (z: tf.Tensor2D) =>
    tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, "int32"), k), z) as tf.Scalar);
}

Deno.test({
  name: "logits+grad oracle: the native engine answers as tfjs does and says which engine answered",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    for (const [i, spec] of [RESNET8, LENET].entries()) {
      const model = buildModel(spec, 90 + i);
      randomiseNorms(model, 95 + i);
      const rng = new Rng(100 + i);
      const n = 4, k = spec.numClasses, d = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(randomArray(n * d, rng, 0.8), [n, ...spec.inputShape]);
      const labels = Int32Array.from({ length: n }, (_, j) => j % k);
      const clamp: [number, number] = [-1, 1];
      const native = logitsGradOracle(model, { engine: "native", clamp, threads: 2 });
      const tfjs = logitsGradOracle(model, { engine: "tfjs", clamp });
      const info = await native.engineInfo!();
      assert.equal(info.engine, "native");
      assert.match(info.label, /native seq_train/);
      const tInfo = await tfjs.engineInfo!();
      assert.equal(tInfo.engine, "tfjs");
      assert.equal(tInfo.nativeUnavailable, undefined);
      const a = await native.valueAndGrad(x, ceLoss(labels, k), "synth", Int32Array.from([0, 1, 2, 3]));
      const b = await tfjs.valueAndGrad(x, ceLoss(labels, k), "synth", Int32Array.from([0, 1, 2, 3]));
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-4 * Math.abs(b.loss) + 1e-6, `loss ${a.loss} vs ${b.loss}`);
      assertClose(`${spec.name} oracle logits`, a.logits.dataSync(), b.logits.dataSync());
      assertClose(`${spec.name} oracle dx`, a.dx.dataSync(), b.dx.dataSync());
      assert.deepEqual(a.dx.shape, x.shape);
      // The clamp cut some pixels; their gradient is exactly 0 on both engines.
      const xs = x.dataSync(), adx = a.dx.dataSync(), bdx = b.dx.dataSync();
      let cut = 0;
      for (let j = 0; j < xs.length; j++) {
        if (xs[j] < -1 || xs[j] > 1) cut++, assert.equal(adx[j], 0), assert.equal(bdx[j], 0);
      }
      assert.ok(cut > 0, "the clamp cut some pixels");
      const la = await native.logits(x, "probe"), lb = await tfjs.logits(x, "probe");
      assertClose(`${spec.name} oracle forward`, la.dataSync(), lb.dataSync());
      assert.deepEqual(native.ledger.snapshot(), tfjs.ledger.snapshot());
      for (const t of [a.logits, a.dx, b.logits, b.dx, la, lb, x]) t.dispose();
      native.close!();
      model.dispose();
    }
  },
});

Deno.test({
  name: "logits+grad oracle: auto falls back to tfjs with the reason; forced native names it",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const input = tfl.input({ shape: [4] });
    const out = tfl.layers.dense({ units: 3, activation: "softmax" }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const auto = logitsGradOracle(model, { engine: "auto" });
    const info = await auto.engineInfo!();
    assert.equal(info.engine, "tfjs");
    assert.match((info as { nativeUnavailable?: string }).nativeUnavailable ?? "", /activation softmax/);
    const x = tf.ones([2, 4]);
    const z = await auto.logits(x, "p");
    assert.deepEqual(z.shape, [2, 3]);
    const forced = logitsGradOracle(model, { engine: "native" });
    await assert.rejects(() => forced.logits(x, "p"), /native engine is unavailable \(.*activation softmax/);
    assert.equal(forced.ledger.snapshot().totals.spent, 0, "a refused engine books nothing");
    for (const t of [x, z]) t.dispose();
    model.dispose();
  },
});

Deno.test({
  name: "ResNet label/logit queries run natively and match the tfjs labels and logits",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const model = buildModel(RESNET8, 110);
    randomiseNorms(model, 111);
    const p = await teacherPredictor(model, RESNET8, { engine: "native", workers: 2 });
    assert.ok(p instanceof NativeFrozenNet, "a ResNet is served by seq_train in inference mode");
    assert.match(engineInfo(p).label, /native seq_train/);
    const n = 37, d = 16 * 16 * 3;
    const x = randomArray(n * d, new Rng(112));
    const [labels, logits] = [await p.predictLabels(x, n), await p.predictLogits(x, n)];
    const ref = tf.tidy(() => {
      const z = model.apply(tf.tensor(x, [n, 16, 16, 3]), { training: false }) as tf.Tensor2D;
      return { z: z.dataSync() as Float32Array, y: tf.argMax(z, 1).dataSync() as Int32Array };
    });
    assertClose("resnet-8 logits", logits, ref.z);
    assert.deepEqual(Array.from(labels), Array.from(ref.y));
    p.close();
    model.dispose();
  },
});
