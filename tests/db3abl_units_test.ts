/**
 * The DB3 ablations on the runner: values with typed arrays survive the run store exactly, and a smoke
 * ablation gives the same rows, stress set, ledgers and records in one process as unit by unit in
 * separate processes on the local executor; a rerun finds every unit done.
 */
import assert from "node:assert/strict";
import { pack, unpack } from "../lib/experiments/packed.ts";
import { collectDb3Ablations, db3AblationPlan } from "../lib/experiments/db3abl_units.ts";
import { db3AblationSpec, runDb3Ablations } from "../lib/experiments/db3_ablations.ts";
import { runExperiment } from "../lib/experiments/run.ts";
import { RunStore } from "../lib/runner/store.ts";

Deno.test("db3abl pack: typed arrays, non-finite numbers and nesting come back exactly", async () => {
  const value = {
    a: Float32Array.from([1.5, -Infinity, NaN, 3e-8]),
    b: [Int32Array.from([-1, 2]), { c: Uint8Array.from([0, 255]), d: Infinity, e: null, f: "x" }],
    g: -Infinity,
    h: 0.1,
    skipped: undefined,
  };
  const p = pack(value, "v-");
  assert.deepEqual(Object.keys(p.files).sort(), ["v-0.f32", "v-1.i32", "v-2.u8"]);
  const back = await unpack<typeof value>(p.json, (name) => Promise.resolve(p.files[name]));
  assert.ok(back.a instanceof Float32Array && back.b[0] instanceof Int32Array);
  const { skipped: _skipped, ...defined } = value;
  assert.deepEqual(back, defined);
  assert.throws(() => pack({ x: new Float64Array(1) }, "v-"), /Float64Array is not supported/);
});

Deno.test("packed values: the inline form db3 units wrote before (base64 arrays, $num) still reads", async () => {
  const f = Float32Array.from([0.25, Infinity, -2]);
  const b64 = (a: Float32Array | Int32Array) => btoa(String.fromCharCode(...new Uint8Array(a.buffer)));
  const old = JSON.stringify({
    d: { $typed: "f32", b64: b64(f) },
    q: [{ $typed: "i32", b64: b64(Int32Array.from([-7, 3])) }],
    inf: { $num: "-Infinity" },
    n: 4,
  });
  const back = await unpack<{ d: Float32Array; q: Int32Array[]; inf: number; n: number }>(
    old,
    () => Promise.reject(new Error("the inline form has no files")),
  );
  assert.deepEqual(back, { d: f, q: [Int32Array.from([-7, 3])], inf: -Infinity, n: 4 });
});

Deno.test({
  name: "db3 ablations: in-process equals one process per unit on the local executor; a rerun is a no-op",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const opts = {
      scale: "smoke" as const,
      seed: 1,
      parts: ["tau" as const, "remedies" as const],
      save: false,
      cache: false as const,
    };
    const one = await Deno.makeTempDir({ prefix: "bkd-db3abl-one-" });
    const many = await Deno.makeTempDir({ prefix: "bkd-db3abl-many-" });
    try {
      const a = await runDb3Ablations({ ...opts, store: one });
      const b = await runDb3Ablations({ ...opts, store: many, executor: "local" });
      // 1 base + 2 τ students + 1 stress set + 6 remedy students, each its own process in `b`.
      const plan = (await RunStore.open(many)).plan;
      assert.deepEqual(plan.levels.map((l) => `${l.name}:${l.keys.length}`), [
        "base:1",
        "student:2",
        "stress:1",
        "remedy:6",
      ]);
      assert.deepEqual(b.rows, a.rows);
      assert.equal(a.rows.length, 4 + 2 + 6);
      assert.deepEqual(b.stress, a.stress);
      assert.ok(a.stress!.added.length > 0, "the smoke scan found no misclassified image");
      assert.deepEqual(b.base.distances.mbd?.ledger, a.base.distances.mbd?.ledger);
      assert.deepEqual(b.base.samples, a.base.samples);
      // Records: the same metrics (wall-clock seconds aside) and variants.
      const untimed = (m: Record<string, number>) => Object.entries(m).filter(([k]) => !/seconds/i.test(k));
      assert.deepEqual(b.records.map((r) => untimed(r.metrics)), a.records.map((r) => untimed(r.metrics)));
      assert.deepEqual(b.records.map((r) => r.config.variant), a.records.map((r) => r.config.variant));
      // The stress unit's own ledger: scan + labelling of the added images, nothing else.
      const st = await RunStore.open(one);
      const stressKey = st.plan.levels.find((l) => l.name === "stress")!.keys[0];
      const ledger = JSON.parse(await st.readText(stressKey, "stress.json")).ledger;
      assert.equal(ledger.totals.images.label, a.stress!.scanned + a.stress!.labelQueries);

      // Same spec again: every unit is found done, and the result is the same.
      const plan1 = db3AblationPlan(db3AblationSpec(opts), st.plan.teacher);
      const reports: string[] = [];
      const again = await runExperiment(plan1, { store: one, onUnit: (r) => reports.push(r.status) });
      assert.deepEqual(new Set(reports), new Set(["already-done"]));
      assert.deepEqual((await collectDb3Ablations(again)).rows, a.rows);
    } finally {
      await Deno.remove(one, { recursive: true });
      await Deno.remove(many, { recursive: true });
    }
  },
});
