/**
 * Native inference engine against the tfjs cpu backend: logits within 1e-4·max(1, |z|), labels equal
 * to the cpu argmax (except near-ties, top-2 gap < 1e-5), for every supported kit network, on batch
 * sizes that exercise thread splitting and tails. These tests need a C++ compiler (g++ is on the dev
 * machine and CI): a missing compiler fails them, unless BKD_NATIVE=0 is set on purpose.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import assert from "node:assert";
import { initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { buildNative, nativeEnabled } from "../lib/native/build.ts";
import { buildPlan, UnsupportedModelError } from "../lib/native/plan.ts";
import { NativeFrozenNet } from "../lib/native/frozen_net.ts";
import { NativePredictor } from "../lib/native/predictor.ts";
import { engineInfo, teacherPredictor } from "../lib/native/teacher_predictor.ts";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { ModelPool } from "../lib/parallel/pool.ts";
import { Rng } from "../lib/util/rng.ts";

const disabled = !nativeEnabled();
const opts = { ignore: disabled, sanitizeResources: false, sanitizeOps: false };

/** Randomise every weight (seeded); batch-norm moving statistics get non-trivial values. */
function randomizeWeights(model: tfl.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  for (const layer of model.layers) {
    const ws = layer.weights;
    if (ws.length === 0) continue;
    const isBn = layer.getClassName() === "BatchNormalization";
    const values = layer.getWeights().map((t, i) => {
      const name = ws[i].originalName ?? ws[i].name;
      const a = new Float32Array(t.size);
      if (!isBn) {
        // Uniform in ±√(3/fan-in): activations keep their scale through deep stacks.
        const fanIn = t.shape.length > 1 ? t.size / t.shape[t.shape.length - 1] : 16;
        const r = Math.sqrt(3 / fanIn) * 1.5;
        rng.fillUniform(a, -r, r);
      } else if (name.includes("gamma")) rng.fillUniform(a, 0.5, 1.5);
      else if (name.includes("beta")) rng.fillUniform(a, -0.3, 0.3);
      else if (name.includes("moving_mean")) rng.fillUniform(a, -0.3, 0.3);
      else if (name.includes("moving_variance")) rng.fillUniform(a, 0.3, 2);
      else throw new Error(`unexpected batch-norm weight ${name}`);
      return tf.tensor(a, t.shape);
    });
    layer.setWeights(values);
    values.forEach((v) => v.dispose());
  }
}

/** `n` inputs in [0, 1], each uniform noise times its own brightness (so labels vary across rows). */
function randomImages(n: number, dim: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = rng.fillUniform(new Float32Array(n * dim));
  for (let i = 0; i < n; i++) {
    const b = rng.uniform();
    for (let j = i * dim; j < (i + 1) * dim; j++) x[j] *= b;
  }
  return x;
}

function cpuLogits(model: tfl.LayersModel, x: Float32Array, n: number, shape: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(x, [n, ...shape])) as tf.Tensor).dataSync() as Float32Array);
}

/** Labels equal the reference argmax except at near-ties. */
function checkLabels(labels: Int32Array, ref: Float32Array, n: number, k: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const row = ref.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let j = 1; j < k; j++) if (row[j] > row[best]) best = j;
    if (labels[i] === best) continue;
    const gap = Math.abs(row[best] - row[labels[i]]);
    assert(gap < 1e-5, `${what}: row ${i} label ${labels[i]} ≠ cpu argmax ${best} (gap ${gap})`);
  }
}

function checkLogits(z: Float32Array, ref: Float32Array, what: string): void {
  assert.strictEqual(z.length, ref.length, `${what}: length`);
  for (let i = 0; i < z.length; i++) {
    const tol = 1e-4 * Math.max(1, Math.abs(ref[i]));
    assert(Math.abs(z[i] - ref[i]) <= tol, `${what}: logit ${i} native ${z[i]} vs cpu ${ref[i]}`);
  }
}

