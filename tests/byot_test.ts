/**
 * Teachers from files: a model "exported from another framework" (the test writes model.json and
 * the weight shard itself, as tensorflowjs_converter would for a channels-first Keras model trained
 * on [0,255] inputs normalised per channel), loaded through the input adapters, must predict what a
 * hand-written float64 reference of that network predicts, at every access level.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { buildModel } from "../lib/models/registry.ts";
import { labelOracle, logitsGradOracle, probsOracle } from "../lib/oracle/oracle.ts";
import { exportChannelsFirst } from "../lib/teachers/foreign.ts";
import {
  adaptArray,
  adaptTensor,
  loadTeacher,
  resolveAdapter,
  saveTeacherFolder,
  TeacherFileError,
  TeacherShapeError,
} from "../lib/teachers/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { BYOT_SETTINGS, byotNote, byotSettings, byotStudentSettings } from "../lib/experiments/byot_spec.ts";
import { db3Settings } from "../lib/experiments/db3.ts";
import { BD_DEFAULTS } from "../lib/db3/bd.ts";
import { settingsNote } from "../lib/experiments/settings.ts";

await tf.setBackend("cpu");

// The exported network: NCHW input [3, 5, 5] → conv 3×3 (2 filters, valid, relu, channels_first)
// → flatten (C, H, W order, as PyTorch's view) → dense 3. Trained on u = 255·x normalised per channel.
const C = 3, H = 5, W = 5, F = 2, KS = 3, OH = H - KS + 1, OW = W - KS + 1, K = 3;
const MEAN = [120, 110, 100], STD = [60, 50, 40];
const rng = new Rng(11);
const rand = (n: number, s: number) =>
  Float64Array.from({ length: n }, () => Math.fround((rng.uniform() * 2 - 1) * s));
const convK = rand(KS * KS * C * F, 0.6); // Keras layout [kh, kw, in, out]
const convB = rand(F, 0.2);
const fcW = rand(F * OH * OW * K, 0.8); // [in, out]
const fcB = rand(K, 0.2);

/** Float64 reference logits of one NHWC [0,1] image, straight from the definition. */
function referenceLogits(x: Float32Array, off: number): number[] {
  const v = (c: number, i: number, j: number) => (255 * x[off + (i * W + j) * C + c] - MEAN[c]) / STD[c];
  const flat: number[] = [];
  for (let f = 0; f < F; f++) {
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) {
        let s = convB[f];
        for (let di = 0; di < KS; di++) {
          for (let dj = 0; dj < KS; dj++) {
            for (let c = 0; c < C; c++) s += v(c, i + di, j + dj) * convK[((di * KS + dj) * C + c) * F + f];
          }
        }
        flat.push(Math.max(0, s));
      }
    }
  }
  return Array.from({ length: K }, (_, k) => flat.reduce((a, h, p) => a + h * fcW[p * K + k], fcB[k]));
}

const argmax = (z: number[]) => z.indexOf(Math.max(...z));

/** Write the folder an exporter would: model.json (Keras topology, converter manifest) + one shard. */
async function writeExportedModel(dir: string, opts: { softmax?: boolean } = {}) {
  await Deno.mkdir(dir, { recursive: true });
  const layer = (cls: string, config: Record<string, unknown>) => ({ class_name: cls, config });
  const topology = {
    keras_version: "2.15.0",
    backend: "tensorflow",
    model_config: layer("Sequential", {
      name: "exported_net",
      layers: [
        layer("InputLayer", { batch_input_shape: [null, C, H, W], dtype: "float32", name: "input_1" }),
        layer("Conv2D", {
          name: "conv",
          trainable: true,
          dtype: "float32",
          filters: F,
          kernel_size: [KS, KS],
          strides: [1, 1],
          padding: "valid",
          data_format: "channels_first",
          dilation_rate: [1, 1],
          activation: "relu",
          use_bias: true,
        }),
        layer("Flatten", {
          name: "flatten",
          trainable: true,
          dtype: "float32",
          data_format: "channels_last",
        }),
        layer("Dense", {
          name: "fc",
          trainable: true,
          dtype: "float32",
          units: K,
          activation: opts.softmax ? "softmax" : "linear",
          use_bias: true,
        }),
      ],
    }),
  };
  const weights = [
    { name: "conv/kernel", shape: [KS, KS, C, F], dtype: "float32", data: convK },
    { name: "conv/bias", shape: [F], dtype: "float32", data: convB },
    { name: "fc/kernel", shape: [F * OH * OW, K], dtype: "float32", data: fcW },
    { name: "fc/bias", shape: [K], dtype: "float32", data: fcB },
  ];
  const total = weights.reduce((a, w) => a + w.data.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  let o = 0;
  for (const w of weights) for (const v of w.data) view.setFloat32(4 * o++, v, true);
  await Deno.writeFile(`${dir}/group1-shard1of1.bin`, bytes);
  await Deno.writeTextFile(
    `${dir}/model.json`,
    JSON.stringify({
      format: "layers-model",
      generatedBy: "keras v2.15.0",
      convertedBy: "TensorFlow.js Converter v4.22.0",
      modelTopology: topology,
      weightsManifest: [{
        paths: ["group1-shard1of1.bin"],
        weights: weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
      }],
    }),
  );
}

function images(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * H * W * C }, () => r.uniform());
}

