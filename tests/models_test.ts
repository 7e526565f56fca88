import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { buildModel, countParams, describeModel, type ModelSpec } from "../lib/models/registry.ts";
import { CheckpointError, getWeightsFlat, loadModel, saveModel, setWeightsFlat } from "../lib/models/io.ts";
import { MultiHeadSelfAttention, Patchify } from "../lib/models/vit.ts";
import { Rng } from "../lib/util/rng.ts";

await tf.setBackend("cpu");

const MNIST = [28, 28, 1];
const CIFAR = [32, 32, 3];

function params(spec: ModelSpec): number {
  const m = buildModel(spec, 0);
  const n = countParams(m);
  m.dispose();
  return n;
}

function sameArrays(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length &&
    a.every((x, i) => x.length === b[i].length && x.every((v, j) => v === b[i][j]));
}

function randomImages(n: number, shape: number[], seed: number): tf.Tensor {
  const size = n * shape.reduce((a, b) => a * b, 1);
  return tf.tensor(new Rng(seed).fillUniform(new Float32Array(size)), [n, ...shape]);
}

Deno.test("DB3 LeNet-5 parameter counts match the table exactly", () => {
  assert.equal(params({ name: "db3-lenet5", inputShape: MNIST, numClasses: 10 }), 187_780);
  assert.equal(params({ name: "db3-lenet5-half", inputShape: MNIST, numClasses: 10 }), 47_645);
  assert.equal(params({ name: "db3-lenet5-fifth", inputShape: MNIST, numClasses: 10 }), 7_964);
});

Deno.test("DB3 AlexNet parameter counts are within 0.05M of the table", () => {
  const table: [ModelSpec["name"], number][] = [
    ["db3-alexnet", 23.3e6],
    ["db3-alexnet-half", 5.8e6],
    ["db3-alexnet-quarter", 1.5e6],
  ];
  for (const [name, expected] of table) {
    const n = params({ name, inputShape: CIFAR, numClasses: 10 });
    assert.ok(Math.abs(n - expected) <= 0.05e6, `${name}: ${n} params, table ${expected}`);
  }
});

Deno.test("other networks have their known sizes", () => {
  // classic LeNet-5 on 32×32×1 has 61,706 parameters; ResNet-18 (CIFAR) 11,173,962
  assert.equal(params({ name: "cake-lenet5", inputShape: [32, 32, 1], numClasses: 10 }), 61_706);
  assert.equal(params({ name: "resnet18", inputShape: CIFAR, numClasses: 10 }), 11_173_962);
  assert.equal(params({ name: "resnet34", inputShape: CIFAR, numClasses: 10 }), 21_282_122);
  // mlp 2 → 20 → 20 → 20 → 2
  assert.equal(
    params({ name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 20, depth: 2 } }),
    3 * 20 + 2 * (21 * 20) + 21 * 2,
  );
});

const FORWARD_SPECS: ModelSpec[] = [
  { name: "db3-lenet5", inputShape: MNIST, numClasses: 10 },
  { name: "db3-lenet5-half", inputShape: MNIST, numClasses: 10 },
  { name: "db3-lenet5-fifth", inputShape: MNIST, numClasses: 10 },
  { name: "db3-alexnet", inputShape: CIFAR, numClasses: 10 },
  { name: "db3-alexnet-half", inputShape: CIFAR, numClasses: 10 },
  { name: "db3-alexnet-quarter", inputShape: CIFAR, numClasses: 10 },
  { name: "cake-lenet5", inputShape: MNIST, numClasses: 10 },
  { name: "cake-lenet5-half", inputShape: CIFAR, numClasses: 10 },
  { name: "cake-cnn", inputShape: MNIST, numClasses: 10 },
  { name: "mlp", inputShape: MNIST, numClasses: 10 },
  { name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 20, depth: 2 } },
  { name: "resnet18", inputShape: CIFAR, numClasses: 10 },
  { name: "resnet34", inputShape: CIFAR, numClasses: 10 },
  { name: "resnet", inputShape: CIFAR, numClasses: 10, options: { depth: 8 } },
  { name: "resnet", inputShape: [16, 16, 3], numClasses: 10, options: { depth: 50, width: 4 } },
  { name: "vit8", inputShape: CIFAR, numClasses: 10 },
  { name: "vit4", inputShape: MNIST, numClasses: 10, options: { pool: 1 } },
];

