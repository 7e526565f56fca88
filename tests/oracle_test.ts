import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { Ledger, NO_SAMPLE, QUERY_KINDS, sumBySample } from "../lib/oracle/ledger.ts";
import { BudgetExceededError, labelOracle, logitsGradOracle, probsOracle } from "../lib/oracle/oracle.ts";
import { Rng } from "../lib/util/rng.ts";

await tf.setBackend("cpu");

/** A 2-input, 3-class linear teacher with fixed weights: logits = x·W + b. */
function linearTeacher(): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [tfl.layers.dense({ units: 3, inputShape: [2], useBias: true })],
  });
  m.setWeights([tf.tensor2d([[1, 0, -1], [0, 1, -1]]), tf.tensor1d([0, 0, 0.5])]);
  return m;
}

Deno.test("ledger: totals equal per-sample sums and no sample exceeds its random budget", () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 30; trial++) {
    const samples = 1 + rng.int(12);
    const ledger = new Ledger({
      perSample: rng.int(50),
      total: rng.uniform() < 0.5 ? undefined : 100 + rng.int(400),
    });
    for (let s = 0; s < samples; s++) if (rng.uniform() < 0.5) ledger.setSampleBudget(s, rng.int(80));
    for (let call = 0; call < 40; call++) {
      const n = rng.int(30);
      const ids = new Int32Array(n);
      for (let i = 0; i < n; i++) ids[i] = rng.uniform() < 0.1 ? NO_SAMPLE : rng.int(samples);
      const kinds = rng.uniform() < 0.3 ? (["forward", "backward"] as const) : (["label"] as const);
      const before = new Map<number, number>();
      for (let s = -1; s < samples; s++) before.set(s, ledger.spentBy(s));
      const refused = ledger.charge({ kinds, phase: `p${rng.int(3)}`, n, sampleIds: ids });
      // Refusal is all-or-nothing per sample within the request.
      const state = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const prev = state.get(ids[i]);
        if (prev !== undefined) assert.equal(prev, refused[i]);
        state.set(ids[i], refused[i]);
      }
      // Accepted images are exactly what was booked.
      for (const [id, r] of state) {
        const k = ids.filter((v) => v === id).length * kinds.length;
        assert.equal(ledger.spentBy(id) - before.get(id)!, r ? 0 : k);
      }
    }
    const snap = ledger.snapshot();
    for (const kind of QUERY_KINDS) assert.equal(snap.totals.images[kind], sumBySample(snap, kind));
    let spent = 0;
    for (const [id, e] of Object.entries(snap.bySample)) {
      spent += e.spent;
      assert.ok(e.spent <= ledger.budgetOf(Number(id)), `sample ${id} spent ${e.spent}`);
    }
    assert.equal(spent, snap.totals.spent);
    if (snap.budget.total !== null) assert.ok(snap.totals.spent <= snap.budget.total);
    let phaseImages = 0;
    for (const p of Object.values(snap.byPhase)) for (const k of QUERY_KINDS) phaseImages += p.images[k];
    let kindImages = 0;
    for (const k of QUERY_KINDS) kindImages += snap.totals.images[k];
    assert.equal(phaseImages, kindImages);
    // JSON round trip and rebuild.
    const again = Ledger.fromSnapshot(JSON.parse(JSON.stringify(snap)));
    assert.deepEqual(again.snapshot(), snap);
  }
});

Deno.test("ledger: a request crossing the total budget is refused for the late samples only", () => {
  const l = new Ledger({ total: 5 });
  const r = l.charge({ kinds: ["label"], phase: "a", n: 6, sampleIds: Int32Array.from([0, 0, 1, 1, 1, 2]) });
  assert.deepEqual([...r], [0, 0, 0, 0, 0, 1]);
  assert.equal(l.spent, 5);
  assert.equal(l.snapshot().bySample["2"].refused, 1);
});

Deno.test("label oracle: clamps inputs, returns ids only, splits big requests, books exactly", async () => {
  const model = linearTeacher();
  let calls = 0;
  const spy = {
    predictLabels: async (x: Float32Array, n: number) => {
      calls++;
      for (const v of x) assert.ok(v >= 0 && v <= 1);
      const t = tf.tidy(() => tf.argMax(model.predict(tf.tensor2d(x, [n, 2])) as tf.Tensor, -1));
      const out = Int32Array.from(await t.data());
      t.dispose();
      return out;
    },
  };
  const o = labelOracle(spy, { inputShape: [2], numClasses: 3, maxBatch: 2 });
  // (5, 0) clamps to (1, 0) → class 0; (0, 0.9) → class 1; (−3, −3) clamps to (0,0) → logits (0,0,0.5) → 2.
  const x = Float32Array.from([5, 0, 0, 0.9, -3, -3]);
  const a = await o.labels(x, 3, { phase: "t", sampleIds: Int32Array.from([4, 4, 9]) });
  assert.deepEqual([...a.labels], [0, 1, 2]);
  assert.equal(calls, 2); // 3 images at maxBatch 2
  assert.equal(x[0], 5, "caller's buffer untouched");
  const s = o.ledger.snapshot();
  assert.equal(s.totals.images.label, 3);
  assert.equal(s.bySample["4"].images.label, 2);
  assert.equal(s.byPhase.t.calls.label, 1, "one oracle request");
  // Nothing on the oracle reaches scores or the model.
  const keys = new Set<string>();
  for (let p: object | null = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) keys.add(k);
  }
  for (const k of keys) assert.ok(!/model|logit|prob|predict|score|weight/i.test(k), `exposes ${k}`);
  assert.ok(!JSON.stringify(o).includes("weight"));
});