/** Fail loudly when the engine cannot be built here (tests must really run it). */
async function requireEngine(): Promise<void> {
  const b = await buildNative();
  if (!b.ok) {
    throw new Error(
      `native engine unavailable (${b.reason}); install g++ or set BKD_NATIVE=0 to skip deliberately`,
    );
  }
}

const CASES: { spec: ModelSpec; batches: number[] }[] = [
  { spec: { name: "db3-lenet5", inputShape: [28, 28, 1], numClasses: 10 }, batches: [1, 7, 300] },
  { spec: { name: "db3-lenet5-half", inputShape: [28, 28, 1], numClasses: 10 }, batches: [1, 7, 300] },
  { spec: { name: "db3-alexnet-quarter", inputShape: [32, 32, 3], numClasses: 10 }, batches: [1, 7, 300] },
  { spec: { name: "db3-alexnet", inputShape: [32, 32, 3], numClasses: 10 }, batches: [1, 7] },
  { spec: { name: "cake-lenet5", inputShape: [28, 28, 1], numClasses: 10 }, batches: [1, 7, 300] },
  { spec: { name: "cake-cnn", inputShape: [28, 28, 1], numClasses: 10 }, batches: [1, 7, 300] },
  { spec: { name: "mlp", inputShape: [28, 28, 1], numClasses: 10 }, batches: [1, 7, 300] },
  {
    spec: { name: "mlp", inputShape: [2], numClasses: 3, options: { hidden: 20, depth: 2 } },
    batches: [1, 7, 300],
  },
];

for (const { spec, batches } of CASES) {
  Deno.test(
    `native ${spec.name} [${spec.inputShape}] matches the cpu backend (batches ${batches})`,
    opts,
    async () => {
      await initBackend("cpu");
      await requireEngine();
      const model = buildModel(spec, 11);
      randomizeWeights(model, 5);
      const p = await NativePredictor.tryCreate(model, spec, { threads: 2 });
      assert(p.ok, p.ok ? "" : p.reason);
      const native = p.predictor;
      try {
        const dim = spec.inputShape.reduce((a, b) => a * b, 1);
        for (const n of batches) {
          const x = randomImages(n, dim, 100 + n);
          const ref = cpuLogits(model, x, n, spec.inputShape);
          const z = await native.predictLogits(x, n);
          checkLogits(z, ref, `${spec.name} n=${n}`);
          checkLabels(await native.predictLabels(x, n), ref, n, spec.numClasses, `${spec.name} n=${n}`);
        }
      } finally {
        native.close();
        model.dispose();
      }
    },
  );
}

Deno.test(
  "native engine runs a tfl.sequential chain: strides, non-square kernels, no bias, BN folds and affines",
  opts,
  async () => {
    await initBackend("cpu");
    await requireEngine();
    const model = tfl.sequential({
      layers: [
        tfl.layers.zeroPadding2d({ inputShape: [13, 11, 2], padding: [[1, 0], [2, 1]] }),
        tfl.layers.conv2d({
          filters: 37,
          kernelSize: [3, 2],
          strides: [2, 1],
          activation: "relu",
          useBias: false,
        }),
        tfl.layers.maxPooling2d({ poolSize: [2, 3], strides: [1, 2] }),
        tfl.layers.activation({ activation: "relu" }), // after a pool: a standalone relu op
        tfl.layers.batchNormalization({ epsilon: 1e-3 }), // after a relu: a standalone affine op
        tfl.layers.conv2d({ filters: 17, kernelSize: 2 }),
        tfl.layers.batchNormalization({ center: false }), // folds into the conv (no gamma/beta mix-up)
        tfl.layers.activation({ activation: "relu" }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 33, useBias: false }),
        tfl.layers.batchNormalization({ scale: false }), // folds into the dense
        tfl.layers.dropout({ rate: 0.5 }),
        tfl.layers.activation({ activation: "linear" }),
        tfl.layers.dense({ units: 5, activation: "relu" }),
        tfl.layers.dense({ units: 4 }),
      ],
    });
    randomizeWeights(model, 8);
    const spec: ModelSpec = { name: "mlp", inputShape: [13, 11, 2], numClasses: 4 };
    assert.deepStrictEqual(buildPlan(model).ops, [
      "pad 1,0,2,1",
      "conv 3×2/2×1 2→37 relu",
      "maxpool 2×3/1×2",
      "relu",
      "affine 37",
      "conv 2×2/1×1 37→17 relu",
      "flatten",
      "dense 340→33",
      "dense 33→5 relu",
      "dense 5→4",
    ]);
    const p = (await NativePredictor.create(model, spec, { threads: 3 }))!;
    try {
      for (const n of [1, 7, 300]) {
        const x = randomImages(n, 13 * 11 * 2, n);
        checkLogits(
          await p.predictLogits(x, n),
          cpuLogits(model, x, n, spec.inputShape),
          `sequential n=${n}`,
        );
      }
    } finally {
      p.close();
      model.dispose();
    }
  },
);