Deno.test("every network maps a batch of 2 to [2, K] finite logits", () => {
  for (const spec of FORWARD_SPECS) {
    const m = buildModel(spec, 1);
    const x = randomImages(2, spec.inputShape, 5);
    const y = m.predict(x) as tf.Tensor;
    assert.deepEqual(y.shape, [2, spec.numClasses], spec.name);
    assert.ok((y.dataSync() as Float32Array).every(Number.isFinite), `${spec.name}: non-finite logits`);
    tf.dispose([x, y]);
    m.dispose();
  }
});

Deno.test("describeModel lists layers whose parameters add up", () => {
  const d = describeModel({ name: "db3-alexnet-quarter", inputShape: CIFAR, numClasses: 10 });
  assert.equal(d.layers.reduce((a, l) => a + l.params, 0), d.params);
  assert.ok(d.totalWeights > d.params); // batch-norm moving statistics
  assert.deepEqual(d.layers.at(-1)!.outputShape, [null, 10]);
  const pool5 = d.layers.find((l) => l.name === "pool5")!;
  assert.deepEqual(pool5.outputShape, [null, 2, 2, 64]);
  const conv1 = d.layers.find((l) => l.name === "conv1")!;
  assert.deepEqual(conv1.outputShape, [null, 16, 16, 16]);
});

Deno.test("same seed gives identical weights, another seed different ones", () => {
  const specs: ModelSpec[] = [
    { name: "db3-lenet5", inputShape: MNIST, numClasses: 10 },
    { name: "resnet", inputShape: [8, 8, 3], numClasses: 10, options: { depth: 8, width: 8 } },
    { name: "vit4", inputShape: [8, 8, 3], numClasses: 10 },
  ];
  for (const spec of specs) {
    const [a, b, c] = [7, 7, 8].map((s) => buildModel(spec, s));
    const [wa, wb, wc] = [a, b, c].map(getWeightsFlat);
    assert.ok(sameArrays(wa, wb), `${spec.name}: same seed differs`);
    assert.ok(!sameArrays(wa, wc), `${spec.name}: different seeds agree`);
    // no two kernels of one model share the same init draw
    const firsts = wa.filter((w) => w.length > 64).map((w) => w[0]);
    assert.equal(new Set(firsts).size, firsts.length, `${spec.name}: repeated init stream`);
    [a, b, c].forEach((m) => m.dispose());
  }
});

Deno.test("getWeightsFlat follows model.getWeights() order; setWeightsFlat writes it back", () => {
  const spec: ModelSpec = { name: "db3-alexnet-quarter", inputShape: CIFAR, numClasses: 10 };
  const m = buildModel(spec, 3);
  const flat = getWeightsFlat(m);
  const ref = m.getWeights().map((t) => t.dataSync() as Float32Array);
  assert.ok(sameArrays(flat, Array.from(ref, (r) => Float32Array.from(r))));
  const other = getWeightsFlat(buildModel(spec, 4));
  setWeightsFlat(m, other);
  assert.ok(sameArrays(getWeightsFlat(m), other));
  assert.throws(() => setWeightsFlat(m, other.slice(1)), /weights/);
  m.dispose();
});