const ADAPTER = { layout: "NCHW", range: [0, 255], mean: MEAN, std: STD } as const;

Deno.test("byot: an exported NCHW [0,255] mean/std model predicts its reference labels at every access level", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-" });
  try {
    await writeExportedModel(dir);
    const n = 64;
    const x = images(n, 3);
    const t = await loadTeacher(dir, { input: ADAPTER, expect: { shape: [n, H, W, C], name: "toy" } });
    assert.deepEqual(t.inputShape, [H, W, C]);
    assert.equal(t.numClasses, K);
    assert.equal(t.source.generatedBy, "keras v2.15.0");
    assert.deepEqual(t.source.modelInputShape, [C, H, W]);
    const ref = Array.from({ length: n }, (_, i) => referenceLogits(x, i * H * W * C));

    // label access
    const lab = await labelOracle(t.model).labels(x, n, { phase: "t" });
    let clearMargins = 0;
    for (let i = 0; i < n; i++) {
      const z = [...ref[i]].sort((a, b) => b - a);
      if (z[0] - z[1] < 1e-3) continue; // a float32 near-tie may go either way
      clearMargins++;
      assert.equal(lab.labels[i], argmax(ref[i]), `image ${i}`);
    }
    assert.ok(clearMargins > n * 0.9, `${clearMargins} clear margins`);
    assert.ok(new Set(lab.labels).size > 1, "the test images should not all get one class");

    // probs access: softmax of the reference logits
    const p = await probsOracle(t.model).probs(x, n, { phase: "t" });
    for (let i = 0; i < n; i++) {
      const m = Math.max(...ref[i]);
      const e = ref[i].map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < K; k++) assert.ok(Math.abs(p[i * K + k] - e[k] / s) < 1e-4, `p[${i},${k}]`);
    }

    // logits+grad access: d logit_0 / dx against central differences of the float64 reference
    const g = logitsGradOracle(t.model);
    const x0 = x.slice(0, H * W * C);
    const { dx, logits } = await g.valueAndGrad(
      tf.tensor(x0, [1, H, W, C]),
      (z) => tf.sum(tf.slice(z, [0, 0], [1, 1])) as tf.Scalar,
      "t",
    );
    const grad = await dx.data();
    tf.dispose([dx, logits]);
    const eps = 1e-4;
    for (let k = 0; k < x0.length; k += 7) {
      const a = Float32Array.from(x0), b = Float32Array.from(x0);
      a[k] += eps;
      b[k] -= eps;
      const fd = (referenceLogits(a, 0)[0] - referenceLogits(b, 0)[0]) / (2 * eps);
      assert.ok(Math.abs(grad[k] - fd) < 1e-2 * Math.max(1, Math.abs(fd)), `dx[${k}] ${grad[k]} vs ${fd}`);
    }
    t.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("byot: shape mismatches name both shapes; files name themselves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-" });
  try {
    await writeExportedModel(dir);
    await assert.rejects(
      () => loadTeacher(dir, { input: ADAPTER, expect: { shape: [10, 28, 28, 1], name: "mnist" } }),
      (e: Error) =>
        e instanceof TeacherShapeError && /\[3, 5, 5\]/.test(e.message) && /\[28, 28, 1\]/.test(e.message),
    );
    // Forgetting the layout: the model wants [3,5,5] but the images are [5,5,3].
    await assert.rejects(
      () => loadTeacher(dir, { expect: { shape: [10, H, W, C], name: "toy" } }),
      (e: Error) =>
        e instanceof TeacherShapeError && /\[3, 5, 5\]/.test(e.message) && /\[5, 5, 3\]/.test(e.message),
    );
    await Deno.remove(`${dir}/group1-shard1of1.bin`);
    await assert.rejects(
      () => loadTeacher(dir, { input: ADAPTER }),
      (e: Error) =>
        e instanceof TeacherFileError && /group1-shard1of1\.bin/.test(e.message) && /missing/.test(e.message),
    );
    await assert.rejects(
      () => loadTeacher(`${dir}/nowhere`),
      (e: Error) => e instanceof TeacherFileError && /model\.json/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("byot: a softmax-ending model declared output probs keeps its probabilities and labels", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-" });
  try {
    await writeExportedModel(dir, { softmax: true });
    const n = 16, x = images(n, 5);
    const t = await loadTeacher(dir, { input: ADAPTER, output: "probs" });
    const p = await probsOracle(t.model).probs(x, n, { phase: "t" });
    const lab = await labelOracle(t.model).labels(x, n, { phase: "t" });
    for (let i = 0; i < n; i++) {
      const z = referenceLogits(x, i * H * W * C);
      const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < K; k++) assert.ok(Math.abs(p[i * K + k] - e[k] / s) < 1e-4);
      const sorted = [...z].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] > 1e-3) assert.equal(lab.labels[i], argmax(z));
    }
    t.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("byot: array and tensor adapters agree (NCHW, range, mean/std)", () => {
  const a = resolveAdapter(ADAPTER, C);
  const n = 4, x = images(n, 9);
  const arr = adaptArray(x, n, [H, W, C], a);
  const ten = adaptTensor(tf.tensor(x, [n, H, W, C]), a);
  assert.deepEqual(ten.shape, [n, C, H, W]);
  const tv = ten.dataSync();
  ten.dispose();
  for (let i = 0; i < arr.length; i++) assert.ok(Math.abs(arr[i] - tv[i]) < 1e-5, `element ${i}`);
  // element (image 1, channel 2, row 3, col 4) by hand
  const v = (255 * x[1 * H * W * C + (3 * W + 4) * C + 2] - MEAN[2]) / STD[2];
  assert.ok(Math.abs(arr[1 * C * H * W + 2 * H * W + 3 * W + 4] - v) < 1e-4);
});

Deno.test("byot: a kit network saved as a TF.js LayersModel folder loads back with the same labels", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-" });
  try {
    const m = buildModel(
      { name: "mlp", inputShape: [6], numClasses: 4, options: { hidden: 8, depth: 2 } },
      3,
    );
    await saveTeacherFolder(m, dir);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["model.json", "weights.bin"]);
    const t = await loadTeacher(dir, { expect: [6] });
    const n = 50, r = new Rng(2);
    const x = Float32Array.from({ length: n * 6 }, () => r.uniform());
    const a = await labelOracle(m).labels(x, n, { phase: "t" });
    const b = await labelOracle(t.model).labels(x, n, { phase: "t" });
    assert.deepEqual(b.labels, a.labels);
    m.dispose();
    t.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("byot: a kit conv net re-exported PyTorch-style (NCHW, [0,255], mean/std) computes the same logits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-" });
  try {
    const m = buildModel({ name: "db3-lenet5-fifth", inputShape: [16, 16, 3], numClasses: 10 }, 5);
    await saveTeacherFolder(m, `${dir}/nhwc`);
    const input = { layout: "NCHW", range: [0, 255], mean: [120, 100, 80], std: [50, 60, 70] } as const;
    await exportChannelsFirst(`${dir}/nhwc`, `${dir}/nchw`, input);
    const t = await loadTeacher(`${dir}/nchw`, { input, expect: [16, 16, 3] });
    assert.deepEqual(t.source.modelInputShape, [3, 16, 16]);
    const n = 12, r = new Rng(8);
    const x = tf.tensor(Float32Array.from({ length: n * 16 * 16 * 3 }, () => r.uniform()), [n, 16, 16, 3]);
    const [za, zb] = [m.predict(x) as tf.Tensor, t.model.predict(x) as tf.Tensor];
    const [a, b] = [za.dataSync(), zb.dataSync()];
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) < 1e-4 * Math.max(1, Math.abs(a[i])), `logit ${i}`);
    }
    tf.dispose([x, za, zb]);
    m.dispose();
    t.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A GraphModel folder (GraphDef JSON) for logits = x·W + b, x of shape [4]. */