Deno.test("native plan names the layer and the reason for unsupported configurations", async () => {
  await initBackend("cpu");
  const same = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, padding: "same", name: "c" }),
    ],
  });
  assert.throws(() => buildPlan(same), /layer c \(Conv2D\): padding same/);
  const tanh = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [4], units: 2, activation: "tanh", name: "d" })],
  });
  assert.throws(() => buildPlan(tanh), /layer d \(Dense\): activation tanh/);
  const rank3 = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [4, 4, 1], units: 2, name: "e" })],
  });
  assert.throws(() => buildPlan(rank3), /layer e \(Dense\): needs a flat input/);
  [same, tanh, rank3].forEach((m) => m.dispose());
});

Deno.test("native plan folds batch norm into the conv before it and fuses ReLU", async () => {
  await initBackend("cpu");
  const spec: ModelSpec = { name: "db3-alexnet-quarter", inputShape: [32, 32, 3], numClasses: 10 };
  const model = buildModel(spec, 1);
  try {
    const plan = buildPlan(model);
    assert.deepStrictEqual(plan.ops.slice(0, 3), [
      "pad 1,1,1,1",
      "conv 3×3/2×2 3→16 relu",
      "maxpool 2×2/2×2",
    ]);
    // fc → ReLU → dropout → BN: BN cannot fold into a ReLU'd dense, so it stays an affine op.
    assert(plan.ops.includes("dense 256→1024 relu"), plan.ops.join("; "));
    assert(plan.ops.includes("affine 1024"), plan.ops.join("; "));
    assert.strictEqual(plan.outputSize, 10);
  } finally {
    model.dispose();
  }
});

Deno.test("native engine thread counts give identical results; threads > batch is fine", opts, async () => {
  await initBackend("cpu");
  await requireEngine();
  const spec: ModelSpec = { name: "db3-lenet5-half", inputShape: [28, 28, 1], numClasses: 10 };
  const model = buildModel(spec, 2);
  const ps = await Promise.all([1, 2, 5].map((threads) => NativePredictor.create(model, spec, { threads })));
  try {
    const n = 61;
    const x = new Rng(3).fillUniform(new Float32Array(n * 784));
    const outs = await Promise.all(ps.map((p) => p!.predictLogits(x, n)));
    assert.deepStrictEqual(outs[1], outs[0]);
    assert.deepStrictEqual(outs[2], outs[0]);
    // Overlapping calls on one predictor are serialised by the engine, not corrupted.
    const again = await Promise.all([ps[1]!.predictLogits(x, n), ps[1]!.predictLogits(x, n)]);
    assert.deepStrictEqual(again[0], outs[0]);
    assert.deepStrictEqual(again[1], outs[0]);
    assert.strictEqual(ps[1]!.size, 2);
    const d = ps[1]!.describe();
    assert.strictEqual(d.engine, "native");
    assert.strictEqual(d.threads, 2);
    assert.match(d.label, /^native \(.+, 2 threads\)$/);
  } finally {
    ps.forEach((p) => p?.close());
    model.dispose();
  }
});