Deno.test("custom ViT layers survive a JSON topology round trip", async () => {
  const m = buildModel({ name: "vit4", inputShape: [8, 8, 1], numClasses: 3, options: { depth: 1 } }, 2);
  const json = m.toJSON(undefined, false) as unknown as tf.io.ModelJSON["modelTopology"];
  const copy = await tfl.models.modelFromJSON({ modelTopology: json });
  setWeightsFlat(copy, getWeightsFlat(m));
  const x = randomImages(2, [8, 8, 1], 1);
  const [y1, y2] = [m, copy].map((mm) => (mm.predict(x) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(y1), Array.from(y2));
  m.dispose();
  copy.dispose();
});

/** Give every weight a random value (positive, so BN variances stay valid). */
function scramble(m: tfl.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  setWeightsFlat(m, getWeightsFlat(m).map((w) => rng.fillUniform(new Float32Array(w.length), 0.5, 1.5)));
}

Deno.test("saveModel → loadModel reproduces predictions, spec and meta", async () => {
  const root = await Deno.makeTempDir();
  try {
    const specs: ModelSpec[] = [
      { name: "db3-alexnet-quarter", inputShape: CIFAR, numClasses: 10 },
      { name: "vit4", inputShape: [8, 8, 1], numClasses: 4, options: { depth: 2, pool: 0 } },
    ];
    for (const spec of specs) {
      const m = buildModel(spec, 11);
      scramble(m, 12);
      const dir = `${root}/ckpt-${spec.name}`;
      await saveModel(dir, m, spec, { epochs: 3, note: "test" });
      await saveModel(dir, m, spec, { epochs: 3, note: "test" }); // overwrite in place
      const entries = [...Deno.readDirSync(root)].map((e) => e.name);
      assert.ok(!entries.some((n) => n.includes(".saving-") || n.includes(".old-")), `leftovers: ${entries}`);
      const loaded = await loadModel(dir);
      assert.deepEqual(loaded.spec, spec);
      assert.deepEqual(loaded.meta, { epochs: 3, note: "test" });
      const x = randomImages(2, spec.inputShape, 13);
      const [y1, y2] = [m, loaded.model].map((mm) => (mm.predict(x) as tf.Tensor).dataSync());
      assert.deepEqual(Array.from(y2), Array.from(y1));
      m.dispose();
      loaded.model.dispose();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a corrupt or missing checkpoint file gives an error naming the file and the fix", async () => {
  const root = await Deno.makeTempDir();
  try {
    const spec: ModelSpec = { name: "db3-lenet5-fifth", inputShape: MNIST, numClasses: 10 };
    const m = buildModel(spec, 1);
    const dir = `${root}/ck`;
    await saveModel(dir, m, spec, {});
    const bin = `${dir}/weights.bin`;
    const good = await Deno.readFile(bin);

    await Deno.writeFile(bin, good.subarray(0, good.length - 8));
    await assert.rejects(loadModel(dir), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.equal(e.file, bin);
      assert.match(e.message, /weights\.bin.*truncated.*delete the folder.*retrain/s);
      return true;
    });

    const flipped = good.slice();
    flipped[100] ^= 0xff;
    await Deno.writeFile(bin, flipped);
    await assert.rejects(loadModel(dir), /weights\.bin: checksum mismatch/);

    await Deno.writeFile(bin, good);
    await Deno.writeTextFile(`${dir}/manifest.json`, "{ not json");
    await assert.rejects(loadModel(dir), /manifest\.json: is not valid JSON/);

    await Deno.remove(`${dir}/spec.json`);
    await assert.rejects(loadModel(dir), /spec\.json: is missing.*delete the folder/s);
    await assert.rejects(loadModel(`${root}/nowhere`), /nowhere\/spec\.json: is missing/);
    m.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bad specs are rejected with a reason", () => {
  assert.throws(
    () => buildModel({ name: "resnet", inputShape: CIFAR, numClasses: 10 }, 0),
    /options\.depth/,
  );
  assert.throws(
    () => buildModel({ name: "resnet", inputShape: CIFAR, numClasses: 10, options: { depth: 12 } }, 0),
    /depth 12 is not supported/,
  );
  assert.throws(
    () => buildModel({ name: "db3-lenet5", inputShape: [784], numClasses: 10 }, 0),
    /\[h, w, c\]/,
  );
  assert.throws(
    () => buildModel({ name: "nope" as ModelSpec["name"], inputShape: MNIST, numClasses: 10 }, 0),
    /unknown name/,
  );
});

Deno.test("one training step per family gives finite gradients and moves the weights", () => {
  const specs: ModelSpec[] = [
    { name: "db3-lenet5-fifth", inputShape: MNIST, numClasses: 10 },
    { name: "db3-alexnet-quarter", inputShape: [16, 16, 3], numClasses: 10 },
    { name: "cake-lenet5-half", inputShape: MNIST, numClasses: 10 },
    { name: "cake-cnn", inputShape: MNIST, numClasses: 10 },
    { name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 20, depth: 2 } },
    { name: "resnet", inputShape: [8, 8, 3], numClasses: 10, options: { depth: 8, width: 8 } },
    { name: "resnet", inputShape: [8, 8, 3], numClasses: 10, options: { depth: 50, width: 4 } },
    { name: "vit4", inputShape: [8, 8, 3], numClasses: 10, options: { depth: 2 } },
    { name: "vit4", inputShape: [8, 8, 3], numClasses: 10, options: { depth: 1, pool: 1 } },
  ];
  for (const spec of specs) {
    const m = buildModel(spec, 21);
    // tfjs-cpu's conv filter gradient is slow: the 4-conv CAKE CNN gets one image
    const n = spec.name === "cake-cnn" ? 1 : 2;
    const x = randomImages(n, spec.inputShape, 22);
    const y = tf.oneHot(tf.tensor1d([0, 1].slice(0, n), "int32"), spec.numClasses);
    const before = getWeightsFlat(m);
    const { value, grads } = tf.variableGrads(() =>
      tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar
    );
    assert.ok(Number.isFinite(value.dataSync()[0]), `${spec.name}: loss`);
    const names = Object.keys(grads);
    assert.equal(
      names.length,
      m.trainableWeights.length,
      `${spec.name}: every trainable weight has a gradient`,
    );
    let nonzero = 0;
    for (const n of names) {
      const g = grads[n].dataSync() as Float32Array;
      assert.ok(g.every(Number.isFinite), `${spec.name}: non-finite gradient for ${n}`);
      if (g.some((v) => v !== 0)) nonzero++;
    }
    assert.ok(nonzero > names.length / 2, `${spec.name}: only ${nonzero}/${names.length} gradients non-zero`);
    tf.train.sgd(0.01).applyGradients(grads);
    assert.ok(!sameArrays(before, getWeightsFlat(m)), `${spec.name}: weights did not move`);
    tf.dispose([x, y, value, ...Object.values(grads)]);
    m.dispose();
  }
});

Deno.test("Patchify orders patches row-major and features as (row, col, channel) in the patch", () => {
  const [h, w, c, p] = [4, 6, 2, 2];
  const x = tf.tensor(Float32Array.from({ length: h * w * c }, (_, i) => i), [1, h, w, c]);
  const y = new Patchify({ patch: p }).apply(x) as tf.Tensor;
  assert.deepEqual(y.shape, [1, (h / p) * (w / p), p * p * c]);
  const got = y.dataSync();
  const cols = w / p;
  for (let t = 0; t < (h / p) * cols; t++) {
    const [i, j] = [Math.floor(t / cols), t % cols];
    for (let a = 0; a < p; a++) {
      for (let b = 0; b < p; b++) {
        for (let ch = 0; ch < c; ch++) {
          const expected = ((i * p + a) * w + (j * p + b)) * c + ch;
          assert.equal(got[t * p * p * c + (a * p + b) * c + ch], expected);
        }
      }
    }
  }
});

Deno.test("MultiHeadSelfAttention matches a hand-written reference", () => {
  const [b, n, d, heads, dh] = [2, 3, 4, 2, 3];
  const input = tfl.input({ shape: [n, d] });
  const layer = new MultiHeadSelfAttention({ heads, headDim: dh, seed: 9 });
  const m = tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
  const rng = new Rng(4);
  const xs = rng.fillUniform(new Float32Array(b * n * d), -1, 1);
  const got = (m.predict(tf.tensor(xs, [b, n, d])) as tf.Tensor).dataSync();
  const [wq, wk, wv, wo, bo] = getWeightsFlat(m);
  const inner = heads * dh;
  const proj = (w: Float32Array, bi: number, t: number, k: number) => {
    let s = 0;
    for (let e = 0; e < d; e++) s += xs[(bi * n + t) * d + e] * w[e * inner + k];
    return s;
  };
  for (let bi = 0; bi < b; bi++) {
    for (let t = 0; t < n; t++) {
      const concat = new Float64Array(inner);
      for (let hd = 0; hd < heads; hd++) {
        const scores = Array.from({ length: n }, (_, u) => {
          let s = 0;
          for (let k = 0; k < dh; k++) s += proj(wq, bi, t, hd * dh + k) * proj(wk, bi, u, hd * dh + k);
          return s / Math.sqrt(dh);
        });
        const mx = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - mx));
        const z = ex.reduce((a, e) => a + e, 0);
        for (let k = 0; k < dh; k++) {
          for (let u = 0; u < n; u++) concat[hd * dh + k] += (ex[u] / z) * proj(wv, bi, u, hd * dh + k);
        }
      }
      for (let e = 0; e < d; e++) {
        let s = bo[e];
        for (let k = 0; k < inner; k++) s += concat[k] * wo[k * d + e];
        assert.ok(Math.abs(got[(bi * n + t) * d + e] - s) < 1e-5, `token ${t} feature ${e}`);
      }
    }
  }
  m.dispose();
});
