/**
 * DB3 experiment drivers (lib/experiments/db3.ts, db3_ablations.ts): a smoke table run end to end,
 * the notebook views over it, the ablations' remedies part, and the labelers' ledgers under random per-sample budgets through the
 * resumable labeling run (the ledger-only version of that property is in oracle_test.ts; the
 * fixed-budget BD case in db3_test.ts).
 */
import assert from "node:assert/strict";
import { Ledger, QUERY_KINDS, sumBySample } from "../lib/oracle/ledger.ts";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { labelDistances } from "../lib/db3/label_run.ts";
import { type Db3Samples, makeClassStreams } from "../lib/db3/streams.ts";
import { TABLE_B, tableARow } from "../lib/results/paper.ts";
import { Rng } from "../lib/util/rng.ts";
import { DB3_TABLE_METHODS, runDb3Table } from "../lib/experiments/db3.ts";
import { runDb3Ablations } from "../lib/experiments/db3_ablations.ts";
import { db3BarRows, db3LedgerRows, db3PaperRows } from "../lib/views/db3_table.ts";
import { db3DiagnosticRows, softTarget, targetStats } from "../lib/views/db3_targets.ts";
import { db3Claims, db3ClaimsText } from "../lib/views/db3_claims.ts";
import { distanceCurve, remedyTargetRows, stressFlaggedRows } from "../lib/views/db3_ablations.ts";

const SHAPE = [4, 4, 1], D = 16, K = 3;

/** A linear label-only teacher in plain JS: class = argmax(W·x + b). */
function linearPredictor(seed: number) {
  const rng = new Rng(seed);
  const W = Array.from({ length: K }, () => Array.from({ length: D }, () => rng.normal()));
  const b = W.map((w) => -0.5 * w.reduce((a, v) => a + v, 0));
  const classify = (x: Float32Array, o: number) => {
    let best = 0, bv = -Infinity;
    for (let j = 0; j < K; j++) {
      let s = b[j];
      for (let q = 0; q < D; q++) s += W[j][q] * x[o + q];
      if (s > bv) [bv, best] = [s, j];
    }
    return best;
  };
  return {
    classify,
    predictor: {
      spec: { inputShape: SHAPE, numClasses: K },
      predictLabels: (x: Float32Array, n: number) =>
        Promise.resolve(Int32Array.from({ length: n }, (_, i) => classify(x, i * D))),
    },
  };
}

Deno.test("labeling ledgers: totals equal per-sample sums and no sample exceeds its random budget", async () => {
  const rng = new Rng(21);
  for (let trial = 0; trial < 6; trial++) {
    const t = linearPredictor(100 + trial);
    const pool = new Float32Array(300 * D);
    rng.fillUniform(pool, 0.1, 0.9);
    const py = Int32Array.from({ length: 300 }, (_, i) => t.classify(pool, i * D));
    const streams = makeClassStreams({ x: pool, y: py, shape: [300, ...SHAPE], numClasses: K }, trial);
    const n = 4 + rng.int(4);
    const sx = new Float32Array(n * D);
    rng.fillUniform(sx, 0.3, 0.7);
    // Ground truth disagrees with the teacher on some samples (misclassified → flagged, d ≈ tol).
    const sy = Int32Array.from(
      { length: n },
      (_, i) => (rng.uniform() < 0.2 ? rng.int(K) : t.classify(sx, i * D)),
    );
    const samples: Db3Samples = { x: sx, y: sy, shape: [n, ...SHAPE], numClasses: K };
    const ledger = new Ledger({ perSample: 20 + rng.int(400) });
    for (let i = 0; i < n; i++) if (rng.uniform() < 0.5) ledger.setSampleBudget(i, rng.int(1500));
    const method = trial % 2 ? "mbd" as const : "bd" as const;
    const r = await labelDistances(labelOracle(t.predictor, { ledger }), samples, streams, {
      method,
      bd: { candidates: 20 },
      mbd: { kGrad: 8, queryLimit: 300, snapshotAt: [150, 300], seed: trial },
      chunkSize: 1 + rng.int(3),
      progress: false,
    });
    const snap = r.ledger!;
    for (const kind of QUERY_KINDS) assert.equal(snap.totals.images[kind], sumBySample(snap, kind));
    let spent = 0;
    for (let i = 0; i < n; i++) {
      const e = snap.bySample[String(i)];
      const s = e?.spent ?? 0;
      spent += s;
      assert.ok(s <= ledger.budgetOf(i), `trial ${trial} sample ${i}: spent ${s} > ${ledger.budgetOf(i)}`);
      // A refused request marks the sample exhausted.
      if ((e?.refused ?? 0) > 0) assert.equal(r.exhausted[i], 1);
    }
    assert.equal(spent, snap.totals.spent);
    // Every finite distance is a real boundary point (non-negative); the true class stays Infinity.
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < K; c++) {
        const d = r.distances[i * K + c];
        if (c === sy[i]) assert.equal(d, Infinity);
        else assert.ok(!(d < 0));
      }
    }
  }
});

Deno.test("soft-target statistics: uniform at large τ, flagged pull share", () => {
  assert.deepEqual(softTarget([0, 0], 1), [0.5, 0.5]);
  // Sample 0 is flagged (d ≈ tol to class 1: half its target mass on a wrong class), sample 1 is not.
  const y = Int32Array.from([0, 1]);
  const d = Float32Array.from([Infinity, 1e-5, 3, 2, Infinity, 1]);
  const z = Float32Array.from([1e5 + 1 / 3, 1e5, 1 / 3, 0.5, 1.5, 1]);
  const s = targetStats(z, d, y, 3, 20, [0]);
  assert.equal(s.flagged, 1);
  assert.ok(s.flaggedLossShare > 0.99);
  assert.equal(s.maxLogit, z[0]);
  assert.equal(s.medianDistance, 1.5); // off-class d: 1e-5, 1, 2, 3
});

