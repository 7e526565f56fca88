/**
 * The zsdb3kd family on the runner: its settings table (paper = the methods' reference defaults,
 * laptop and smoke = the settings the notebooks ran before the runner), its plan, and split invariance
 * (one generation shard in this process vs three shards in unit processes of the local executor, one of
 * them killed mid-run and resumed, give the same pseudo samples, distances, soft labels, ledgers and
 * student accuracies).
 */
import assert from "node:assert/strict";
import { BD_DEFAULTS } from "../lib/db3/bd.ts";
import { clearDatasetReadLog, datasetReadLog } from "../lib/data/mod.ts";
import { runExperiment } from "../lib/experiments/run.ts";
import { collectZeroShot, type ZeroShotSeedsResult } from "../lib/experiments/zs_collect.ts";
import { readGeneration } from "../lib/experiments/zs_generate_units.ts";
import { readReduced } from "../lib/experiments/zs_label_units.ts";
import { ZS_SETTINGS, zsSettings } from "../lib/experiments/zs_settings.ts";
import { ZS_TEACHER, zsNotebookSpec, zsPlan, zsSpec } from "../lib/experiments/zs_spec.ts";
import { openPlannedTeacher, resolveTeacher } from "../lib/experiments/open_teacher.ts";
import { Ledger } from "../lib/oracle/ledger.ts";
import { splitInvariantView } from "../lib/runner/ledgers.ts";
import { RunStore } from "../lib/runner/store.ts";
import { runLocal } from "../lib/runner/executors/local.ts";
import { journalImages } from "../lib/runner/journal.ts";
import { GENERATE_DEFAULTS, generatePseudoSamples } from "../lib/zeroshot/generate.ts";
import { seedSummary } from "../lib/views/zeroshot.ts";
import { NOISE_INIT_DEFAULTS } from "../lib/zeroshot/noise_init.ts";
import { UNTARGETED_DEFAULTS } from "../lib/zeroshot/untargeted.ts";

Deno.test("zsdb3kd settings: paper is the methods' reference; laptop and smoke are the notebooks' settings", () => {
  const { seed: _a, idOffset: _b, ...generate } = GENERATE_DEFAULTS;
  const { seed: _c, ...untargeted } = UNTARGETED_DEFAULTS;
  const { seed: _d, ...noise } = NOISE_INIT_DEFAULTS;
  for (
    const [family, model, lr] of [["lenet", "db3-lenet5-half", 1e-3], [
      "alexnet",
      "db3-alexnet-half",
      5e-3,
    ]] as const
  ) {
    const paper = ZS_SETTINGS[family].paper.base;
    assert.deepEqual(paper.generate, { ...generate, untargeted, noise });
    assert.deepEqual(paper.label, { method: "bd", bd: BD_DEFAULTS });
    // DB3 student recipe (algorithms.md): 200 epochs, batch 512, Adam 1e-3 (LeNet) / 5e-3 (AlexNet), τ = 20.
    assert.deepEqual(paper.student, { model, lr, epochs: 200, batchSize: 512, temperature: 20 });
    assert.equal(paper.testLimit, 0);
    for (const s of ["paper", "laptop", "smoke"] as const) assert.ok(ZS_SETTINGS[family][s].note.length > 20);
  }
  // The laptop MNIST settings of notebook 30 before the runner, field by field.
  const l = zsSettings("laptop", "mnist");
  assert.deepEqual(
    [l.generate.perClass, l.generate.rounds, l.generate.iterations, l.generate.snapshotAt],
    [50, 1, 10, [2, 4, 6, 8, 10]],
  );
  assert.deepEqual(l.generate.untargeted, {
    ...untargeted,
    initDirections: 1,
    maxInitTries: 200,
    kGrad: 100,
    queryLimit: 1000,
  });
  assert.deepEqual(l.generate.noise, { ...noise, batch: 2000, referenceDraws: 4000, maxDraws: 20000 });
  assert.deepEqual(l.student, {
    model: "db3-lenet5-half",
    lr: 1e-3,
    epochs: 200,
    batchSize: 64,
    temperature: 20,
  });
  assert.deepEqual([l.perSampleBudget, l.testLimit, l.label.bd], [14000, 0, BD_DEFAULTS]);
  const c = zsSettings("laptop", "cifar10");
  assert.deepEqual([c.generate.perClass, c.generate.iterations, c.student.epochs, c.student.batchSize], [
    5,
    4,
    100,
    32,
  ]);
  assert.equal(c.perSampleBudget, 2000);
  const s = zsSettings("smoke", "mnist");
  assert.deepEqual([s.generate.perClass, s.generate.iterations, s.label.bd.candidates, s.student.epochs], [
    2,
    2,
    11,
    2,
  ]);
  assert.deepEqual([s.testLimit, s.perSampleBudget], [300, 1000]);
  assert.throws(() => zsSettings("smoke", "mnist", { generate: { iterationz: 3 } } as never), /unknown key/);
});