Deno.test("label oracle on a LayersModel: budget refusals are not sent and not counted", async () => {
  const ledger = new Ledger({ perSample: 3 });
  const o = labelOracle(linearTeacher(), { ledger });
  assert.deepEqual(o.inputShape, [2]);
  assert.equal(o.numClasses, 3);
  const x = Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]);
  const a = await o.labels(x, 4, { phase: "p", sampleIds: Int32Array.from([0, 0, 1, 1]) });
  assert.deepEqual([...a.labels], [0, 1, 0, 1]);
  const b = await o.labels(x, 4, { phase: "p", sampleIds: Int32Array.from([0, 0, 1, 2]) });
  assert.deepEqual([...b.refused], [1, 1, 0, 0]);
  assert.deepEqual([...b.labels], [-1, -1, 0, 1]);
  assert.equal(ledger.spentBy(0), 2);
  assert.equal(ledger.spentBy(1), 3);
  assert.equal(ledger.snapshot().totals.images.label, 6);
});

Deno.test("probs oracle returns softmax rows", async () => {
  const o = probsOracle(linearTeacher());
  const p = await o.probs(Float32Array.from([0, 0]), 1, { phase: "kd" });
  const e = [1, 1, Math.exp(0.5)];
  const s = e[0] + e[1] + e[2];
  for (let j = 0; j < 3; j++) assert.ok(Math.abs(p[j] - e[j] / s) < 1e-6);
  assert.equal(o.ledger.snapshot().totals.images.probs, 1);
});

Deno.test("logits+grad oracle: gradient of a linear teacher is W's column, counts forward+backward", async () => {
  const model = linearTeacher();
  const ledger = new Ledger({ perSample: 4 });
  const o = logitsGradOracle(model, { ledger });
  const x = tf.tensor2d([[0.3, 0.7], [2, -1]]);
  // loss = Σ logits[:, 0] → dx = W[:, 0] = (1, 0) for every row.
  const r = await o.valueAndGrad(
    x,
    (z) => tf.sum(tf.slice(z, [0, 0], [-1, 1])) as tf.Scalar,
    "synth",
    Int32Array.from([0, 1]),
  );
  assert.ok(Math.abs(r.loss - 2.3) < 1e-6);
  assert.deepEqual(Array.from(r.dx.dataSync()).map((v) => Math.round(v * 1e6) / 1e6), [1, 0, 1, 0]);
  assert.deepEqual(r.logits.shape, [2, 3]);
  const z = await o.logits(x, "eval", Int32Array.from([0, 1]));
  assert.deepEqual(Array.from(z.dataSync()).slice(0, 3).map((v) => Math.round(v * 1e6) / 1e6), [
    0.3,
    0.7,
    -0.5,
  ]);
  const s = ledger.snapshot();
  assert.equal(s.totals.images.forward, 4);
  assert.equal(s.totals.images.backward, 2);
  assert.equal(s.bySample["0"].spent, 3);
  // A fourth and fifth unit for sample 0 would cross its budget of 4: refused, nothing booked.
  await assert.rejects(
    () => o.valueAndGrad(x, (z) => tf.sum(z) as tf.Scalar, "synth", Int32Array.from([0, 1])),
    BudgetExceededError,
  );
  assert.equal(ledger.spentBy(0), 3);
  // Weights unchanged.
  assert.deepEqual(Array.from(model.getWeights()[1].dataSync()), [0, 0, 0.5]);
  tf.dispose([x, r.logits, r.dx, z]);
});

Deno.test("label oracle clamp: every float class lands in [0,1]", async () => {
  let seen: Float32Array | undefined;
  const o = labelOracle({
    spec: { inputShape: [8], numClasses: 2 },
    predictLabels: (x: Float32Array, n: number) => {
      seen = x.slice();
      return Promise.resolve(new Int32Array(n));
    },
  });
  await o.labels(Float32Array.from([-0.5, 0.25, 1.5, -0, 1, 0, 3e38, -3e38]), 1, { phase: "c" });
  assert.deepEqual([...seen!], [0, 0.25, 1, 0, 1, 0, 1, 0]);
  // Non-finite pixels are not clamped: the request is refused (see lib/oracle/admission.ts).
  await assert.rejects(
    () => o.labels(Float32Array.from([0, 0, 0, 0, 0, 0, Infinity, 0]), 1, { phase: "c" }),
    /image 0 of the request has a non-finite pixel \(Infinity at offset 6\)/,
  );
});
