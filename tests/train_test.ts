import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert";
import { initBackend } from "../lib/backend.ts";
import type { LabeledData } from "../lib/data/mod.ts";
import type { ModelSpec } from "../lib/models/registry.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint.ts";
import { accuracy } from "../lib/learn/evaluate.ts";
import { computeLoss, type LossSpec } from "../lib/learn/losses.ts";
import { createOptimizerState, optimizerStep } from "../lib/learn/optim.ts";
import { oneCycleAt, scheduledParams } from "../lib/train/schedule.ts";
import { getTeacher, TEACHER_RECIPES } from "../lib/train/teachers.ts";
import { testScope, train, type TrainConfig, type TrainSet } from "../lib/train/trainer.ts";
import { Rng } from "../lib/util/rng.ts";

const close = (a: number, b: number, tol = 1e-5) =>
  assert(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
const LN2 = Math.log(2), LN3 = Math.log(3), LN6 = Math.log(6);
// Rows whose softmax is [1,2,3]/6 and [3,1,2]/6.
const ROWS = [[0, LN2, LN3], [LN3, 0, LN2]];
// KL([1,2,3]/6 ‖ uniform) = −ln2/6 + ½·ln(3/2)
const KL_123 = -LN2 / 6 + 0.5 * Math.log(1.5);

function lossOf(
  spec: LossSpec,
  logits: number[][],
  y?: number[],
  targets?: number[][],
  total?: number,
): number {
  return tf.tidy(() =>
    computeLoss(spec, tf.tensor2d(logits), {
      y: y ? tf.tensor1d(y, "int32") : undefined,
      targets: targets ? tf.tensor2d(targets) : undefined,
    }, total).dataSync()[0]
  );
}

Deno.test("losses match hand-computed values", async () => {
  await initBackend("cpu");
  // CE: −ln(3/6) for both rows.
  close(lossOf({ kind: "ce" }, ROWS, [2, 0]), LN2);
  close(lossOf({ kind: "ce" }, ROWS, [0, 1]), (LN6 + LN6) / 2);
  // soft-ce τ=1 against uniform targets: −⅓(ln⅙ + ln²⁄₆ + ln³⁄₆) = ⅔·ln 6.
  close(lossOf({ kind: "soft-ce" }, [ROWS[0]], undefined, [[0, 0, 0]]), (2 / 3) * LN6);
  // kd-db3, τ=20: student S=0 (uniform), targets 20·ROWS[0] (p=[1,2,3]/6); CE mean + KL summed.
  const z = ROWS[0].map((v) => 20 * v);
  close(lossOf({ kind: "kd-db3" }, [[0, 0, 0], [0, 0, 0]], [1, 2], [z, z]), LN3 + 2 * KL_123);
  close(lossOf({ kind: "kd-db3", hard: false }, [[0, 0, 0], [0, 0, 0]], undefined, [z, z]), 2 * KL_123);
  // kd α=0.5, τ=2: ½·CE + ½·τ²·mean KL.
  const z2 = ROWS[0].map((v) => 2 * v);
  close(
    lossOf({ kind: "kd", alpha: 0.5, temperature: 2 }, [[0, 0, 0], [0, 0, 0]], [0, 2], [z2, z2]),
    0.5 * LN3 + 2 * KL_123,
  );
  // Shards with total = N add up to the whole batch (mean and sum terms alike).
  const rng = new Rng(4);
  const L = [0, 1, 2, 3].map(() => [0, 1, 2].map(() => rng.normal() * 3));
  const T = [0, 1, 2, 3].map(() => [0, 1, 2].map(() => rng.normal() * 30));
  const Y = [0, 2, 1, 1];
  for (const spec of [{ kind: "kd-db3" }, { kind: "kd", alpha: 0.3, temperature: 4 }] as LossSpec[]) {
    const whole = lossOf(spec, L, Y, T);
    const parts = lossOf(spec, L.slice(0, 1), Y.slice(0, 1), T.slice(0, 1), 4) +
      lossOf(spec, L.slice(1), Y.slice(1), T.slice(1), 4);
    close(parts, whole);
  }
  // Gradient of soft-ce (τ=1) w.r.t. logits is (q − p)/N.
  const g = tf.tidy(() =>
    tf.grad((s: tf.Tensor) =>
      computeLoss({ kind: "soft-ce" }, s as tf.Tensor2D, { targets: tf.tensor2d([[0, 0, 0]]) })
    )(
      tf.tensor2d([ROWS[0]]),
    ).dataSync()
  );
  [1 / 6 - 1 / 3, 2 / 6 - 1 / 3, 3 / 6 - 1 / 3].forEach((v, i) => close(g[i], v));
  assert.throws(() => lossOf({ kind: "ce" }, ROWS), /hard labels/);
});

Deno.test("Adam and SGD steps match hand-computed PyTorch updates", () => {
  const adam = { kind: "adam" as const, lr: 0.1 };
  const w = [new Float32Array([1])];
  const s = createOptimizerState(adam, [1]);
  optimizerStep(adam, s, w, [new Float32Array([0.5])], { lr: 0.1 });
  close(w[0][0], 0.900000002, 1e-7); // m̂ = 0.5, v̂ = 0.25
  optimizerStep(adam, s, w, [new Float32Array([-1])], { lr: 0.1 });
  close(w[0][0], 0.9366103542, 1e-6);
  assert.strictEqual(s.step, 2);

  const sgd = { kind: "sgd" as const, lr: 0.1, momentum: 0.9, weightDecay: 0.1 };
  const v = [new Float32Array([1])];
  const t = createOptimizerState(sgd, [1]);
  optimizerStep(sgd, t, v, [new Float32Array([0.5])], { lr: 0.1 }); // d = 0.5 + 0.1·1 = 0.6 = b
  close(v[0][0], 0.94, 1e-7);
  optimizerStep(sgd, t, v, [new Float32Array([-1])], { lr: 0.1 }); // d = −1 + 0.094; b = 0.54 − 0.906
  close(v[0][0], 0.9766, 1e-6);
});

Deno.test("schedules: step and one-cycle match hand-computed values", () => {
  const step = { kind: "step" as const, milestones: [60, 120], gamma: 0.1 };
  close(scheduledParams(step, 0.1, 59, 7, 10, 200).lr, 0.1);
  close(scheduledParams(step, 0.1, 60, 0, 10, 200).lr, 0.01);
  close(scheduledParams(step, 0.1, 120, 0, 10, 200).lr, 0.001);
  close(scheduledParams({ kind: "constant" }, 0.3, 5, 5, 10, 10).lr, 0.3);
  // 100 steps, max lr 1: warm-up ends at step 29 (0.3·100 − 1), cosine from 0.04 up, then to 4e-6.
  const oc = { kind: "onecycle" as const };
  const at = (k: number) => oneCycleAt(oc, 1, k, 100);
  close(at(0).lr, 0.04);
  close(at(0).momentum!, 0.95);
  close(at(14).lr, 0.4940133239);
  close(at(29).lr, 1);
  close(at(29).momentum!, 0.85);
  close(at(64).lr, (1 + 4e-6) / 2);
  close(at(64).momentum!, 0.9);
  close(at(99).lr, 4e-6);
  // Per batch: epoch 2, batch 4 of 10 steps/epoch is global step 24.
  close(scheduledParams(oc, 1, 2, 4, 10, 10).lr, at(24).lr);
  assert.strictEqual(oneCycleAt({ kind: "onecycle", cycleMomentum: false }, 1, 3, 100).momentum, undefined);
});

const SPEC: ModelSpec = { name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 16, depth: 1 } };

