import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import assert from "node:assert/strict";
import { logitsObjective, lossCls, lossContr, lossEnt, lossTv, lossTvGrad } from "../lib/cake/losses.ts";
import { stepSize, stepSizes } from "../lib/cake/schedule.ts";
import { cakeDefaults, resolveCakeOptions } from "../lib/cake/options.ts";
import { drawTargetClasses, synthesize } from "../lib/cake/synthesize.ts";
import { synthesizeNaive } from "../lib/cake/naive.ts";
import { synthesizeWithGenerator } from "../lib/cake/generator.ts";
import { logitsGradOracle } from "../lib/oracle/oracle.ts";
import { Rng } from "../lib/util/rng.ts";
import { initBackend } from "../lib/backend.ts";
import { splitSynthetic } from "../lib/cake/student.ts";

await initBackend("cpu");

const close = (a: number, b: number, tol = 1e-5, msg = "") =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} ${a} vs ${b}`);

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 0, scale);
}

Deno.test("L_cls = G · mean CE, checked by hand", () => {
  // Two samples, K = 2, G = 2. Sample 0: logits (0, ln 3) target 1 → CE = −ln(3/4);
  // sample 1: logits (0, 0) target 0 → CE = ln 2.
  const z = tf.tensor2d([[0, Math.log(3)], [0, 0]]);
  const v = lossCls(z, new Int32Array([1, 0]), 2).dataSync()[0];
  close(v, 2 * ((-Math.log(3 / 4) + Math.log(2)) / 2));
  z.dispose();
});

Deno.test("L_contr equals ½G²·mean over (r,i,j,k) by explicit loops", () => {
  const [r, g, k] = [3, 4, 5];
  const data = randomArray(r * g * k, 7, 2);
  let sum = 0;
  for (let a = 0; a < r; a++) {
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < g; j++) {
        for (let c = 0; c < k; c++) {
          const d = data[(a * g + i) * k + c] - data[(a * g + j) * k + c];
          sum += d * d;
        }
      }
    }
  }
  const want = 0.5 * g * g * (sum / (r * g * g * k));
  const z3 = tf.tensor3d(data, [r, g, k]);
  close(lossContr(z3).dataSync()[0], want, 1e-5, "3-D");
  const z2 = tf.tensor2d(data, [r * g, k]);
  close(lossContr(z2, g).dataSync()[0], want, 1e-5, "2-D");
  // Hand case: one row, G = 2, K = 1, logits 1 and 3 → ½·4·mean(0,4,4,0) = 4.
  close(lossContr(tf.tensor3d([1, 3], [1, 2, 1])).dataSync()[0], 4);
  tf.dispose([z3, z2]);
});

Deno.test("L_tv by explicit loops; points have no TV", () => {
  const [b, h, w, c] = [2, 3, 4, 2];
  const data = randomArray(b * h * w * c, 3);
  const at = (n: number, y: number, x: number, ch: number) => data[((n * h + y) * w + x) * c + ch];
  let sv = 0, sh = 0;
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          if (y + 1 < h) sv += Math.abs(at(n, y + 1, x, ch) - at(n, y, x, ch));
          if (x + 1 < w) sh += Math.abs(at(n, y, x + 1, ch) - at(n, y, x, ch));
        }
      }
    }
  }
  const want = sv / (b * (h - 1) * w * c) + sh / (b * h * (w - 1) * c);
  const x = tf.tensor4d(data, [b, h, w, c]);
  close(lossTv(x).dataSync()[0], want);
  // Hand case: 1×2×2×1 image [[0,1],[2,3]]: vertical |Δ| = 2,2, horizontal 1,1 → 2 + 1 = 3.
  close(lossTv(tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1])).dataSync()[0], 3);
  assert.equal(lossTv(tf.tensor2d([1, 2, 3, 4], [2, 2])).dataSync()[0], 0);
  assert.deepEqual(Array.from(lossTvGrad(tf.tensor2d([1, 2, 3, 4], [2, 2])).dataSync()), [0, 0, 0, 0]);
  x.dispose();
});

Deno.test("∂L_tv/∂x in closed form matches tf.grad (cpu)", () => {
  for (const shape of [[2, 5, 4, 3], [3, 6, 6, 1], [1, 4, 7]] as number[][]) {
    const x = tf.tensor(randomArray(shape.reduce((a, v) => a * v, 1), 11), shape);
    const auto = tf.grad((t: tf.Tensor) => lossTv(t))(x).dataSync();
    const mine = lossTvGrad(x).dataSync();
    assert.equal(mine.length, auto.length);
    for (let i = 0; i < mine.length; i++) close(mine[i], auto[i], 1e-6, `grad[${i}] ${shape}`);
    x.dispose();
  }
});

Deno.test("L_ent = (1/K) Σ p̄ log10 p̄, by hand", () => {
  // Logits (0,0) and (ln 3, 0): softmax (½,½) and (¾,¼); p̄ = (5/8, 3/8).
  const z = tf.tensor2d([[0, 0], [Math.log(3), 0]]);
  const p = [5 / 8, 3 / 8];
  close(lossEnt(z).dataSync()[0], (p[0] * Math.log10(p[0]) + p[1] * Math.log10(p[1])) / 2);
  // Weighted sum of the logit terms.
  const y = new Int32Array([0, 1]);
  const w = { cls: 2, contr: 3, ent: 5 };
  const want = 2 * lossCls(z, y, 2).dataSync()[0] + 3 * lossContr(z, 2).dataSync()[0] +
    5 * lossEnt(z).dataSync()[0];
  close(logitsObjective(z, y, 2, w).dataSync()[0], want);
  z.dispose();
});

Deno.test("step-size schedule: log-linear over D decades, cosine, off", () => {
  const s = { eta0: 0.1, decades: 4, kind: "linear" as const };
  close(stepSize(0, 100, s), 0.1);
  close(stepSize(50, 100, s), 1e-3);
  close(stepSize(75, 100, s), 1e-4);
  const all = stepSizes(10, s);
  for (let m = 1; m < 10; m++) assert.ok(all[m] < all[m - 1]);
  const c = { ...s, kind: "cosine" as const };
  close(stepSize(0, 100, c), 0.1);
  close(stepSize(50, 100, c), 1e-3);
  close(stepSize(100, 100, c), 1e-5);
  assert.equal(stepSize(99, 100, { ...s, kind: "none" }), 0.1);
});

Deno.test("target classes: G distinct classes per row, seeded", () => {
  const a = drawTargetClasses(50, 10, 10, new Rng(1));
  for (let r = 0; r < 50; r++) assert.equal(new Set(a.subarray(r * 10, r * 10 + 10)).size, 10);
  const b = drawTargetClasses(40, 3, 10, new Rng(2));
  for (let r = 0; r < 40; r++) assert.equal(new Set(b.subarray(r * 3, r * 3 + 3)).size, 3);
  assert.deepEqual(drawTargetClasses(5, 2, 4, new Rng(9)), drawTargetClasses(5, 2, 4, new Rng(9)));
});

Deno.test("options: paper defaults per dataset and validation", () => {
  const mn = cakeDefaults("mnist");
  assert.deepEqual(
    [
      mn.weights.cls,
      mn.weights.contr,
      mn.weights.tv,
      mn.eta0,
      mn.steps,
      mn.batchSize,
      mn.numBatches,
      mn.groups,
    ],
    [1e3, 1e-3, 1e7, 0.1, 256, 500, 512, 10],
  );
  assert.deepEqual(cakeDefaults("mnist").normalization, { mean: [0.1307], std: [0.3081] });
  const tm = cakeDefaults("two-moons");
  assert.deepEqual([tm.weights.cls, tm.weights.contr, tm.weights.tv, tm.eta0, tm.steps, tm.groups], [
    1e-2,
    1e-3,
    0,
    1e-2,
    250,
    2,
  ]);
  const cf = cakeDefaults("cifar10");
  assert.deepEqual([cf.weights.contr, cf.weights.tv, cf.numBatches], [1e1, 1e5, 500]);
  assert.throws(() => resolveCakeOptions({ batchSize: 7, groups: 2 }, "two-moons"), /multiple/);
  assert.equal(resolveCakeOptions({ weights: { contr: 0 } }, "mnist").weights.tv, 1e7);
});

function tinyTeacher(inputShape: number[], k: number, seed: number): tfl.LayersModel {
  const m = tfl.sequential();
  if (inputShape.length > 1) m.add(tfl.layers.flatten({ inputShape }));
  m.add(tfl.layers.dense({
    units: k,
    inputShape: inputShape.length > 1 ? undefined : inputShape,
    kernelInitializer: tfl.initializers.randomNormal({ seed, stddev: 0.5 }),
    biasInitializer: "zeros",
  }));
  return m;
}

Deno.test("synthesize: shapes, η per sample, ledger counts, determinism (points)", async () => {
  const teacher = tinyTeacher([2], 2, 1);
  const opts = {
    dataset: "two-moons" as const,
    numBatches: 3,
    batchSize: 8,
    steps: 4,
    progress: false,
    seed: 5,
  };
  const before = teacher.getWeights().map((w) => w.dataSync().slice());
  const o1 = logitsGradOracle(teacher);
  const s1 = await synthesize(o1, opts);
  // Teacher frozen: gradients went to the inputs only.
  teacher.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), before[i]));
  assert.deepEqual(s1.shape, [24, 2]);
  assert.equal(s1.targets.length, 48);
  assert.equal(s1.eta[0], Math.fround(1e-2));
  assert.equal(s1.eta[23], Math.fround(stepSize(2, 3, { eta0: 1e-2, decades: 4, kind: "linear" })));
  const led = s1.ledger.totals.images;
  assert.equal(led.forward, 24 * 5);
  assert.equal(led.backward, 24 * 4);
  assert.equal(led.label, 0);
  assert.deepEqual(s1.passes, { forward: 120, backward: 96 });
  // Targets are the teacher's logits on the returned inputs.
  const z = teacher.predict(tf.tensor2d(s1.x, [24, 2])) as tf.Tensor;
  const zd = z.dataSync();
  for (let i = 0; i < zd.length; i++) close(s1.targets[i], zd[i], 1e-5);
  const s2 = await synthesize(logitsGradOracle(teacher), opts);
  assert.deepEqual(s2.x, s1.x);
  teacher.dispose();
});

Deno.test("synthesize: one SGD step equals X − η·std·∂L/∂u (+ TV gradient), normalisation chain rule", async () => {
  const inputShape = [4, 4, 1];
  const teacher = tinyTeacher(inputShape, 3, 2);
  const common = {
    numBatches: 1,
    batchSize: 6,
    groups: 3,
    eta0: 0.05,
    weights: { cls: 1, contr: 0.5, tv: 2, ent: 0 },
    normalization: { mean: [0.2], std: [0.5] },
    progress: false as const,
    seed: 3,
  };
  const s0 = await synthesize(logitsGradOracle(teacher), { ...common, steps: 0 });
  const s1 = await synthesize(logitsGradOracle(teacher), { ...common, steps: 1 });
  // Recompute the step by hand from u0 (teacher space) and the target classes.
  const u0 = tf.tensor4d(s0.x, [6, 4, 4, 1]);
  const x0 = tf.div(tf.sub(u0, 0.2), 0.5);
  const du = tf.grad((u: tf.Tensor) =>
    logitsObjective(teacher.apply(u) as tf.Tensor2D, s0.targetClass, 3, common.weights)
  )(u0);
  const x1 = tf.sub(x0, tf.mul(tf.add(tf.mul(du, 0.5), tf.mul(lossTvGrad(x0), 2)), 0.05));
  const u1 = tf.add(tf.mul(x1, 0.5), 0.2).dataSync();
  assert.deepEqual(s1.targetClass, s0.targetClass);
  for (let i = 0; i < u1.length; i++) close(s1.x[i], u1[i], 1e-5, `u1[${i}]`);
  teacher.dispose();
});

Deno.test("synthesize: checkpoints per batch and resumes to the same set", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cake_ckpt_" });
  try {
    const teacher = tinyTeacher([2], 2, 4);
    const opts = {
      dataset: "two-moons" as const,
      numBatches: 3,
      batchSize: 4,
      steps: 3,
      progress: false,
      cacheDir: dir,
      langevin: true,
    };
    const full = await synthesize(logitsGradOracle(teacher), { ...opts, cacheDir: undefined });
    // "Interrupted" run: only the first 2 batches' files survive.
    await synthesize(logitsGradOracle(teacher), opts);
    await Deno.remove(`${dir}/batch-00002.json`);
    const o = logitsGradOracle(teacher);
    const resumed = await synthesize(o, opts);
    assert.equal(resumed.stats.batchesResumed, 2);
    assert.equal(resumed.stats.batchesComputed, 1);
    assert.equal(resumed.ledger.totals.images.backward, 4 * 3); // only the recomputed batch
    assert.deepEqual(resumed.passes, full.passes);
    assert.deepEqual(resumed.x, full.x);
    assert.deepEqual(resumed.targets, full.targets);
    await assert.rejects(
      () => synthesize(logitsGradOracle(teacher), { ...opts, steps: 5 }),
      /different settings/,
    );
    teacher.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("naive synthesis: CE only, constant η, same noise as CAKE", async () => {
  const teacher = tinyTeacher([2], 2, 6);
  const opts = {
    dataset: "two-moons" as const,
    numBatches: 3,
    batchSize: 4,
    steps: 2,
    progress: false,
    seed: 1,
  };
  const naive = await synthesizeNaive(logitsGradOracle(teacher), { ...opts, weights: { contr: 5 } });
  assert.equal(naive.method, "naive");
  assert.equal(naive.options.weights.contr, 0);
  assert.equal(naive.options.decay, "none");
  assert.ok(naive.eta.every((e) => e === naive.eta[0]));
  assert.ok(naive.ledger.byPhase["naive.synth"].images.backward === 24);
  // Same seed, no contrastive term and no decay in CAKE → identical sets.
  const cake = await synthesize(logitsGradOracle(teacher), { ...opts, weights: { contr: 0 }, decay: "none" });
  assert.deepEqual(naive.x, cake.x);
  teacher.dispose();
});

Deno.test("conditional generator: learns to hit the target class through the oracle; teacher frozen", async () => {
  const teacher = tinyTeacher([2], 2, 8);
  const before = teacher.getWeights().map((w) => w.dataSync().slice());
  const o = logitsGradOracle(teacher);
  const set = await synthesizeWithGenerator(o, {
    steps: 150,
    batchSize: 16,
    lr: 1e-2,
    numSamples: 40,
    progress: false,
  });
  assert.equal(set.method, "generator");
  assert.deepEqual(set.shape, [40, 2]);
  assert.equal(set.targets.length, 80);
  assert.ok(set.history[0].ce > set.history.at(-1)!.ce, JSON.stringify(set.history));
  let hit = 0;
  for (let i = 0; i < 40; i++) if (set.teacherClass[i] === set.targetClass[i]) hit++;
  assert.ok(hit >= 36, `hit ${hit}/40`);
  assert.equal(set.ledger.byPhase["generator.train"].images.forward, 150 * 32);
  assert.equal(set.ledger.byPhase["generator.train.final"].images.forward, 40);
  teacher.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), before[i]));
  set.generator.dispose();
  teacher.dispose();
});

Deno.test("student split: 99/1, soft or hard targets, seeded", () => {
  const n = 200;
  const set = {
    method: "cake" as const,
    x: Float32Array.from({ length: 2 * n }, (_, i) => i),
    shape: [n, 2],
    targets: Float32Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 1 : 0) * (i % 7)),
    numClasses: 2,
    targetClass: new Int32Array(n),
    teacherClass: Int32Array.from({ length: n }, (_, i) => i % 2),
    ledger: new (class {})() as never,
  };
  const a = splitSynthetic(set, 0.01, 4);
  assert.equal(a.train.shape[0], 198);
  assert.equal(a.val.shape[0], 2);
  assert.equal(a.train.targets!.length, 396);
  // Rows stay aligned: row i came from j = x[2i]/2, whose second target is (2j+1) % 7.
  for (let i = 0; i < 198; i++) assert.equal(a.train.targets![2 * i + 1], (a.train.x[2 * i] + 1) % 7);
  const h = splitSynthetic(set, 0.01, 4, true);
  assert.equal(h.train.targets, undefined);
  for (let i = 0; i < 198; i++) assert.equal(h.train.y![i], (h.train.x[2 * i] / 2) % 2);
  assert.deepEqual(splitSynthetic(set, 0.01, 4).train.x, a.train.x);
});
