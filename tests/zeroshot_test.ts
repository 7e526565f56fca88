import assert from "node:assert/strict";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { Ledger } from "../lib/oracle/ledger.ts";
import { initBackend } from "../lib/backend.ts";

await initBackend();
import { Rng } from "../lib/util/rng.ts";
import { untargetedBoundary } from "../lib/zeroshot/untargeted.ts";
import { initPseudoNoise } from "../lib/zeroshot/noise_init.ts";
import { generatePseudoSamples } from "../lib/zeroshot/generate.ts";

/** A linear label-only teacher: argmax_k (W_k·x + b_k), K classes over `dim` inputs. */
function linearTeacher(w: number[][], b: number[], shape: number[]) {
  const k = w.length, dim = w[0].length;
  return {
    spec: { inputShape: shape, numClasses: k },
    predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        let best = -Infinity;
        for (let c = 0; c < k; c++) {
          let z = b[c];
          for (let j = 0; j < dim; j++) z += w[c][j] * x[i * dim + j];
          if (z > best) [best, out[i]] = [z, c];
        }
      }
      return Promise.resolve(out);
    },
    scores(x: ArrayLike<number>, off = 0) {
      return w.map((row, c) => row.reduce((s, v, j) => s + v * x[off + j], b[c]));
    },
  };
}

/** Distance from x to the complement of its argmax region: min_t (z_c − z_t)/||w_c − w_t||. */
function linearDistance(w: number[][], z: number[]): number {
  const c = z.indexOf(Math.max(...z));
  let d = Infinity;
  for (let t = 0; t < w.length; t++) {
    if (t === c) continue;
    const nn = Math.hypot(...w[c].map((v, j) => v - w[t][j]));
    d = Math.min(d, (z[c] - z[t]) / nn);
  }
  return d;
}

function randomWeights(k: number, dim: number, seed: number) {
  const r = new Rng(seed);
  return Array.from({ length: k }, () => Array.from({ length: dim }, () => r.normal()));
}

Deno.test("untargeted boundary: a 2-class linear teacher's distance is the distance to its hyperplane", async () => {
  const dim = 8, n = 6;
  const w = randomWeights(2, dim, 3);
  const teacher = linearTeacher(w, [0, 0], [dim]);
  const r = new Rng(5);
  const x = new Float32Array(n * dim).map(() => 0.45 + 0.1 * r.uniform());
  const z = Array.from({ length: n }, (_, i) => teacher.scores(x, i * dim));
  const y = Int32Array.from(z, (s) => (s[0] >= s[1] ? 0 : 1));
  const o = labelOracle(teacher);
  const res = await untargetedBoundary(o, x, y, { kGrad: 50, queryLimit: 4000, initDirections: 3, seed: 1 });
  for (let i = 0; i < n; i++) {
    const want = linearDistance(w, z[i]);
    assert.ok(
      Math.abs(res.distances[i] - want) <= 0.02 * want + 2e-5,
      `sample ${i}: ${res.distances[i]} vs ${want}`,
    );
    assert.ok(res.initDistances[i] >= res.distances[i] - 1e-6);
    // Θ points across the hyperplane: along ±(w_other − w_c).
    const c = y[i], t = 1 - c;
    const d = w[t].map((v, j) => v - w[c][j]);
    const dn = Math.hypot(...d);
    let cos = 0;
    for (let j = 0; j < dim; j++) cos += res.directions[i * dim + j] * d[j] / dn;
    assert.ok(cos > 0.95, `cos ${cos}`);
    assert.ok(res.queries[i] <= 4000);
    assert.ok(res.initQueries[i] >= 3);
  }
  // Every query, the initial random directions included, is in the ledger, per sample.
  const snap = o.ledger.snapshot();
  assert.equal(snap.totals.images.label, res.queries.reduce((a, b) => a + b, 0));
  assert.equal(snap.byPhase["zs.init"].images.label, res.initQueries.reduce((a, b) => a + b, 0));
  for (let i = 0; i < n; i++) assert.equal(snap.bySample[String(i)].images.label, res.queries[i]);
});