function blobs(n: number, seed: number): LabeledData {
  const rng = new Rng(seed);
  const x = new Float32Array(2 * n), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    x[2 * i] = (y[i] ? 1.5 : -1.5) + 0.5 * rng.normal();
    x[2 * i + 1] = 0.5 * rng.normal();
  }
  return { name: "blobs", split: "train", x, y, shape: [n, 2], numClasses: 2, classNames: ["a", "b"] };
}

const CFG: TrainConfig = {
  epochs: 3,
  batchSize: 32,
  seed: 7,
  loss: { kind: "ce" },
  optimizer: { kind: "sgd", lr: 0.05, momentum: 0.9 },
  schedule: { kind: "onecycle" },
  workers: 1,
};

function sameWeights(a: tf.Tensor[], b: tf.Tensor[], tol = 0): void {
  a.forEach((t, i) => {
    const x = t.dataSync(), y = b[i].dataSync();
    for (let j = 0; j < x.length; j++) {
      assert(Math.abs(x[j] - y[j]) <= tol, `weight ${i}[${j}]: ${x[j]} vs ${y[j]}`);
    }
  });
}

Deno.test("train: learns, is deterministic, reports final and best accuracy", async () => {
  await initBackend("cpu");
  const data: TrainSet = blobs(200, 1), test = blobs(100, 2);
  const r1 = await train(SPEC, data, CFG, test);
  const r2 = await train(SPEC, data, CFG, test);
  assert.strictEqual(r1.history.length, 3);
  assert(r1.finalTestAcc! > 0.95, `acc ${r1.finalTestAcc}`);
  assert.strictEqual(r1.finalTestAcc, r1.history[2].testAcc);
  assert(r1.bestTestAcc! >= r1.finalTestAcc!);
  assert(r1.history[2].loss < r1.history[0].loss);
  sameWeights(r1.model.getWeights(), r2.model.getWeights());
  assert.strictEqual(r1.workers, 1);
  assert.strictEqual(r1.complete, true);
  r1.model.dispose();
  r2.model.dispose();
});