Deno.test("zsdb3kd plan: levels, cells and keys follow the spec and the teacher", () => {
  const spec = zsSpec({ dataset: "mnist", scale: "smoke", seeds: [1, 2], settings: { shardSize: 7 } });
  const plan = zsPlan(spec, "f".repeat(64));
  const sizes = Object.fromEntries(plan.levels.map((l) => [l.name, l.keys.length]));
  // 20 ids per seed in ranges of 7 → 3 shards; labels at iterations 0 and 2; one reduce and 2 students per seed.
  assert.deepEqual(sizes, { init: 2, generate: 6, label: 12, reduce: 2, student: 4 });
  for (const l of plan.levels) {
    assert.equal(new Set(l.keys).size, l.keys.length, `${l.name} keys are distinct`);
    assert.ok(l.estimate && l.estimate.cpuSeconds >= 0 && l.estimate.source.length > 0);
  }
  const other = zsPlan(spec, "e".repeat(64));
  assert.notEqual(other.levels[0].keys[0], plan.levels[0].keys[0], "the teacher is in every key");
  // The shard size changes the generation ranges, not the init units.
  const one = zsPlan(
    zsSpec({ dataset: "mnist", scale: "smoke", seeds: [1, 2], settings: { shardSize: 20 } }),
    "f".repeat(64),
  );
  assert.deepEqual(one.levels[0].keys, plan.levels[0].keys);
  assert.equal(one.levels[1].keys.length, 2);
  const nb33 = zsNotebookSpec("33", "laptop");
  assert.deepEqual(nb33.seeds, [1, 2, 3]);
  assert.deepEqual(nb33.studentIterations, [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(nb33.sweep, { counts: [13, 25, 50], iterations: [0, 10] });
  assert.deepEqual(zsNotebookSpec("32", "smoke", { seed: 4 }).seeds, [4]);
  assert.throws(
    () => zsSpec({ dataset: "mnist", scale: "smoke", studentIterations: [3] }),
    /no snapshot at iteration 3/,
  );
});

async function journalsPaid(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(dir)) total += await journalImages(`${dir}/${e.name}`);
  } catch {
    // not started yet
  }
  return total;
}

async function snapshot(store: RunStore, r: ZeroShotSeedsResult) {
  const seed = r.runs[0].seed;
  const gen = await readGeneration(store, seed);
  const red = await readReduced(store, seed);
  return {
    ids: Array.from(gen.ids),
    y: Array.from(gen.y),
    x: gen.snapshots.map((s) => Array.from(s.x)),
    distances: gen.distances.map((d) => Array.from(d)),
    queries: gen.queries,
    z: [...red.z.entries()].map(([k, z]) => [k, Array.from(z)]),
    generation: splitInvariantView(red.generation.ledger),
    labels: red.labels.map((l) => [l.iteration, splitInvariantView(l.ledger), l.keep, l.budgetCut]),
    students: r.runs[0].students.map((s) => [s.iteration, s.testAcc, s.queries, s.trainedOn]),
    totalQueries: r.runs[0].totalQueries,
  };
}

