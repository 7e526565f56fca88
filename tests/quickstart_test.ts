/**
 * The quickstart as data on the runner: `paper` is Figure 1's setting, the scales resolve to what
 * notebook 00 ran with, and a run gives the same results in one process as one process per unit; a
 * rerun of the same settings finds both units done.
 */
import assert from "node:assert/strict";
import {
  MOONS_MLP,
  QUICKSTART_SETTINGS,
  quickstartSpec,
  runQuickstart,
} from "../lib/experiments/quickstart.ts";
import { quickstartPlan } from "../lib/experiments/quickstart_units.ts";
import { runExperiment } from "../lib/experiments/run.ts";
import { resolveSettings } from "../lib/experiments/settings.ts";
import { RunStore } from "../lib/runner/store.ts";
import { moonsRows } from "../lib/views/quickstart.ts";

Deno.test("quickstart settings: paper is Figure 1's toy; laptop and smoke are what notebook 00 ran", () => {
  // algorithms.md, CAKE Figure 1: MLP 2→20→20→20→2, class-0 probability over [−2,2]² on a 200×200 grid.
  assert.deepEqual(MOONS_MLP, {
    name: "mlp",
    inputShape: [2],
    numClasses: 2,
    options: { hidden: 20, depth: 2 },
  });
  assert.equal(QUICKSTART_SETTINGS.paper.base.fieldSteps, 200);
  assert.deepEqual(resolveSettings(QUICKSTART_SETTINGS, "laptop"), {
    moonsPoints: 1000,
    teacherEpochs: 150,
    probes: 24,
    studentEpochs: 400,
    fieldSteps: 120,
    inferImages: 10000,
  });
  assert.deepEqual(resolveSettings(QUICKSTART_SETTINGS, "smoke"), {
    moonsPoints: 400,
    teacherEpochs: 30,
    probes: 24,
    studentEpochs: 60,
    fieldSteps: 60,
    inferImages: 2048,
  });
  const spec = quickstartSpec({ scale: "smoke" });
  assert.deepEqual(spec.teacher, {
    kind: "recipe",
    dataset: "mnist",
    model: "db3-lenet5",
    scale: "smoke",
    seed: 1,
  });
});

Deno.test({
  name: "quickstart: in-process equals one process per unit; a rerun reads the run store, records re-issued",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const opts = {
      scale: "smoke" as const,
      seed: 1,
      save: false,
      settings: { moonsPoints: 200, teacherEpochs: 5, studentEpochs: 5, fieldSteps: 8, inferImages: 256 },
    };
    const one = await Deno.makeTempDir({ prefix: "bkd-qs-one-" });
    const two = await Deno.makeTempDir({ prefix: "bkd-qs-two-" });
    try {
      const a = await runQuickstart({ ...opts, store: one });
      const b = await runQuickstart({ ...opts, store: two, executor: "local" });
      assert.deepEqual(b.moons, a.moons);
      assert.equal(b.mnist.teacherAcc, a.mnist.teacherAcc);
      assert.equal(a.moons.teacher.field.values.length, 8 * 8);
      assert.deepEqual(moonsRows(a).map((x) => x.model), [
        "teacher (real points)",
        "student: hard labels",
        "student: soft labels",
      ]);
      assert.deepEqual(a.records.map((r) => r.method), ["two-moons-kd", "teacher"]);
      const fp = (await RunStore.open(one)).plan.teacher;
      const statuses: string[] = [];
      await runExperiment(quickstartPlan(quickstartSpec(opts), fp), {
        store: one,
        onUnit: (r) => statuses.push(r.status),
      });
      assert.deepEqual(statuses, ["already-done", "already-done"]);
      // A rerun's records are this execution's (new ids and times), same numbers, saying where they came from.
      const c = await runQuickstart({ ...opts, store: one });
      assert.deepEqual(c.moons, a.moons);
      for (const [i, rec] of c.records.entries()) {
        assert.notEqual(rec.id, a.records[i].id);
        assert.ok(rec.startedAt > a.records[i].startedAt);
        assert.deepEqual(rec.metrics, a.records[i].metrics);
        assert.match(
          rec.notes!.at(-1)!,
          new RegExp(`numbers reused from a finished unit of run store .*${a.records[i].id}`),
        );
        assert.ok(!(a.records[i].notes ?? []).some((n) => n.includes("reused")));
      }
    } finally {
      await Deno.remove(one, { recursive: true });
      await Deno.remove(two, { recursive: true });
    }
  },
});