Deno.test("train: resumes from its checkpoint exactly; a changed config is an error", async () => {
  await initBackend("cpu");
  const data = blobs(160, 3), test = blobs(60, 4);
  const dir = await Deno.makeTempDir();
  try {
    const full = await train(SPEC, data, CFG, test);
    const part = await train(SPEC, data, { ...CFG, checkpointDir: dir, stopAfterEpochs: 2 }, test);
    assert.strictEqual(part.history.length, 2);
    assert.strictEqual(part.complete, false);
    const rest = await train(SPEC, data, { ...CFG, checkpointDir: dir }, test);
    assert.strictEqual(rest.resumedEpochs, 2);
    assert.strictEqual(rest.history.length, 3);
    assert.deepStrictEqual(rest.history.map((h) => h.testAcc), full.history.map((h) => h.testAcc));
    sameWeights(rest.model.getWeights(), full.model.getWeights());
    // A finished run returns from the checkpoint without training.
    const again = await train(SPEC, data, { ...CFG, checkpointDir: dir }, test);
    assert.strictEqual(again.resumedEpochs, 3);
    sameWeights(again.model.getWeights(), full.model.getWeights());
    await assert.rejects(
      () => train(SPEC, data, { ...CFG, checkpointDir: dir, optimizer: { kind: "sgd", lr: 0.01 } }, test),
      /different run/,
    );
    for (const r of [full, part, rest, again]) r.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint file round-trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ck = {
      configHash: "abc",
      epoch: 4,
      history: [{ epoch: 1 }],
      weights: [new Float32Array([1, 2, 3]), new Float32Array([-0.5])],
      optimizer: {
        kind: "adam" as const,
        step: 9,
        slots: [[new Float32Array([1, 1, 1]), new Float32Array([2, 2, 2])], [
          new Float32Array([3]),
          new Float32Array([4]),
        ]],
      },
      meta: { x: 1 },
    };
    await saveCheckpoint(dir, ck);
    assert.deepStrictEqual(await loadCheckpoint(dir), ck);
    assert.strictEqual(await loadCheckpoint(`${dir}/nothing`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train on 2 workers matches in-process training", async () => {
  await initBackend("cpu");
  const data = blobs(128, 5), test = blobs(40, 6);
  const cfg: TrainConfig = { ...CFG, epochs: 2, optimizer: { kind: "adam", lr: 0.01 }, schedule: undefined };
  const one = await train(SPEC, data, cfg, test);
  const two = await train(SPEC, data, { ...cfg, workers: 2 }, test);
  assert.strictEqual(two.workers, 2);
  sameWeights(two.model.getWeights(), one.model.getWeights(), 1e-4);
  assert.strictEqual(accuracy(new Int32Array([1, 0, 1]), new Int32Array([1, 1, 1])), 2 / 3);
  one.model.dispose();
  two.model.dispose();
});

Deno.test("getTeacher trains once, caches with meta, retrains when the recipe changes", async () => {
  await initBackend("cpu");
  const dir = await Deno.makeTempDir();
  const recipe = {
    ...TEACHER_RECIPES.smoke.lenet,
    epochs: 2,
    batchSize: 32,
    trainLimit: 512,
    testLimit: 200,
    note: "test",
  };
  try {
    const req = {
      dataset: "mnist" as const,
      model: "mlp" as const,
      scale: "smoke" as const,
      seed: 1,
      dir,
      recipe,
      workers: 1,
    };
    const a = await getTeacher(req);
    assert.strictEqual(a.meta.trainImages, 512);
    assert.strictEqual(a.meta.testImages, 200);
    assert(a.meta.testAcc > 0.2, `acc ${a.meta.testAcc}`); // above chance (0.1)
    assert.deepStrictEqual(a.meta.recipe, recipe);
    const b = await getTeacher(req);
    assert.strictEqual(b.meta.createdAt, a.meta.createdAt);
    sameWeights(b.model.getWeights(), a.model.getWeights());
    const c = await getTeacher({ ...req, recipe: { ...recipe, note: "changed" } });
    assert.notStrictEqual(c.meta.createdAt, a.meta.createdAt);
    for (const t of [a, b, c]) t.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: progress text names the test images an accuracy was measured on", () => {
  assert.equal(testScope(1000, 10000), "on 1,000 of 10,000 test images");
  assert.equal(testScope(10000, 10000), "on 10,000 test images");
  assert.equal(testScope(500), "on 500 test images");
});