Deno.test({
  name:
    "zsdb3kd split invariance: 1 shard in process = 3 shards in unit processes (one killed, resumed) = generatePseudoSamples",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "bkd-zs-split-" });
    try {
      const spec = (shardSize: number) =>
        zsSpec({ dataset: "mnist", scale: "smoke", seeds: [1], settings: { shardSize } });
      const { fingerprint } = await resolveTeacher(spec(20), ZS_TEACHER);
      clearDatasetReadLog();
      const a = await runExperiment(zsPlan(spec(20), fingerprint), { store: `${tmp}/one`, onUnit: () => {} });
      for (const e of datasetReadLog()) assert.equal(e.split, "test", `read ${e.name}/${e.split}`);
      const planB = zsPlan(spec(7), fingerprint);
      assert.equal(planB.levels.find((l) => l.name === "generate")!.keys.length, 3);
      // Three generation shards in unit processes; generate[1] is killed once the teacher has answered
      // some of its queries, then the run is resumed.
      const b = await RunStore.create(`${tmp}/three`, planB);
      const victim = `${tmp}/three/work/${planB.levels[1].keys[1]}`;
      const first = await runLocal(b, {
        workers: 2,
        onStart: (level, index, child) => {
          if (level !== "generate" || index !== 1) return;
          (async () => {
            while ((await journalsPaid(victim)) === 0) await new Promise((r) => setTimeout(r, 10));
            child.kill("SIGKILL");
          })();
        },
      });
      assert.deepEqual(first.filter((r) => r.status === "failed").map((r) => `${r.level}${r.index}`), [
        "generate1",
      ]);
      const killedPaid = await journalsPaid(victim);
      assert.ok(killedPaid > 0);
      const second = await runLocal(b, { workers: 2 });
      assert.ok(second.every((r) => r.status === "ran"), JSON.stringify(second));
      const ra = await collectZeroShot(a), rb = await collectZeroShot(b);
      const sa = await snapshot(a, ra), sb = await snapshot(b, rb);
      assert.equal(sa.ids.length, 20);
      // The killed attempt's queries are paid on top of the split-invariant ledgers.
      assert.equal(sb.totalQueries, sa.totalQueries + killedPaid);
      assert.deepEqual({ ...sb, totalQueries: 0 }, { ...sa, totalQueries: 0 });
      // The family's generation is the library's: generatePseudoSamples in one process, same settings.
      const teacher = await openPlannedTeacher(spec(20), fingerprint, ZS_TEACHER);
      const oracle = await teacher.labelOracle(new Ledger({ perSample: spec(20).settings.perSampleBudget }));
      const whole = await generatePseudoSamples(oracle, {
        ...spec(20).settings.generate,
        seed: 1,
        progress: false,
      });
      teacher.close();
      teacher.model?.dispose();
      assert.deepEqual(sa.x, whole.snapshots.map((q) => Array.from(q.x)));
      assert.deepEqual(sa.generation, splitInvariantView(whole.ledger));
      // Budgets: generation + one labeling of a pseudo sample never cross the per-sample budget.
      assert.ok(ra.runs[0].maxSampleSpend > 0 && ra.runs[0].maxSampleSpend <= ra.runs[0].perSampleBudget);
      assert.equal(ra.runs[0].records.length, 2, "one run record per student, with its ledger");
      assert.ok((ra.runs[0].records[1].ledger as { generation: unknown }).generation);
      // A second run of the same plan finds every unit done.
      const again: string[] = [];
      await runExperiment(zsPlan(spec(20), fingerprint), {
        store: `${tmp}/one`,
        onUnit: (u) => again.push(u.status),
      });
      assert.ok(again.length > 0 && again.every((s) => s === "already-done"), again.join(","));
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("zsdb3kd views: the seed summary compares each seed's last students and judges the gap by the spread", () => {
  const run = (seed: number, z: number, n: number) => ({
    seed,
    students: [
      { variant: "noise", iteration: 0, testAcc: n, queries: 100 },
      { variant: "zsdb3kd", iteration: 2, testAcc: z - 0.1, queries: 200 },
      { variant: "zsdb3kd", iteration: 4, testAcc: z, queries: 300 },
    ],
  });
  const two = { runs: [run(1, 0.5, 0.3), run(2, 0.6, 0.3)] } as unknown as ZeroShotSeedsResult;
  const { summary, gap } = seedSummary(two);
  assert.deepEqual(summary.map((s) => [s.variant, s.values, s.meanQueries]), [
    ["zsdb3kd", [0.5, 0.6], 300],
    ["noise", [0.3, 0.3], 100],
  ]);
  assert.ok(Math.abs(gap.mean - 0.25) < 1e-12 && Math.abs(gap.spread - Math.sqrt(0.005)) < 1e-12);
  assert.equal(gap.verdict, "larger than the seed-to-seed spread");
  const one = seedSummary({ runs: [run(1, 0.5, 0.3)] } as unknown as ZeroShotSeedsResult);
  assert.equal(one.gap.beatsSpread, false);
  assert.match(one.gap.verdict, /one seed/);
  const close = seedSummary(
    { runs: [run(1, 0.5, 0.45), run(2, 0.7, 0.5)] } as unknown as ZeroShotSeedsResult,
  );
  assert.equal(close.gap.verdict, "not larger than the seed-to-seed spread");
});
