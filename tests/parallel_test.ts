import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert";
import { initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { argmaxRows, ModelPool } from "../lib/parallel/pool.ts";
import { Replica } from "../lib/parallel/replica.ts";
import { Rng } from "../lib/util/rng.ts";
import type { LossSpec } from "../lib/learn/losses.ts";
import type { OptimizerConfig } from "../lib/learn/optim.ts";

const SPEC: ModelSpec = { name: "mlp", inputShape: [6], numClasses: 3, options: { hidden: 12, depth: 1 } };

function toyData(n: number, seed: number) {
  const rng = new Rng(seed);
  const x = rng.fillUniform(new Float32Array(n * 6));
  const y = Int32Array.from({ length: n }, () => rng.int(3));
  const targets = rng.fillNormal(new Float32Array(n * 3), 0, 3);
  return { x, y, targets, shape: [n, 6] };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("pool inference equals the in-process model (cpu)", async () => {
  await initBackend("cpu");
  const model = buildModel(SPEC, 3);
  const local = new Replica(model);
  const pool = await ModelPool.create(SPEC, local.getWeights(), {
    workers: 2,
    backend: "cpu",
    minPerWorker: 4,
  });
  try {
    const { x } = toyData(37, 1);
    const z = await pool.predictLogits(x, 37);
    const ref = local.predictLogits(x, 37);
    assert.deepStrictEqual(z.length, 37 * 3);
    assert(maxAbsDiff(z, ref) < 1e-6, `max diff ${maxAbsDiff(z, ref)}`);
    assert.deepStrictEqual(Array.from(await pool.predictLabels(x, 37)), Array.from(argmaxRows(ref, 37)));
    assert.deepStrictEqual((await pool.predictLogits(x.slice(0, 6), 1)).length, 3);
  } finally {
    pool.close();
    model.dispose();
  }
});

for (
  const [loss, opt] of [
    [{ kind: "kd-db3", temperature: 20 }, { kind: "adam", lr: 1e-2 }],
    [{ kind: "ce" }, { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 1e-3 }],
  ] as [LossSpec, OptimizerConfig][]
) {
  Deno.test(`data-parallel steps keep replicas identical and match one process (${loss.kind}, ${opt.kind})`, async () => {
    await initBackend("cpu");
    const data = toyData(64, 2);
    const model = buildModel(SPEC, 5);
    const local = new Replica(model);
    const w0 = local.getWeights();
    local.configure(loss, opt);
    const pool = await ModelPool.create(SPEC, w0, { workers: 2, backend: "cpu" });
    try {
      await pool.setTrainData(data);
      await pool.configureTraining(loss, opt);
      const rng = new Rng(9);
      for (let step = 0; step < 4; step++) {
        const idx = rng.permutation(64).slice(0, step === 3 ? 17 : 24); // odd last batch
        const lossPool = await pool.trainStep(idx, { lr: opt.lr });
        const batch = {
          x: new Float32Array(idx.length * 6),
          shape: [idx.length, 6],
          y: Int32Array.from(idx, (j) => data.y[j]),
          targets: new Float32Array(idx.length * 3),
        };
        idx.forEach((j, i) => {
          batch.x.set(data.x.subarray(j * 6, j * 6 + 6), i * 6);
          batch.targets.set(data.targets.subarray(j * 3, j * 3 + 3), i * 3);
        });
        const { loss: lossLocal, grads } = local.gradients(batch, idx.length);
        local.apply(grads, { lr: opt.lr });
        assert(
          Math.abs(lossPool - lossLocal) < 1e-4 * Math.max(1, Math.abs(lossLocal)),
          `${lossPool} vs ${lossLocal}`,
        );
      }
      const [a, b] = await pool.allWeights();
      a.forEach((w, i) => assert.deepStrictEqual(w, b[i], `replicas differ in weight ${i}`));
      const ref = local.getWeights();
      a.forEach((w, i) =>
        assert(maxAbsDiff(w, ref[i]) < 1e-5, `weight ${i} off by ${maxAbsDiff(w, ref[i])}`)
      );
      const sp = await pool.optimizerState();
      assert.deepStrictEqual(sp.step, 4);
    } finally {
      pool.close();
      model.dispose();
    }
  });
}

Deno.test("pool errors are reported, closed pools refuse work", async () => {
  await initBackend("cpu");
  const pool = await ModelPool.create(SPEC, undefined, { workers: 1, backend: "cpu" });
  try {
    let msg = "";
    await pool.trainStep(new Int32Array([0]), { lr: 1 }).catch((e) => (msg = String(e)));
    assert(msg.includes("configureTraining"), msg);
  } finally {
    pool.close();
  }
  let closed = "";
  await pool.predictLogits(new Float32Array(6), 1).catch((e) => (closed = String(e)));
  assert(closed.includes("closed"));
  tf.disposeVariables();
});

Deno.test("a program that never closes its pool still exits", async () => {
  const code = `import { ModelPool } from "./lib/parallel/pool.ts";
    const pool = await ModelPool.create(${JSON.stringify(SPEC)}, undefined, { workers: 2, backend: "cpu" });
    console.log((await pool.predictLabels(new Float32Array(12), 2)).length);`;
  const root = new URL("..", import.meta.url).pathname;
  // The signal only guards against a hang; it does not time anything.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  assert.strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^2\b/m);
});

Deno.test("BatchNorm model: moving statistics averaged over shards, replicas stay identical", async () => {
  await initBackend("cpu");
  const spec: ModelSpec = { name: "db3-alexnet-quarter", inputShape: [32, 32, 3], numClasses: 10 };
  const rng = new Rng(3);
  const n = 8;
  const data = {
    x: rng.fillUniform(new Float32Array(n * 32 * 32 * 3)),
    shape: [n, 32, 32, 3],
    y: Int32Array.from({ length: n }, () => rng.int(10)),
  };
  // wasm in the workers: cpu's conv gradients are too slow for a test (wasm kernels are checked against cpu
  // in tests/kernels_test.ts); replicas must agree bit for bit whatever the backend.
  const pool = await ModelPool.create(spec, undefined, { workers: 2, backend: "wasm", seed: 1 });
  const local = buildModel(spec, 1);
  const numTrainable = local.trainableWeights.length;
  local.dispose();
  try {
    const before = await pool.getWeights();
    await pool.setTrainData(data);
    await pool.configureTraining({ kind: "ce" }, { kind: "sgd", lr: 0.01, momentum: 0.9 });
    await pool.trainStep(Int32Array.from({ length: n }, (_, i) => i), { lr: 0.01 });
    const [a, b] = await pool.allWeights();
    a.forEach((w, i) => assert.deepStrictEqual(w, b[i], `replicas differ in weight ${i}`));
    // The BN moving statistics (non-trainable, after the trainable weights) moved.
    assert(a.length > numTrainable);
    assert(a.slice(numTrainable).every((w, i) => maxAbsDiff(w, before[numTrainable + i]) > 0));
  } finally {
    pool.close();
  }
});