Deno.test("untargeted boundary: 3-class linear teacher, distance to the nearest face; init queries counted", async () => {
  const dim = 6, n = 5;
  const w = randomWeights(3, dim, 11);
  const teacher = linearTeacher(w, [0, 0.1, -0.1], [dim]);
  const r = new Rng(2);
  const x = new Float32Array(n * dim).map(() => 0.4 + 0.2 * r.uniform());
  const z = Array.from({ length: n }, (_, i) => teacher.scores(x, i * dim));
  const y = Int32Array.from(z, (s) => s.indexOf(Math.max(...s)));
  const o = labelOracle(teacher);
  const res = await untargetedBoundary(o, x, y, { kGrad: 60, queryLimit: 6000, initDirections: 4, seed: 2 });
  for (let i = 0; i < n; i++) {
    const want = linearDistance(w, z[i]);
    assert.ok(
      Math.abs(res.distances[i] - want) <= 0.03 * want + 2e-5,
      `sample ${i}: ${res.distances[i]} vs ${want}`,
    );
    // x0 + gΘ is (just) outside class c; x0 + 0.99·gΘ is inside.
    const at = (s: number) =>
      teacher.scores(Array.from({ length: dim }, (_, j) => {
        const v = x[i * dim + j] + s * res.distances[i] * res.directions[i * dim + j];
        return Math.min(1, Math.max(0, v));
      }));
    const zc = at(1.001);
    assert.notEqual(zc.indexOf(Math.max(...zc)), y[i]);
    const zi = at(0.99);
    assert.equal(zi.indexOf(Math.max(...zi)), y[i]);
  }
  assert.equal(
    o.ledger.snapshot().byPhase["zs.init"].images.label,
    res.initQueries.reduce((a, b) => a + b, 0),
  );
});

Deno.test("untargeted boundary: a sample's search does not depend on the other samples of its batch", async () => {
  // Several rounds of shared initial directions with few tries, and anchor fallbacks: the rounds that
  // follow must not depend on when the other samples of the batch stopped (generation shards rely on it).
  // Samples 0-2 lie within 0.01 of a boundary (random tries flip them soon), 3-7 beyond 0.3 (they
  // never flip): alone, the first three stop trying early. With one random stream for all rounds
  // (before the generation shards) their later rounds drew other directions and this test failed.
  const dim = 6, n = 8;
  const w = randomWeights(3, dim, 3);
  const teacher = linearTeacher(w, [0, 0.2, -0.2], [dim]);
  const r = new Rng(9);
  const near: number[][] = [], far: number[][] = [];
  while (near.length < 3 || far.length < 5) {
    const p = Array.from({ length: dim }, () => r.uniform());
    const d = linearDistance(w, teacher.scores(p));
    if (d < 0.01 && near.length < 3) near.push(p);
    else if (d > 0.3 && far.length < 5) far.push(p);
  }
  const x = Float32Array.from([...near, ...far].flat());
  const y = Int32Array.from({ length: n }, (_, i) => {
    const z = teacher.scores(x, i * dim);
    return z.indexOf(Math.max(...z));
  });
  const ids = Int32Array.from({ length: n }, (_, i) => 100 + i);
  const opts = { initDirections: 3, maxInitTries: 2, initScale: 0.05, kGrad: 8, queryLimit: 400, seed: 4 };
  const anchors = { x, labels: y };
  const whole = await untargetedBoundary(labelOracle(teacher), x, y, { ...opts, ids, anchors });
  for (const [a, b] of [[0, 3], [3, 8]]) {
    const part = await untargetedBoundary(labelOracle(teacher), x.slice(a * dim, b * dim), y.slice(a, b), {
      ...opts,
      ids: ids.slice(a, b),
      anchors,
    });
    assert.deepEqual(Array.from(part.distances), Array.from(whole.distances.slice(a, b)));
    assert.deepEqual(Array.from(part.queries), Array.from(whole.queries.slice(a, b)));
    assert.deepEqual(Array.from(part.directions), Array.from(whole.directions.slice(a * dim, b * dim)));
    assert.deepEqual(Array.from(part.anchorStarts), Array.from(whole.anchorStarts.slice(a, b)));
  }
});

