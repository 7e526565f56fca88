import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { Ledger } from "../lib/oracle/ledger.ts";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { boundaryDistances, orderedCandidates } from "../lib/db3/bd.ts";
import { minimalBoundaryDistances } from "../lib/db3/mbd.ts";
import { sampleDistances } from "../lib/db3/sd.ts";
import { distanceQuantile, softLabelsFromDistances } from "../lib/db3/soft_labels.ts";
import { candidatesFor, type ClassStreams, type Db3Samples, makeClassStreams } from "../lib/db3/streams.ts";
import { fillStandardNormal } from "../lib/db3/normal.ts";
import { labelDistances } from "../lib/db3/label_run.ts";
import { Rng } from "../lib/util/rng.ts";

await tf.setBackend("cpu");

const D = 16, K = 3, SHAPE = [4, 4, 1];

/** Linear teacher on 4×4×1 images: logits = W·flat(x) + b, with W (D×K), b fixed. */
function linearTeacher(W: number[][], b: number[]): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: SHAPE }), tfl.layers.dense({ units: K })],
  });
  m.setWeights([tf.tensor2d(W), tf.tensor1d(b)]);
  return m;
}

/** Biases that centre the logits at x = 0.5 (balanced classes on images around mid-grey), plus `extra`. */
function centredBias(W: number[][], extra: number[]): number[] {
  return extra.map((e, j) => e - 0.5 * W.reduce((a, row) => a + row[j], 0));
}

function logits(W: number[][], b: number[], x: Float32Array, o: number): number[] {
  return b.map((bj, j) => {
    let s = bj;
    for (let q = 0; q < D; q++) s += W[q][j] * x[o + q];
    return s;
  });
}

function argmax(v: number[]) {
  return v.indexOf(Math.max(...v));
}

/** Seeded teacher + class-stream pool labelled by the teacher itself, + samples. */
function world(seed: number, nSamples: number) {
  const rng = new Rng(seed);
  const W = Array.from({ length: D }, () => Array.from({ length: K }, () => rng.normal()));
  const b = centredBias(W, [0, 0, 0]);
  const pool = new Float32Array(600 * D);
  rng.fillUniform(pool, 0.2, 0.8);
  const py = Int32Array.from({ length: 600 }, (_, i) => argmax(logits(W, b, pool, i * D)));
  const streams = makeClassStreams({ x: pool, y: py, shape: [600, ...SHAPE], numClasses: K }, seed);
  const sx = new Float32Array(nSamples * D);
  rng.fillUniform(sx, 0.3, 0.7);
  const sy = Int32Array.from({ length: nSamples }, (_, i) => argmax(logits(W, b, sx, i * D)));
  const samples: Db3Samples = { x: sx, y: sy, shape: [nSamples, ...SHAPE], numClasses: K };
  return { W, b, streams, samples, model: linearTeacher(W, b) };
}

/** Exact λ at which the ray x0 + λθ enters class t (target region is convex: max of crossings). */
function rayEntry(
  W: number[][],
  b: number[],
  x0: Float32Array,
  o: number,
  dir: Float32Array,
  t: number,
): number {
  const z0 = logits(W, b, x0, o);
  const zd = logits(W, [0, 0, 0], dir, 0);
  let entry = 0;
  for (let j = 0; j < K; j++) {
    if (j === t) continue;
    const a = z0[t] - z0[j], s = zd[t] - zd[j];
    if (s <= 0) {
      if (a > 0) continue;
      return Infinity;
    }
    entry = Math.max(entry, -a / s);
  }
  return entry;
}

/** Exact BD: min over the pair's candidates of the ray entry distance. */
function exactBd(w: ReturnType<typeof world>, i: number, t: number, count: number): number {
  const { streams, samples, W, b } = w;
  let best = Infinity;
  for (const c of candidatesFor(streams, i, t, count)) {
    const dir = new Float32Array(D);
    let nrm = 0;
    for (let q = 0; q < D; q++) {
      dir[q] = streams.x[c * D + q] - samples.x[i * D + q];
      nrm += dir[q] ** 2;
    }
    nrm = Math.sqrt(nrm);
    for (let q = 0; q < D; q++) dir[q] /= nrm;
    best = Math.min(best, rayEntry(W, b, samples.x, i * D, dir, t));
  }
  return best;
}

Deno.test("SD: minimum distance to the first 21 stream images, no queries", () => {
  const w = world(1, 5);
  const r = sampleDistances(w.samples, w.streams);
  for (let i = 0; i < 5; i++) {
    for (let t = 0; t < K; t++) {
      if (t === w.samples.y[i]) {
        assert.equal(r.distances[i * K + t], Infinity);
        continue;
      }
      let best = Infinity;
      for (const c of candidatesFor(w.streams, i, t, 21)) {
        let s = 0;
        for (let q = 0; q < D; q++) s += (w.streams.x[c * D + q] - w.samples.x[i * D + q]) ** 2;
        best = Math.min(best, Math.sqrt(s));
      }
      assert.ok(Math.abs(r.distances[i * K + t] - best) < 1e-6);
    }
  }
});