async function writeGraphModel(dir: string, w: number[], b: number[]) {
  await Deno.mkdir(dir, { recursive: true });
  const dim = (...s: number[]) => ({ dim: s.map((v) => ({ size: String(v) })) });
  const f32 = { type: "DT_FLOAT" };
  const konst = (name: string, shape: number[]) => ({
    name,
    op: "Const",
    attr: { dtype: f32, value: { tensor: { dtype: "DT_FLOAT", tensorShape: dim(...shape) } } },
  });
  const nodes = [
    { name: "x", op: "Placeholder", attr: { dtype: f32, shape: { shape: dim(-1, 4) } } },
    konst("w", [4, 3]),
    konst("b", [3]),
    {
      name: "mm",
      op: "MatMul",
      input: ["x", "w"],
      attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } },
    },
    { name: "logits", op: "BiasAdd", input: ["mm", "b"], attr: { T: f32, data_format: { s: btoa("NHWC") } } },
  ];
  const bytes = new Uint8Array(new Float32Array([...w, ...b]).buffer);
  await Deno.writeFile(`${dir}/group1-shard1of1.bin`, bytes);
  await Deno.writeTextFile(
    `${dir}/model.json`,
    JSON.stringify({
      format: "graph-model",
      generatedBy: "2.15.0",
      convertedBy: "TensorFlow.js Converter v4.22.0",
      modelTopology: { node: nodes, library: {}, versions: { producer: 1645 } },
      weightsManifest: [{
        paths: ["group1-shard1of1.bin"],
        weights: [{ name: "w", shape: [4, 3], dtype: "float32" }, {
          name: "b",
          shape: [3],
          dtype: "float32",
        }],
      }],
    }),
  );
}