Deno.test("untargeted boundary: the query limit and the ledger's per-sample budget are never crossed", async () => {
  const dim = 8, n = 4;
  const w = randomWeights(2, dim, 4);
  const teacher = linearTeacher(w, [0, 0], [dim]);
  const x = new Float32Array(n * dim).fill(0.5);
  for (let i = 0; i < n; i++) x[i * dim] += 0.01 * (i + 1);
  const y = Int32Array.from({ length: n }, (_, i) => {
    const s = teacher.scores(x, i * dim);
    return s[0] >= s[1] ? 0 : 1;
  });
  // Query limit 150 per sample in the search itself.
  const a = labelOracle(teacher);
  const ra = await untargetedBoundary(a, x, y, { kGrad: 30, queryLimit: 150, seed: 1 });
  for (let i = 0; i < n; i++) assert.ok(ra.queries[i] <= 150, `${ra.queries[i]}`);
  assert.ok(ra.stops.every((s) => s === "limit"), ra.stops.join());
  // A per-sample ledger budget of 90 (below the limit): refusals end the searches, no sample crosses it.
  const b = labelOracle(teacher, { ledger: new Ledger({ perSample: 90 }) });
  const rb = await untargetedBoundary(b, x, y, { kGrad: 30, queryLimit: 1000, seed: 1 });
  const snap = b.ledger.snapshot();
  for (const [id, e] of Object.entries(snap.bySample)) assert.ok(e.spent <= 90, `sample ${id}: ${e.spent}`);
  assert.ok(snap.totals.refused > 0);
  assert.ok(rb.stops.every((s) => s === "budget"), rb.stops.join());
  assert.ok(rb.distances.every((d) => Number.isFinite(d)));
});

/** A teacher on 4×4 images: class by mean intensity (0: < 0.3, 1: < 0.62, 2: ≥ 0.62 — rare under the
 * reference noise), and class 3 for sparse bright images (mean < 0.08 with a pixel > 0.6), which the
 * reference noise almost never draws but strokes do. */
function brightnessTeacher() {
  const dim = 16;
  return {
    spec: { inputShape: [4, 4, 1], numClasses: 4 },
    label(x: ArrayLike<number>, o: number): number {
      let s = 0, mx = 0;
      for (let k = 0; k < dim; k++) [s, mx] = [s + x[o + k], Math.max(mx, x[o + k])];
      const m = s / dim;
      if (m < 0.08 && mx > 0.6) return 3;
      return m < 0.3 ? 0 : m < 0.62 ? 1 : 2;
    },
    predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
      return Promise.resolve(Int32Array.from({ length: n }, (_, i) => this.label(x, i * dim)));
    },
  };
}

Deno.test("noise init: every class reached with label queries only, bounded, costs reported per class", async () => {
  const t = brightnessTeacher();
  const o = labelOracle(t);
  const init = await initPseudoNoise(o, {
    perClass: 6,
    batch: 200,
    referenceDraws: 400,
    maxDraws: 4000,
    seed: 3,
  });
  const r = init.report;
  assert.deepEqual(r.reached, [true, true, true, true]);
  assert.deepEqual(Array.from(init.y), [
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    3,
    3,
  ]);
  for (let i = 0; i < init.y.length; i++) assert.equal(t.label(init.x, i * 16), init.y[i], `sample ${i}`);
  // The rare classes needed the search over distributions or the walk.
  assert.ok(r.drawLabels.reference[3] < 6);
  assert.ok(r.walked.some((w) => w > 0) || r.fromDraws[3].strokes + r.fromDraws[3].smooth > 0);
  const snap = o.ledger.snapshot();
  assert.equal(snap.totals.spent, r.queries);
  assert.equal(
    (snap.byPhase["zs.noise"]?.images.label ?? 0) + (snap.byPhase["zs.walk"]?.images.label ?? 0),
    r.queries,
  );
  assert.equal(snap.byPhase["zs.walk"]?.images.label ?? 0, r.walkQueries.reduce((a, b) => a + b, 0));
});