Deno.test("class streams: per-sample candidates do not depend on chunking", () => {
  const w = world(2, 4);
  const a = candidatesFor(w.streams, 3, 1, 10);
  const s2 = makeClassStreams(
    { x: w.streams.x, y: new Int32Array(0), shape: [0, ...SHAPE], numClasses: K },
    w.streams.seed,
  );
  assert.equal(s2.byClass[0].length, 0);
  assert.deepEqual([...a], [...candidatesFor(w.streams, 3, 1, 10)]);
  const { lam0 } = orderedCandidates(w.samples, 0, 0, w.streams, (w.samples.y[0] + 1) % K, 30, "nearest");
  for (let j = 1; j < lam0.length; j++) assert.ok(lam0[j - 1] <= lam0[j]);
});

Deno.test("BD equals the exact ray-entry minimum within tol; lean search beats the reference's query count", async () => {
  const w = world(3, 6);
  const opts = { candidates: 40, tol: 1e-5 };
  const lean = await boundaryDistances(labelOracle(w.model), w.samples, w.streams, opts);
  const ref = await boundaryDistances(labelOracle(w.model), w.samples, w.streams, {
    ...opts,
    faithful: true,
  });
  let qLean = 0, qRef = 0;
  for (let i = 0; i < 6; i++) {
    for (let t = 0; t < K; t++) {
      const j = i * K + t;
      if (t === w.samples.y[i]) {
        assert.equal(lean.distances[j], Infinity);
        continue;
      }
      const exact = exactBd(w, i, t, 40);
      const d = lean.distances[j], dr = ref.distances[j];
      assert.ok(d >= exact - 1e-6 && d - exact < 1e-5 + 1e-6, `lean ${d} vs exact ${exact}`);
      assert.ok(dr >= exact - 1e-6 && dr - exact < 1e-5 + 1e-6, `faithful ${dr} vs exact ${exact}`);
      qLean += lean.queries[j];
      qRef += ref.queries[j];
    }
  }
  assert.ok(qLean < qRef, `lean ${qLean} queries vs faithful ${qRef}`);
  // The ledger agrees with the per-pair counts (+1 "bd.init" query per sample).
  assert.equal(lean.ledger.totals.images.label, qLean + 6);
  assert.equal(lean.ledger.byPhase["bd.init"].images.label, 6);
  assert.equal(lean.misclassified.reduce((a, b) => a + b, 0), 0);
});

Deno.test("BD flags samples the teacher misclassifies (d ≈ tol) and soft labels report the blow-up", async () => {
  const w = world(4, 4);
  const y = Int32Array.from(w.samples.y);
  y[1] = (y[1] + 1) % K; // ground truth disagrees with the teacher
  const samples = { ...w.samples, y };
  const r = await boundaryDistances(labelOracle(w.model), samples, w.streams, { candidates: 20 });
  assert.deepEqual([...r.misclassified], [0, 1, 0, 0]);
  const teacherClass = w.samples.y[1];
  assert.ok(r.distances[1 * K + teacherClass] <= 1e-5);
  const s = softLabelsFromDistances(r.distances, y, K, { teacherLabels: r.teacherLabels });
  assert.deepEqual([...s.flagged], [1]);
  assert.ok(s.maxLogit > 1e5);
  const dropped = softLabelsFromDistances(r.distances, y, K, {
    dropFlagged: true,
    floor: { quantile: 0.05 },
  });
  assert.deepEqual([...dropped.keep], [0, 2, 3]);
  assert.ok(dropped.maxLogit < 1e4);
  // MBD leaves the pair that already sits across the boundary alone.
  const m = await minimalBoundaryDistances(labelOracle(w.model), samples, w.streams, {
    init: r,
    kGrad: 20,
    queryLimit: 800,
  });
  assert.equal(m.stops[1 * K + teacherClass], "at-boundary");
  assert.equal(m.queries[1 * K + teacherClass], r.queries[1 * K + teacherClass]);
});