Deno.test("byot: a GraphModel folder loads when tfjs-converter is available, else says what to add", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bkd-byot-graph-" });
  try {
    const w = [1, 0, -1, 0, 1, -1, 0.5, 0.5, 0, -0.5, 0, 1], b = [0, 0, 0.25];
    await writeGraphModel(dir, w, b);
    let t;
    try {
      t = await loadTeacher(dir, { expect: [4] });
    } catch (e) {
      assert.ok(e instanceof TeacherFileError, String(e));
      assert.match(e.message, /GraphModel, which needs @tensorflow\/tfjs-converter/);
      assert.match(e.message, /package\.json/);
      return;
    }
    const n = 20, r = new Rng(4);
    const x = Float32Array.from({ length: n * 4 }, () => r.uniform());
    const lab = await labelOracle(t.model).labels(x, n, { phase: "t" });
    for (let i = 0; i < n; i++) {
      const z = [0, 1, 2].map((k) =>
        b[k] + [0, 1, 2, 3].reduce((a, j) => a + x[i * 4 + j] * w[j * 3 + k], 0)
      );
      assert.equal(lab.labels[i], argmax(z));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Keep the tfl import used (layers are registered by loading it).
void tfl.layers;

Deno.test("byot: the settings note describes what runs (BD only), derived from the settings", () => {
  const laptop = byotNote(byotSettings("laptop"));
  assert.match(laptop, /^BD labels only \(SD and MBD are not run here\): 400 images \(40\/class\)/);
  assert.doesNotMatch(laptop, /MBD query limit|MBD K=/);
  const custom = byotSettings("laptop", { samplesPerClass: 5, bd: { candidates: 51 } });
  assert.match(custom.note, /50 images \(5\/class\), BD 51 candidates instead of 201/);
  // Every scale's note in the table is the one derived from its settings.
  for (const scale of ["paper", "laptop", "smoke"] as const) {
    assert.equal(settingsNote(BYOT_SETTINGS, scale), byotNote(byotSettings(scale)), scale);
  }
});

Deno.test("byot settings: paper is DB3's reference; laptop and smoke train the students notebook 40 trained", () => {
  const paper = BYOT_SETTINGS.paper.base;
  assert.deepEqual(paper.bd, BD_DEFAULTS);
  // The best-epoch test set is `bestEpochTest` here (null: all test images, as an unset epochTestLimit).
  const student = (s: object) => {
    const { epochTestLimit, ...rest } = s as { epochTestLimit?: number | null };
    return { ...rest, epochTestLimit: epochTestLimit ?? null };
  };
  assert.deepEqual(student(paper.student), student(db3Settings("paper", "mnist").student));
  assert.equal(paper.samplesPerClass, 0, "the reference labels the whole training set");
  assert.equal(paper.bestEpochTest, null);
  // Before the table, notebook 40 ran with the DB3 table's settings of its scale (BD and student only).
  for (const scale of ["laptop", "smoke"] as const) {
    const was = db3Settings(scale, "mnist");
    const now = byotStudentSettings(byotSettings(scale));
    assert.deepEqual(student(now.student), student(was.student), scale);
    assert.equal(now.samplesPerClass, was.samplesPerClass, scale);
    assert.equal(now.testLimit, was.testLimit, scale);
    assert.deepEqual(now.bd, { ...BD_DEFAULTS, ...was.bd }, scale);
  }
});