Deno.test("noise init: a class nothing reaches is reported, and every loop ends", async () => {
  const t = brightnessTeacher();
  // Only the reference distribution, few draws: class 3 (and maybe 2) stays out of reach.
  const never = {
    ...t,
    predictLabels: (x: Float32Array, n: number) =>
      t.predictLabels(x, n).then((l) => l.map((c) => (c === 3 ? 0 : c))),
  };
  const o = labelOracle({
    spec: { inputShape: [4, 4, 1], numClasses: 4 },
    predictLabels: never.predictLabels.bind(t),
  });
  const init = await initPseudoNoise(o, {
    perClass: 3,
    batch: 100,
    referenceDraws: 300,
    maxDraws: 600,
    seed: 1,
  });
  assert.equal(init.report.reached[3], false);
  assert.equal(init.y.filter((c) => c === 3).length, 0);
  assert.ok(init.report.queries <= 600 + init.report.walkQueries.reduce((a, b) => a + b, 0));
});

Deno.test("generation moves samples away from a linear boundary, keeps their class, and resumes exactly", async () => {
  const w = randomWeights(2, 16, 9);
  const lin = linearTeacher(w, [0, 0], [4, 4, 1]);
  const opts = {
    perClass: 3,
    rounds: 2,
    iterations: 4,
    snapshotAt: [2, 4],
    untargeted: { initDirections: 1, kGrad: 20, queryLimit: 300 },
    noise: { batch: 100, referenceDraws: 100, maxDraws: 2000 },
    seed: 5,
    progress: false as const,
  };
  const a = await generatePseudoSamples(labelOracle(lin), opts);
  assert.deepEqual(a.snapshots.map((s) => s.iteration), [0, 2, 4]);
  assert.equal(a.y.length, 12);
  const dist = (x: Float32Array, i: number) =>
    Math.abs(lin.scores(x, i * 16)[0] - lin.scores(x, i * 16)[1]) /
    Math.hypot(...w[0].map((v, j) => v - w[1][j]));
  let d0 = 0, d4 = 0;
  for (let i = 0; i < 12; i++) {
    const s = lin.scores(a.snapshots[2].x, i * 16);
    assert.equal(s[0] >= s[1] ? 0 : 1, a.y[i], "class kept");
    d0 += dist(a.snapshots[0].x, i);
    d4 += dist(a.snapshots[2].x, i);
  }
  assert.ok(d4 > d0, `mean distance ${d0 / 12} → ${d4 / 12}`);
  // Interrupt a checkpointed run mid-way (the teacher fails at 60% of its calls), then resume.
  const dir = await Deno.makeTempDir();
  let calls = 0, answered = 0;
  const failAt = Math.floor(0.6 * a.ledger.totals.calls.label);
  const counted =
    (f: (x: Float32Array, n: number) => Promise<Int32Array>) => async (x: Float32Array, n: number) => {
      const out = await f(x, n);
      answered += n;
      return out;
    };
  const flaky = {
    ...lin,
    predictLabels: counted((
      x: Float32Array,
      n: number,
    ) => (++calls === failAt ? Promise.reject(new Error("down")) : lin.predictLabels(x, n))),
  };
  await assert.rejects(generatePseudoSamples(labelOracle(flaky), { ...opts, checkpointDir: dir }));
  const b = await generatePseudoSamples(labelOracle({ ...lin, predictLabels: counted(lin.predictLabels) }), {
    ...opts,
    checkpointDir: dir,
  });
  assert.ok(b.resumedIterations > 0);
  b.snapshots.forEach((s, k) => assert.deepEqual(s.x, a.snapshots[k].x));
  // The resumed ledger (replayed from the journal) counts every image the teacher answered in both
  // runs, including the interrupted iteration's, which the resumed run asked again.
  assert.equal(b.ledger.totals.spent, answered);
  assert.ok(answered > a.ledger.totals.spent);
  // The checkpoint stores the compute time: the resumed run reports the interrupted call's work too,
  // and a rerun from the finished checkpoint reports the original cost, not the ~0 s it took now.
  assert.equal(a.totalSeconds, a.seconds, "without a checkpoint, all of it was computed now");
  assert.ok(b.totalSeconds !== null && b.totalSeconds > b.seconds);
  const c = await generatePseudoSamples(labelOracle(lin), { ...opts, checkpointDir: dir });
  assert.equal(c.resumedIterations, opts.rounds * opts.iterations);
  assert.ok(c.totalSeconds !== null && c.totalSeconds > c.seconds, "the original cost, not this call's");
  assert.ok(c.totalSeconds! >= b.totalSeconds! - b.seconds, "at least what was stored before b ran");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("generation with a tight per-sample budget: refusals, never an overspend", async () => {
  const w = randomWeights(3, 16, 21);
  const lin = linearTeacher(w, [0, 0, 0], [4, 4, 1]);
  const o = labelOracle(lin, { ledger: new Ledger({ perSample: 120 }) });
  const set = await generatePseudoSamples(o, {
    perClass: 2,
    rounds: 1,
    iterations: 3,
    snapshotAt: [3],
    untargeted: { initDirections: 2, kGrad: 20, queryLimit: 100 },
    noise: { batch: 100, referenceDraws: 100, maxDraws: 3000 },
    progress: false,
  });
  const snap = set.ledger;
  assert.ok(snap.totals.refused > 0, "the budget bit");
  for (const [id, e] of Object.entries(snap.bySample)) {
    if (id !== "-1") assert.ok(e.spent <= 120, `sample ${id} spent ${e.spent}`);
  }
});

Deno.test("untargeted boundary: anchor directions (other-class images, labels known) start the search for free", async () => {
  const dim = 8, n = 4;
  const w = randomWeights(2, dim, 13);
  const teacher = linearTeacher(w, [0, 0], [dim]);
  const r = new Rng(8);
  const x = new Float32Array(n * dim).map(() => 0.45 + 0.1 * r.uniform());
  const z = Array.from({ length: n }, (_, i) => teacher.scores(x, i * dim));
  const y = Int32Array.from(z, (s) => (s[0] >= s[1] ? 0 : 1));
  // Anchors: each sample mirrored across the hyperplane (so of the other class).
  const u = w[1].map((v, j) => v - w[0][j]);
  const un = Math.hypot(...u);
  const ax = new Float32Array(n * dim);
  const al = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const m = (z[i][1] - z[i][0]) / un;
    for (let j = 0; j < dim; j++) ax[i * dim + j] = x[i * dim + j] - 2 * m * u[j] / un;
    al[i] = 1 - y[i];
  }
  for (let i = 0; i < n; i++) {
    // One sample at a time, so its nearest other-class anchor is its own mirror image.
    const o = labelOracle(teacher);
    const res = await untargetedBoundary(o, x.slice(i * dim, (i + 1) * dim), y.slice(i, i + 1), {
      initDirections: 0,
      anchorDirections: 1,
      anchors: { x: ax.slice(i * dim, (i + 1) * dim), labels: al.slice(i, i + 1) },
      kGrad: 10,
      queryLimit: 60,
    });
    const want = linearDistance(w, z[i]);
    // The mirror direction is the normal: bisection alone gets the distance to the tolerance.
    assert.ok(Math.abs(res.initDistances[0] - want) < 1e-4, `${res.initDistances[0]} vs ${want}`);
    assert.equal(res.initQueries[0], 0);
  }
});