Deno.test("BD under a per-sample budget: never exceeded, best-so-far returned and flagged", async () => {
  const w = world(5, 5);
  const ledger = new Ledger({ perSample: 60 });
  ledger.setSampleBudget(2, 1000);
  const r = await boundaryDistances(labelOracle(w.model, { ledger }), w.samples, w.streams, {
    candidates: 40,
  });
  const free = await boundaryDistances(labelOracle(w.model), w.samples, w.streams, { candidates: 40 });
  const snap = ledger.snapshot();
  for (let i = 0; i < 5; i++) {
    assert.ok(snap.bySample[String(i)].spent <= (i === 2 ? 1000 : 60));
    assert.equal(r.exhausted[i], i === 2 ? 0 : 1);
    for (let t = 0; t < K; t++) assert.ok(r.distances[i * K + t] >= free.distances[i * K + t]);
  }
  // A budget-cut search still returns points the teacher labelled t (or Infinity).
  let finite = 0;
  for (let j = 0; j < 5 * K; j++) if (Number.isFinite(r.distances[j])) finite++;
  assert.ok(finite > 5);
});

Deno.test("MBD converges to the exact point-to-hyperplane distance of a two-class linear teacher", async () => {
  // Class 2 is switched off (bias −100); the boundary between 0 and 1 is a hyperplane.
  const rng = new Rng(11);
  const W = Array.from({ length: D }, () => [rng.normal() * 0.5, rng.normal() * 0.5, 0]);
  const b = centredBias(W, [0, 0, -100]);
  const model = linearTeacher(W, b);
  const pool = new Float32Array(400 * D);
  rng.fillUniform(pool, 0.2, 0.8);
  const py = Int32Array.from({ length: 400 }, (_, i) => argmax(logits(W, b, pool, i * D)));
  const streams: ClassStreams = makeClassStreams(
    { x: pool, y: py, shape: [400, ...SHAPE], numClasses: K },
    1,
  );
  const n = 3;
  const sx = new Float32Array(n * D);
  rng.fillUniform(sx, 0.4, 0.6);
  const sy = Int32Array.from({ length: n }, (_, i) => argmax(logits(W, b, sx, i * D)));
  const samples: Db3Samples = { x: sx, y: sy, shape: [n, ...SHAPE], numClasses: K };
  const oracle = labelOracle(model);
  const r = await minimalBoundaryDistances(oracle, samples, streams, {
    bd: { candidates: 20 },
    kGrad: 50,
    queryLimit: 3000,
    snapshotAt: [500, 1000, 2000, 3000],
    seed: 3,
  });
  for (let i = 0; i < n; i++) {
    const c = sy[i], t = 1 - c;
    const z = logits(W, b, sx, i * D);
    let nrm = 0;
    for (let q = 0; q < D; q++) nrm += (W[q][t] - W[q][c]) ** 2;
    const exact = (z[c] - z[t]) / Math.sqrt(nrm);
    const j = i * K + t;
    const g = r.distances[j];
    assert.ok(g >= exact * (1 - 1e-4), `MBD ${g} below the exact ${exact}`);
    assert.ok(g <= exact * 1.01, `MBD ${g} vs exact ${exact} (BD ${r.bd.distances[j]})`);
    assert.ok(r.bd.distances[j] >= g);
    assert.ok(r.queries[j] <= 3000);
    // Snapshots are non-increasing and end at the final distance.
    const s = r.snapshots.distances.map((a) => a[j]);
    for (let q = 1; q < s.length; q++) assert.ok(s[q] <= s[q - 1]);
    assert.equal(s[s.length - 1], g);
    // The unreachable class 2 has no boundary.
    assert.equal(r.distances[i * K + 2], Infinity);
  }
  // Ledger: every MBD query booked, per-sample totals sum up.
  const snap = r.ledger;
  let perSample = 0;
  for (const e of Object.values(snap.bySample)) perSample += e.images.label;
  assert.equal(perSample, snap.totals.images.label);
  assert.ok(snap.byPhase["mbd.grad"].images.label > 0 && snap.byPhase["mbd.line"].images.label > 0);
});

Deno.test("ziggurat normals: mean 0, variance 1, tail mass", () => {
  const x = fillStandardNormal(new Rng(5), new Float32Array(400_000));
  let m = 0, v = 0, tail = 0;
  for (const a of x) {
    m += a;
    v += a * a;
    if (Math.abs(a) > 2) tail++;
  }
  m /= x.length;
  v = v / x.length - m * m;
  assert.ok(Math.abs(m) < 0.01 && Math.abs(v - 1) < 0.01);
  assert.ok(Math.abs(tail / x.length - 0.0455) < 0.002);
});

Deno.test("distance quantile", () => {
  const d = Float32Array.from([Infinity, 1, 2, 3, Infinity, 4]);
  assert.equal(distanceQuantile(d, Int32Array.from([0, 1]), 3, 0.5), 2.5);
});