Deno.test({
  name: "smoke DB3 table: every row, finite accuracies, exact ledgers, paper numbers from table B",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await runDb3Table({ dataset: "mnist", scale: "smoke", seed: 1, save: false, cacheDir: false });
    assert.deepEqual(r.rows.map((x) => x.method), ["teacher", ...DB3_TABLE_METHODS]);
    for (const row of r.rows) {
      assert.ok(Number.isFinite(row.testAcc) && row.testAcc >= 0 && row.testAcc <= 1, row.method);
      assert.ok(row.trainedOn > 0);
    }
    assert.equal(r.records.length, DB3_TABLE_METHODS.length);
    // The oracle engine is recorded: native (g++ is on the dev machine and CI) unless BKD_NATIVE=0.
    const engine = r.records[0].config.oracleEngine as { engine: string; label: string } | undefined;
    assert.equal(
      engine?.engine,
      Deno.env.get("BKD_NATIVE") === "0" ? "pool" : "native",
      engine?.label ?? "no oracleEngine",
    );
    // So is the training engine of every student (a DB3 LeNet-5: native unless BKD_NATIVE=0).
    for (const rec of r.records) {
      assert.deepEqual(
        rec.trainEngines?.map((u) => u.engine),
        [Deno.env.get("BKD_NATIVE") === "0" ? "wasm" : "native"],
        `${rec.method}: ${JSON.stringify(rec.trainEngines)}`,
      );
    }
    const n = r.samples.y.length;
    assert.equal(r.rows.find((x) => x.method === "sd")!.queriesPerSample, 0);
    assert.equal(r.rows.find((x) => x.method === "kd")!.queriesPerSample, 1);
    // Ledgers: totals = Σ per-sample; the BD share of the MBD ledger is its bd.* phases.
    for (const row of db3LedgerRows(r)) assert.equal(row["total = Σ per-sample"], true, String(row.ledger));
    const led = r.distances.mbd!.ledger!;
    assert.equal(led.totals.images.label, sumBySample(led, "label"));
    const bdImages = Object.entries(led.byPhase).filter(([p]) => p.startsWith("bd.")).reduce(
      (a, [, e]) => a + e.images.label,
      0,
    );
    assert.equal(r.rows.find((x) => x.method === "bd")!.queriesPerSample, bdImages / n);
    // MBD's per-pair query limit (BD's queries included) holds for every pair.
    for (const q of r.distances.mbd!.queries!) assert.ok(q <= r.settings.mbd.queryLimit!);
    // Paper numbers come from table B (unverified) and table A; never into a measured column.
    const paper = db3PaperRows(r);
    const mbdPaper = paper.find((p) => p.method === "DB3-MBD")!;
    assert.equal(
      mbdPaper.paper,
      TABLE_B.find((b) => b.key === "db3-mbd" && b.dataset === "mnist")!.studentAcc.mean,
    );
    assert.equal(mbdPaper.unverified, true);
    assert.equal(paper[0].paper, tableARow("zsdb3kd", "mnist")!.teacherAcc[0]);
    for (const p of paper) assert.ok(typeof p.measured === "number" && Number.isFinite(p.measured));
    assert.equal(
      db3BarRows(r).filter((b) => b.source.startsWith("measured")).length,
      r.rows.length,
    );
    const claims = db3Claims(r);
    assert.equal(claims.length, 4);
    assert.ok(db3ClaimsText(claims, db3DiagnosticRows(r)).length > 0);
    const curve = distanceCurve(r);
    assert.equal(curve.length, 1 + r.settings.mbd.snapshotAt!.length);
    // Snapshots never grow the median distance.
    for (let i = 2; i < curve.length; i++) assert.ok(curve[i].median <= curve[i - 1].median + 1e-9);
  },
});

Deno.test({
  name: "smoke DB3 ablations, remedies: misclassified images are added, flagged, floored or dropped",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const store = await Deno.makeTempDir({ prefix: "bkd-db3abl-" });
    const r = await runDb3Ablations({
      scale: "smoke",
      seed: 1,
      parts: ["remedies"],
      save: false,
      cache: false,
      store,
    });
    await Deno.remove(store, { recursive: true });
    const st = r.stress!;
    const n0 = r.base.samples.y.length;
    assert.ok(st.found > 0 && st.added.length === Math.min(st.found, r.settings.stress.add));
    assert.equal(st.samples.y.length, n0 + st.added.length);
    // Every added image is one the teacher gets wrong, so it is flagged.
    const flagged = stressFlaggedRows(r).map((x) => Number(x.sample));
    for (let j = 0; j < st.added.length; j++) {
      assert.notEqual(st.teacherLabels[n0 + j], st.samples.y[n0 + j]);
      assert.ok(flagged.includes(n0 + j));
    }
    const rem = r.rows.filter((x) => x.part === "remedies");
    assert.equal(rem.length, 6);
    for (const x of rem) assert.ok(Number.isFinite(x.testAcc));
    const none = rem.find((x) => x.variant.startsWith("BD") && x.variant.endsWith("no remedy"))!;
    const floor = rem.find((x) => x.variant.startsWith("BD") && x.variant.endsWith("distance floor"))!;
    const drop = rem.find((x) => x.variant.startsWith("BD") && x.variant.endsWith("flagged dropped"))!;
    assert.ok(floor.maxLogit! < none.maxLogit!);
    assert.equal(drop.trainedOn, st.samples.y.length - flagged.length);
    assert.equal(remedyTargetRows(r).length, 6);
  },
});
