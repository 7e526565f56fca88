/**
 * The trainer on the native training engine (issue 12), against the tfjs path ("wasm" engine; here on the
 * tfjs cpu backend, as tests/native_train_test.ts):
 * - agreement: 2 epochs on 300 MNIST images (fixed seed, so the same initial weights and batch order) give
 *   the same per-epoch losses on both engines within 1e-4 relative (float32 sums in different orders drift
 *   a little over 12 optimizer steps; observed ≤ 1.3e-7 on 2 cores), for CE + Adam, DB3 KD (τ 20) + Adam and CE + SGD
 *   with momentum, weight decay and a step schedule; the returned tfjs model holds the trained weights;
 * - determinism: the same seed gives bit-identical weights twice on the native engine;
 * - the switch: `engine: "wasm"` and `BKD_TRAIN_ENGINE=wasm` give the tfjs path, and the result and the run
 *   record say so; unknown values are a clear error;
 * - fallback: an unsupported model (a ViT) under `auto` trains on wasm with the reason recorded;
 *   under `native` it is a clear error.
 * - the general kernel (lib/native/seq_train.ts) through the trainer: CAKE LeNet-5 per-epoch losses as on
 *   wasm within 1e-4 relative; DB3 AlexNet-quarter (batch norm, dropout) trains natively under `auto` and
 *   the same seed gives bit-identical weights and batch-norm statistics twice; a ResNet-8 trains natively
 *   under `auto` and its loss falls on 64 images it can memorise.
 * - checkpoints: a run stopped after epoch 1 on wasm resumes on native and gives the straight native run's
 *   epoch-2 loss within 1e-4 relative (same optimizer state format on both engines).
 * Needs a C++ compiler (as tests/native_test.ts); BKD_NATIVE=0 skips it on purpose.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend.ts";
import { loadDataset } from "../lib/data/datasets.ts";
import type { ModelSpec } from "../lib/models/registry.ts";
import { nativeEnabled } from "../lib/native/build.ts";
import { runToRow, startRun } from "../lib/results/record.ts";
import { parseTrainEngine } from "../lib/train/engine.ts";
import { train, type TrainConfig, type TrainSet } from "../lib/train/trainer.ts";
import { Rng } from "../lib/util/rng.ts";

const opts = { ignore: !nativeEnabled(), sanitizeResources: false, sanitizeOps: false };
const SPEC: ModelSpec = { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 };
const BASE: TrainConfig = {
  epochs: 2,
  batchSize: 50,
  seed: 7,
  loss: { kind: "ce" },
  optimizer: { kind: "adam", lr: 1e-3 },
  workers: 1,
  label: "native trainer test",
};

async function mnist300(): Promise<TrainSet> {
  const d = await loadDataset("mnist", "test", { limit: 300 });
  const rng = new Rng(11);
  // Target scores for the KD losses: the true class raised, plus noise (logit-like, spread ±6).
  const targets = new Float32Array(300 * 10);
  for (let i = 0; i < 300; i++) {
    for (let k = 0; k < 10; k++) targets[i * 10 + k] = 4 * rng.uniform() - 2 + (k === d.y[i] ? 4 : 0);
  }
  return { x: d.x, shape: d.shape, y: d.y, targets };
}

function flatWeights(r: { model: { getWeights(): tf.Tensor[] } }): Float32Array[] {
  return r.model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const old = Deno.env.get(name);
  Deno.env.set(name, value);
  return fn().finally(() => old === undefined ? Deno.env.delete(name) : Deno.env.set(name, old));
}

const AGREEMENT: { name: string; cfg: Partial<TrainConfig> }[] = [
  { name: "CE + Adam", cfg: {} },
  { name: "DB3 KD (τ 20) + Adam", cfg: { loss: { kind: "kd-db3" } } },
  {
    name: "CE + SGD (momentum, weight decay, step schedule)",
    cfg: {
      optimizer: { kind: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
      schedule: { kind: "step", milestones: [1], gamma: 0.1 },
    },
  },
];

for (const { name, cfg } of AGREEMENT) {
  Deno.test({
    name: `trainer: native engine gives the wasm path's per-epoch losses, ${name}`,
    ...opts,
    fn: async () => {
      await initBackend("cpu");
      const data = await mnist300();
      const native = await train(SPEC, data, { ...BASE, ...cfg, engine: "native" });
      const wasm = await train(SPEC, data, { ...BASE, ...cfg, engine: "wasm" });
      assert.equal(native.trainEngine.engine, "native");
      assert.equal(native.workers, 1);
      assert.ok(native.trainEngine.threads >= 1);
      assert.equal(wasm.trainEngine.engine, "wasm");
      assert.equal(native.history.length, 2);
      for (let e = 0; e < 2; e++) {
        const a = native.history[e].loss, b = wasm.history[e].loss;
        assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(b), `epoch ${e + 1}: native ${a} vs wasm ${b}`);
      }
      assert.ok(native.history[1].loss < native.history[0].loss, "the loss falls: the run trained");
      // The tfjs model holds the native weights: they differ from the initial ones and stay close to
      // the wasm run's.
      const wn = flatWeights(native), ww = flatWeights(wasm);
      let maxDiff = 0, maxRef = 0;
      wn.forEach((w, i) =>
        w.forEach((v, j) => {
          maxDiff = Math.max(maxDiff, Math.abs(v - ww[i][j]));
          maxRef = Math.max(maxRef, Math.abs(ww[i][j]));
        })
      );
      assert.ok(maxDiff <= 1e-2 * maxRef, `weights: max |native − wasm| = ${maxDiff} (max |wasm| ${maxRef})`);
      native.model.dispose();
      wasm.model.dispose();
    },
  });
}

Deno.test({
  name: "trainer: the native engine is deterministic (same seed, bit-identical weights) and the default",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const data = await mnist300();
    const a = await train(SPEC, data, { ...BASE, epochs: 1 });
    const b = await train(SPEC, data, { ...BASE, epochs: 1 });
    assert.equal(a.trainEngine.requested, "auto");
    assert.equal(a.trainEngine.engine, "native");
    assert.equal(a.trainEngine.nativeUnavailable, undefined);
    const wa = flatWeights(a), wb = flatWeights(b);
    wa.forEach((w, i) => assert.deepEqual(w, wb[i], `weight ${i} differs between two runs`));
    a.model.dispose();
    b.model.dispose();
  },
});

Deno.test({
  name: "trainer: engine switch (option, BKD_TRAIN_ENGINE), fallback reason and the run record",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const data = await mnist300();
    const small = { ...BASE, epochs: 1, batchSize: 100 };
    const run = startRun({
      experiment: "native-trainer-test",
      method: "ce",
      dataset: "mnist",
      scale: "smoke",
      seed: 7,
      config: {},
    });
    const viaEnv = await withEnv("BKD_TRAIN_ENGINE", "wasm", () => train(SPEC, data, small));
    assert.deepEqual(
      { requested: viaEnv.trainEngine.requested, engine: viaEnv.trainEngine.engine },
      { requested: "wasm", engine: "wasm" },
    );
    const forced = await withEnv(
      "BKD_TRAIN_ENGINE",
      "wasm",
      () => train(SPEC, data, { ...small, engine: "native" }),
    );
    assert.equal(forced.trainEngine.engine, "native", "the option wins over the environment");
    const record = run.finish({ acc: 0.5 });
    assert.deepEqual(record.trainEngines?.map((u) => `${u.requested}→${u.engine}`), [
      "wasm→wasm",
      "native→native",
    ]);
    assert.equal(runToRow(record).trainEngine, "wasm+native");

    await assert.rejects(
      () => withEnv("BKD_TRAIN_ENGINE", "gpu", () => train(SPEC, data, small)),
      /BKD_TRAIN_ENGINE "gpu" is not a training engine; use one of native, wasm, auto/,
    );
    assert.equal(parseTrainEngine(" Native "), "native");
    assert.equal(parseTrainEngine(""), undefined);

    // An unsupported model (a ViT): auto falls back with the reason, native is a clear error.
    const vit: ModelSpec = {
      name: "vit4",
      inputShape: [8, 8, 3],
      numClasses: 3,
      options: { depth: 1, dim: 8, heads: 2, headDim: 4, mlpDim: 8 },
    };
    const rng = new Rng(3);
    const pts: TrainSet = {
      x: rng.fillUniform(new Float32Array(40 * 192)),
      shape: [40, 8, 8, 3],
      y: Int32Array.from({ length: 40 }, () => rng.int(3)),
    };
    const fell = await train(vit, pts, { ...small, batchSize: 20 });
    assert.equal(fell.trainEngine.engine, "wasm");
    assert.match(fell.trainEngine.nativeUnavailable ?? "", /is not supported by the native training engine/);
    await assert.rejects(
      () => train(vit, pts, { ...small, batchSize: 20, engine: "native" }),
      /native training engine was asked for \(TrainConfig.engine = native\) but cannot train vit4: .*not supported.*Use engine "auto" or "wasm"/,
    );
    // A pool asked for by number: auto trains on the pool and says why.
    const pool = await train(SPEC, data, { ...small, workers: 2, engine: "auto" });
    assert.equal(pool.trainEngine.engine, "wasm");
    assert.match(pool.trainEngine.nativeUnavailable ?? "", /workers: 2 asks for a tfjs worker pool/);
    for (const r of [viaEnv, forced, fell, pool]) r.model.dispose();
  },
});

Deno.test({
  name:
    "trainer: the general native kernel (CAKE LeNet-5, no dropout) gives the wasm path's per-epoch losses",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const data = await mnist300();
    const spec: ModelSpec = { name: "cake-lenet5-half", inputShape: [28, 28, 1], numClasses: 10 };
    const native = await train(spec, data, { ...BASE, engine: "native" });
    const wasm = await train(spec, data, { ...BASE, engine: "wasm" });
    assert.equal(native.trainEngine.engine, "native");
    for (let e = 0; e < 2; e++) {
      const a = native.history[e].loss, b = wasm.history[e].loss;
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(b), `epoch ${e + 1}: native ${a} vs wasm ${b}`);
    }
    assert.ok(native.history[1].loss < native.history[0].loss, "the loss falls: the run trained");
    native.model.dispose();
    wasm.model.dispose();
  },
});

Deno.test({
  name: "trainer: AlexNet-quarter (batch norm, dropout) trains natively by default, bit-identical twice",
  ...opts,
  fn: async () => {
    // Same seed → same weights and batch-norm statistics, dropout masks included; another seed → others.
    await initBackend("cpu");
    const spec: ModelSpec = { name: "db3-alexnet-quarter", inputShape: [32, 32, 3], numClasses: 10 };
    const rng = new Rng(21);
    const data: TrainSet = {
      x: rng.fillUniform(new Float32Array(64 * 3072)),
      shape: [64, 32, 32, 3],
      y: Int32Array.from({ length: 64 }, () => rng.int(10)),
    };
    const cfg: TrainConfig = { ...BASE, epochs: 1, batchSize: 32 };
    const a = await train(spec, data, cfg);
    const b = await train(spec, data, cfg);
    const c = await train(spec, data, { ...cfg, seed: 8 });
    assert.equal(a.trainEngine.engine, "native");
    assert.equal(a.trainEngine.nativeUnavailable, undefined);
    const wa = flatWeights(a), wb = flatWeights(b);
    assert.equal(wa.length, a.model.weights.length);
    wa.forEach((w, i) => assert.deepEqual(w, wb[i], `weight ${i} (${a.model.weights[i].name}) differs`));
    const stats = a.model.weights.findIndex((w) => w.name.includes("moving_mean"));
    assert.ok(stats >= 0 && wa[stats].some((v) => v !== 0), "the moving means were updated and kept");
    assert.notDeepEqual(flatWeights(c)[0], wa[0]);
    for (const r of [a, b, c]) r.model.dispose();
  },
});

Deno.test({
  name: "trainer: a residual net (ResNet-8) trains natively under auto and fits a small set",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const spec: ModelSpec = {
      name: "resnet",
      inputShape: [8, 8, 3],
      numClasses: 4,
      options: { depth: 8, width: 4 },
    };
    const rng = new Rng(31);
    const data: TrainSet = {
      x: rng.fillUniform(new Float32Array(64 * 192)),
      shape: [64, 8, 8, 3],
      y: Int32Array.from({ length: 64 }, () => rng.int(4)),
    };
    const r = await train(spec, data, {
      ...BASE,
      epochs: 6,
      batchSize: 16,
      optimizer: { kind: "adam", lr: 1e-2 },
    });
    assert.equal(r.trainEngine.engine, "native");
    assert.equal(r.trainEngine.nativeUnavailable, undefined);
    const first = r.history[0].loss, last = r.history.at(-1)!.loss;
    assert.ok(last < 0.8 * first, `the loss falls on a set it can memorise: ${first} → ${last}`);
    r.model.dispose();
  },
});

Deno.test({
  name: "trainer: a checkpoint written on the wasm path resumes on the native engine",
  ...opts,
  fn: async () => {
    await initBackend("cpu");
    const data = await mnist300();
    const dir = await Deno.makeTempDir({ prefix: "bkd-native-resume-" });
    try {
      const cfg = { ...BASE, batchSize: 100, checkpointDir: dir };
      const first = await train(SPEC, data, { ...cfg, engine: "wasm", stopAfterEpochs: 1 });
      assert.equal(first.complete, false);
      const resumed = await train(SPEC, data, { ...cfg, engine: "native" });
      assert.equal(resumed.resumedEpochs, 1);
      assert.equal(resumed.trainEngine.engine, "native");
      const straight = await train(SPEC, data, { ...BASE, batchSize: 100, engine: "native" });
      const a = resumed.history[1].loss, b = straight.history[1].loss;
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(b), `epoch 2 after resuming ${a} vs straight ${b}`);
      for (const r of [first, resumed, straight]) r.model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