Deno.test("labelDistances: chunked BD resumes after an interruption with identical distances", async () => {
  const w = world(6, 5);
  const dir = await Deno.makeTempDir();
  try {
    const opts = { method: "bd" as const, bd: { candidates: 15 }, chunkSize: 2, progress: false as const };
    const clean = await labelDistances(labelOracle(w.model), w.samples, w.streams, opts);
    // A teacher that dies 10 images into chunk 1: chunk 0 is saved, the run fails.
    const chunk0 = clean.ledger!.bySample["0"].spent + clean.ledger!.bySample["1"].spent;
    let images = 0, answered = 0;
    const flaky = {
      spec: { inputShape: SHAPE, numClasses: K },
      predictLabels: async (x: Float32Array, n: number) => {
        images += n;
        if (images > chunk0 + 10) throw new Error("teacher went away");
        answered += n;
        const t = tf.tidy(() => tf.argMax(w.model.predict(tf.tensor(x, [n, ...SHAPE])) as tf.Tensor, -1));
        const out = Int32Array.from(await t.data());
        t.dispose();
        return out;
      },
    };
    await assert.rejects(() =>
      labelDistances(labelOracle(flaky), w.samples, w.streams, { ...opts, cacheDir: dir })
    );
    const saved = [...Deno.readDirSync(dir)].map((e) => e.name).filter((f) => /^chunk-\d+\.json$/.test(f));
    assert.deepEqual(saved, ["chunk-00000.json"]);
    const oracle = labelOracle(w.model);
    const r = await labelDistances(oracle, w.samples, w.streams, { ...opts, cacheDir: dir });
    assert.equal(r.chunks.resumed, saved.length);
    assert.equal(r.chunks.computed, 3 - saved.length);
    assert.deepEqual([...r.distances], [...clean.distances]);
    assert.deepEqual([...r.queries!], [...clean.queries!]);
    // The resumed ledger carries everything the failed run's teacher answered (chunk 0 and the part of
    // chunk 1 before it failed, from the journal) plus the new queries.
    assert.ok(answered > chunk0);
    assert.equal(
      r.ledger!.totals.images.label,
      clean.ledger!.totals.images.label + (answered - chunk0),
    );
    assert.equal(r.ledger!.totals.reservedUnsettled, undefined);
    // A different run in the same folder is refused.
    await assert.rejects(
      () =>
        labelDistances(labelOracle(w.model), w.samples, w.streams, {
          ...opts,
          bd: { candidates: 9 },
          cacheDir: dir,
        }),
      /different run/,
    );
    const sd = await labelDistances(null, w.samples, w.streams, { method: "sd", progress: false });
    assert.deepEqual([...sd.distances], [...sampleDistances(w.samples, w.streams).distances]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MBD: per-sample budget stops the search with best-so-far; faithful mode also converges", async () => {
  const rng = new Rng(12);
  const W = Array.from({ length: D }, () => [rng.normal() * 0.5, rng.normal() * 0.5, 0]);
  const b = centredBias(W, [0, 0, -100]);
  const model = linearTeacher(W, b);
  const pool = new Float32Array(300 * D);
  rng.fillUniform(pool, 0.2, 0.8);
  const py = Int32Array.from({ length: 300 }, (_, i) => argmax(logits(W, b, pool, i * D)));
  const streams = makeClassStreams({ x: pool, y: py, shape: [300, ...SHAPE], numClasses: K }, 2);
  const sx = new Float32Array(2 * D);
  rng.fillUniform(sx, 0.4, 0.6);
  const sy = Int32Array.from({ length: 2 }, (_, i) => argmax(logits(W, b, sx, i * D)));
  const samples: Db3Samples = { x: sx, y: sy, shape: [2, ...SHAPE], numClasses: K };
  const ledger = new Ledger();
  ledger.setSampleBudget(0, 900);
  const opts = { bd: { candidates: 10 }, kGrad: 30, queryLimit: 2500, snapshotAt: [1000, 2500], seed: 1 };
  const r = await minimalBoundaryDistances(labelOracle(model, { ledger }), samples, streams, opts);
  assert.equal(r.exhausted[0], 1);
  assert.equal(r.exhausted[1], 0);
  assert.ok(ledger.spentBy(0) <= 900);
  const t0 = 1 - sy[0];
  assert.equal(r.stops[0 * K + t0], "budget");
  assert.ok(r.distances[t0] <= r.bd.distances[t0]);
  const f = await minimalBoundaryDistances(labelOracle(model), samples, streams, { ...opts, faithful: true });
  for (let i = 0; i < 2; i++) {
    const j = i * K + (1 - sy[i]);
    assert.ok(f.distances[j] < f.bd.distances[j] && f.queries[j] <= 2500);
  }
});

Deno.test("label oracle: a failing teacher raises OracleError naming the phase", async () => {
  const o = labelOracle({
    spec: { inputShape: [2], numClasses: 2 },
    predictLabels: () => Promise.reject(new Error("connection reset")),
  });
  await assert.rejects(
    () => o.labels(new Float32Array(2), 1, { phase: "bd.probe" }),
    (e: Error) => e.name === "OracleError" && /bd\.probe/.test(e.message),
  );
});