Deno.test("native predictor rejects a wrong input length with a clear error", opts, async () => {
  await initBackend("cpu");
  await requireEngine();
  const spec: ModelSpec = { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 };
  const model = buildModel(spec, 1);
  const p = (await NativePredictor.create(model, spec))!;
  try {
    await assert.rejects(
      () => p.predictLabels(new Float32Array(785), 1),
      /x has 785 floats but n = 1 inputs of shape \[28,28,1\] need 1 × 784 = 784/,
    );
    await assert.rejects(() => p.predictLogits(new Float32Array(784), 2), /need 2 × 784 = 1568/);
    await assert.rejects(() => p.predictLabels(new Float32Array(0), -1), /non-negative integer/);
    assert.strictEqual((await p.predictLabels(new Float32Array(0), 0)).length, 0);
    // A subarray view is read at its offset, not from the start of its buffer.
    const x = new Rng(9).fillUniform(new Float32Array(3 * 784));
    const whole = await p.predictLogits(x, 3);
    assert.deepStrictEqual(await p.predictLogits(x.subarray(784), 2), whole.subarray(10));
    p.close();
    await assert.rejects(() => p.predictLabels(x, 3), /closed/);
  } finally {
    p.close();
    model.dispose();
  }
});

Deno.test(
  "native labels for NaN inputs are deterministic: NaN logits never win, all-NaN rows get 0",
  opts,
  async () => {
    await initBackend("cpu");
    await requireEngine();
    const spec: ModelSpec = { name: "db3-lenet5-half", inputShape: [28, 28, 1], numClasses: 10 };
    const model = buildModel(spec, 4);
    const p = (await NativePredictor.create(model, spec))!;
    try {
      const x = new Rng(1).fillUniform(new Float32Array(3 * 784));
      x.fill(NaN, 0, 784); // image 0: all NaN
      for (let i = 784; i < 2 * 784; i += 7) x[i] = NaN; // image 1: some NaN pixels
      const z = await p.predictLogits(x, 3);
      assert(z.subarray(0, 10).every(Number.isNaN), `all-NaN image gives NaN logits: ${z.subarray(0, 10)}`);
      const labels = await p.predictLabels(x, 3);
      assert.strictEqual(labels[0], 0);
      // Image 1: the first maximum among its non-NaN logits (0 if none).
      let best = -1;
      for (let j = 0; j < 10; j++) {
        const v = z[10 + j];
        if (!Number.isNaN(v) && (best < 0 || v > z[10 + best])) best = j;
      }
      assert.strictEqual(labels[1], Math.max(best, 0));
      assert.deepStrictEqual(await p.predictLabels(x, 3), labels);
      // The label oracle refuses NaN pixels before the engine sees them, naming the first image.
      await assert.rejects(
        () => labelOracle(p).labels(x, 3, { phase: "nan" }),
        /image 0 of the request has a non-finite pixel/,
      );
    } finally {
      p.close();
      model.dispose();
    }
  },
);

Deno.test(
  "native engine reports unsupported layers by name (resnet: Add, then served by seq_train; vit: pool)",
  opts,
  async () => {
    await initBackend("cpu");
    const spec: ModelSpec = {
      name: "resnet",
      inputShape: [16, 16, 3],
      numClasses: 10,
      options: { depth: 4, width: 4 },
    };
    const model = buildModel(spec, 1);
    try {
      assert.throws(
        () => buildPlan(model),
        (e: unknown) => e instanceof UnsupportedModelError && /Add/.test(e.message),
      );
      const r = await NativePredictor.tryCreate(model, spec);
      assert(!r.ok);
      assert.match(r.reason, /layer \S+ \(Add\) is not supported/);
      let why = "";
      assert.strictEqual(
        await NativePredictor.create(model, spec, { onUnavailable: (s) => (why = s) }),
        undefined,
      );
      assert.match(why, /\(Add\)/);
      // The residual net is served by the training engine in inference mode (tests/native_input_grad_test.ts
      // checks its answers), under auto and native alike.
      for (const engine of ["auto", "native"] as const) {
        const t = await teacherPredictor(model, spec, { workers: 1, engine });
        try {
          assert(t instanceof NativeFrozenNet);
          assert.strictEqual(engineInfo(t).engine, "native");
        } finally {
          t.close();
        }
      }
    } finally {
      model.dispose();
    }
    const vitSpec: ModelSpec = { name: "vit4", inputShape: [16, 16, 3], numClasses: 10 };
    const vit = buildModel(vitSpec, 1);
    try {
      const r = await NativePredictor.tryCreate(vit, vitSpec);
      assert(!r.ok && /not supported/.test(r.reason), r.ok ? "supported?" : r.reason);
      // Neither native engine takes a ViT: auto falls back to the pool and records both reasons; "native"
      // refuses.
      const t = await teacherPredictor(vit, vitSpec, { workers: 1, engine: "auto" });
      try {
        assert(t instanceof ModelPool);
        const info = engineInfo(t);
        assert.strictEqual(info.engine, "pool");
        assert.match(
          info.engine === "pool" ? info.nativeUnavailable ?? "" : "",
          /not supported.*seq_train: /,
        );
      } finally {
        t.close();
      }
      await assert.rejects(
        () => teacherPredictor(vit, vitSpec, { engine: "native" }),
        /native engine unavailable/,
      );
    } finally {
      vit.dispose();
    }
  },
);

Deno.test("teacherPredictor: native when available, a ModelPool with BKD_NATIVE=0 or engine pool", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await initBackend("cpu");
  const spec: ModelSpec = { name: "db3-lenet5-fifth", inputShape: [28, 28, 1], numClasses: 10 };
  const model = buildModel(spec, 3);
  const x = new Rng(2).fillUniform(new Float32Array(40 * 784));
  const ref = cpuLogits(model, x, 40, spec.inputShape);
  const old = Deno.env.get("BKD_NATIVE");
  try {
    if (!disabled) {
      await requireEngine();
      const t = await teacherPredictor(model, spec, { workers: 2 });
      try {
        assert(t instanceof NativePredictor, "auto picks the native engine");
        assert.strictEqual(engineInfo(t).engine, "native");
        checkLabels(await t.predictLabels(x, 40), ref, 40, 10, "auto");
      } finally {
        t.close();
      }
    }
    Deno.env.set("BKD_NATIVE", "0");
    const r = await NativePredictor.tryCreate(model, spec);
    assert(!r.ok && /BKD_NATIVE=0/.test(r.reason));
    for (const engine of ["auto", "pool"] as const) {
      const t = await teacherPredictor(model, spec, { workers: 1, engine });
      try {
        assert(t instanceof ModelPool, `${engine} with BKD_NATIVE=0 gives a ModelPool`);
        const info = engineInfo(t);
        assert.match(info.label, /pool \(1 worker\)/);
        checkLabels(await t.predictLabels(x, 40), ref, 40, 10, engine);
      } finally {
        t.close();
      }
    }
  } finally {
    if (old === undefined) Deno.env.delete("BKD_NATIVE");
    else Deno.env.set("BKD_NATIVE", old);
    model.dispose();
  }
});

Deno.test(
  "native build: cached library is reused; a broken compiler is 'unavailable', not a throw",
  opts,
  async () => {
    const a = await buildNative();
    assert(a.ok, a.ok ? "" : a.reason);
    const dir = await Deno.makeTempDir();
    try {
      const b = await buildNative({ cacheDir: dir });
      assert(b.ok && b.compiled, "compiles into a fresh folder");
      const c = await buildNative({ cacheDir: dir });
      assert(c.ok && c.path === b.path);
      const files = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.deepStrictEqual(files.filter((f) => f.endsWith(".so")).length, 1, files.join(", "));
      assert(!files.some((f) => f.includes(".tmp-")), "no temp files left");
      const bad = await buildNative({ cacheDir: dir, compiler: "bkd-no-such-compiler" });
      assert(!bad.ok && /does not run/.test(bad.reason), bad.ok ? "" : bad.reason);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
