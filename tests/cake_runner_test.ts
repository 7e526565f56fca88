/**
 * The "cake" family on the runner: the settings tables (paper = the reference defaults of lib/cake and
 * of the algorithms spec; laptop/smoke = the settings the notebooks ran before the runner), the plans
 * of notebooks 20–24, and split invariance — a smoke MNIST run in one process with one synthesis shard
 * equals the same run as 3 shards on the local executor (unit processes for real).
 */
import assert from "node:assert/strict";
import { CAKE_STUDENT } from "../lib/cake/student.ts";
import { GENERATOR_DEFAULTS } from "../lib/cake/generator.ts";
import { clearDatasetReadLog, datasetReadLog } from "../lib/data/mod.ts";
import {
  CAKE_ABLATION_SETTINGS,
  CAKE_IMAGE_SETTINGS,
  paperSynth,
  TWO_MOONS_SETTINGS,
} from "../lib/experiments/cake_settings.ts";
import {
  CAKE_CIFAR_SETTINGS,
  CAKE_TYPE_SETTINGS,
  resolveMatrixSettings,
} from "../lib/experiments/cake_matrix_settings.ts";
import { cakeNotebookPlan, cakeNotebookSpec, runCakeSpec } from "../lib/experiments/cake_notebooks.ts";
import { allShards, cakePlan } from "../lib/experiments/cake_spec.ts";
import { readCakeMnist, readTwoMoonsFigure } from "../lib/views/cake_results.ts";
import { readStoredSet } from "../lib/experiments/cake_sets.ts";
import { runExperiment } from "../lib/experiments/run.ts";
import { resolveSettings } from "../lib/experiments/settings.ts";
import { splitInvariantView } from "../lib/runner/ledgers.ts";
import { runLocal } from "../lib/runner/executors/local.ts";
import { RunStore } from "../lib/runner/store.ts";
import { getTeacher } from "../lib/train/teachers.ts";
import { initBackend } from "../lib/backend.ts";
import { saveTeacherFolder } from "../lib/teachers/load.ts";
import { buildModel } from "../lib/models/registry.ts";

Deno.test("cake settings: paper is the reference configuration of lib/cake and the spec", () => {
  // algorithms.md, "Defaults per dataset" (w_cls, w_contr, w_tv, η0, T, B, M, G), D = 4, log-linear, no LAKE.
  const spec = {
    "two-moons": [1e-2, 1e-3, 0, 1e-2, 250, 100, 100, 2],
    mnist: [1e3, 1e-3, 1e7, 0.1, 256, 500, 512, 10],
    fmnist: [1e3, 1e-3, 1e7, 0.1, 256, 500, 512, 10],
    cifar10: [1e3, 1e1, 1e5, 0.1, 256, 500, 500, 10],
  } as const;
  for (const [d, [cls, contr, tv, eta0, steps, batchSize, numBatches, groups]] of Object.entries(spec)) {
    const weights = { cls, contr, tv, ent: 0 };
    const want = {
      numBatches,
      batchSize,
      groups,
      steps,
      eta0,
      decades: 4,
      decay: "linear",
      weights,
      langevin: false,
    };
    assert.deepEqual(paperSynth(d as keyof typeof spec), want, d);
  }
  const moons = TWO_MOONS_SETTINGS.paper.base;
  assert.deepEqual(moons.cake, paperSynth("two-moons"));
  assert.deepEqual(moons.naive, paperSynth("two-moons"));
  const { seed: _s, phase: _p, progress: _g, ...gen } = GENERATOR_DEFAULTS;
  // The reference notebook trains the generator for 15,000 steps and draws 10,000 points.
  assert.deepEqual(moons.generator, { ...gen, steps: 15000, numSamples: 10000 });
  assert.deepEqual(moons.mlp, { hidden: 20, depth: 2 }); // 2→20→20→20→2
  assert.deepEqual(moons.grid, { lo: -2, hi: 2, steps: 200 });
  // Students (algorithms.md): SGD momentum 0.9, wd 5e-4, 99/1 split; MNIST 10 × 128 at 0.1, else 30 × 256 at 0.5.
  const recipe = (epochs: number, batchSize: number, lr: number) => ({
    epochs,
    batchSize,
    lr,
    momentum: 0.9,
    weightDecay: 5e-4,
    valFraction: 0.01,
    workers: "auto",
  });
  assert.deepEqual(CAKE_STUDENT.mnistLike, recipe(10, 128, 0.1));
  assert.deepEqual(CAKE_STUDENT.other, recipe(30, 256, 0.5));
  assert.deepEqual(moons.student, recipe(30, 256, 0.5));
  assert.deepEqual(CAKE_IMAGE_SETTINGS.paper.base.student, recipe(10, 128, 0.1));
  assert.deepEqual(CAKE_IMAGE_SETTINGS.paper.base.synth, paperSynth("mnist"));
  assert.equal(CAKE_IMAGE_SETTINGS.paper.base.testLimit, null);
  assert.deepEqual(CAKE_ABLATION_SETTINGS.paper.base, CAKE_IMAGE_SETTINGS.paper.base);
  assert.deepEqual(CAKE_CIFAR_SETTINGS.paper.base.synth, paperSynth("cifar10"));
  assert.deepEqual(CAKE_CIFAR_SETTINGS.paper.base.student, recipe(30, 256, 0.5));
  assert.deepEqual(CAKE_TYPE_SETTINGS.paper.base.synth, paperSynth("mnist"));
  assert.deepEqual(CAKE_TYPE_SETTINGS.paper.base.student, recipe(10, 128, 0.1));
  for (const t of [TWO_MOONS_SETTINGS, CAKE_IMAGE_SETTINGS, CAKE_CIFAR_SETTINGS, CAKE_TYPE_SETTINGS]) {
    for (const s of ["paper", "laptop", "smoke"] as const) assert.ok(t[s].note.length > 20, `${s} note`);
  }
});

Deno.test("cake settings: laptop and smoke are the settings the notebooks ran before the runner", () => {
  const moons = resolveSettings(TWO_MOONS_SETTINGS, "laptop");
  assert.deepEqual(moons.realPoints, 1000);
  assert.deepEqual(moons.teacher, { epochs: 30, batchSize: 32, lr: 0.1 });
  assert.deepEqual([moons.cake.numBatches, moons.cake.batchSize, moons.cake.steps, moons.cake.eta0], [
    5,
    100,
    250,
    1e3,
  ]);
  assert.deepEqual(moons.cake.weights, { cls: 1e-2, contr: 1e-3, tv: 0, ent: 0 });
  assert.deepEqual([moons.generator.steps, moons.generator.numSamples], [3000, 500]);
  assert.deepEqual([moons.student.epochs, moons.student.batchSize, moons.student.lr], [30, 25, 0.5]);
  const smoke = resolveSettings(TWO_MOONS_SETTINGS, "smoke");
  assert.deepEqual([smoke.cake.numBatches, smoke.cake.batchSize, smoke.cake.steps], [2, 20, 30]);
  assert.deepEqual([smoke.grid.steps, smoke.plotPoints, smoke.student.epochs], [40, 40, 5]);
  const img = resolveSettings(CAKE_IMAGE_SETTINGS, "laptop");
  assert.deepEqual([img.synth.numBatches, img.synth.batchSize, img.synth.steps, img.student.epochs], [
    80,
    500,
    8,
    15,
  ]);
  assert.deepEqual(img.student.batchSize, 128);
  const abl = resolveSettings(CAKE_ABLATION_SETTINGS, "laptop");
  assert.deepEqual([abl.synth.numBatches, abl.synth.steps, abl.student.epochs, abl.student.batchSize], [
    12,
    8,
    20,
    64,
  ]);
  const cifar = resolveMatrixSettings(CAKE_CIFAR_SETTINGS, "laptop");
  // The teacher recipe is replaced whole: no SGD momentum left in the Adam optimizer.
  assert.deepEqual(cifar.teacherRecipe.optimizer, { kind: "adam", lr: 2e-3 });
  assert.deepEqual(cifar.students.map((s) => s.name), ["ResNet-8", "ResNet-4"]);
  assert.deepEqual([cifar.synth.numBatches, cifar.synth.batchSize, cifar.synth.steps], [4, 500, 8]);
  const types = resolveMatrixSettings(CAKE_TYPE_SETTINGS, "smoke");
  assert.deepEqual(types.teacherRecipe.trainLimit, 512);
  assert.deepEqual(types.teachers.map((t) => t.name), ["MLP", "CNN", "ResNet", "ViT"]);
  assert.throws(
    () => resolveSettings(CAKE_IMAGE_SETTINGS, "smoke", { synth: { stpes: 3 } } as never),
    /stpes/,
  );
});

Deno.test("cake plans: notebooks 20–24 at smoke, shards of consecutive batches, shared syntheses", async () => {
  const p20 = await cakeNotebookSpec("20", "smoke");
  assert.deepEqual(p20.cells.map((c) => c.variant), ["naive", "generator", "cake"]);
  // 2 batches per CAKE/naive set at one batch a shard, one generator unit.
  assert.equal(allShards(p20).length, 5);
  const p23 = await cakeNotebookSpec("23", "smoke", {
    variants: { "two-moons": ["full", "hard-targets"], mnist: [] },
  });
  // "hard-targets" changes only the student: it reuses the full method's synthesis.
  assert.equal(p23.cells.length, 4);
  assert.equal(p23.syntheses.length, 2);
  assert.equal(p23.cells[0].synth, p23.cells[1].synth);
  const plan = cakePlan(p23);
  assert.deepEqual(plan.levels.map((l) => [l.name, l.keys.length]), [["teacher", 2], ["synth", 4], [
    "student",
    4,
  ]]);
  const all = plan.levels.flatMap((l) => l.keys);
  assert.equal(new Set(all).size, all.length, "unit keys are unique");
  assert.ok(plan.levels[1].estimate!.queries > 0 && plan.levels[1].estimate!.source.length > 0);
  // Two-moons smoke student: 40 points × 0.99 × 5 epochs at the measured student rate.
  assert.ok(Math.abs(plan.levels[2].estimate!.cpuSeconds - (40 * 0.99 * 5) / 3500) < 1e-9);
  for (const nb of ["22", "24"] as const) {
    const s = await cakeNotebookSpec(nb, "smoke");
    assert.equal(s.cells.length, s.teachers.length * (nb === "22" ? 1 : 4));
  }
  await assert.rejects(() => cakeNotebookPlan("20", "smoke", { teacher: "x" }), /trains its own teachers/);
  await assert.rejects(
    () => cakeNotebookPlan("21", "smoke", { teacher: "http://127.0.0.1:1/v2/models/m" }),
    /logits\+grad/,
  );
});

Deno.test("cake two-moons figure (smoke) through the runner: three methods, fields, no dataset read", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-cake20-" });
  try {
    clearDatasetReadLog();
    const spec = await cakeNotebookSpec("20", "smoke");
    const store = await runCakeSpec(spec, { cache: root });
    const r = await readTwoMoonsFigure(store);
    // cache: false starts a fresh store and computes the same figure again.
    const fresh = await runCakeSpec(spec, { cache: false });
    assert.notEqual(fresh.root, store.root);
    assert.deepEqual((await readTwoMoonsFigure(fresh)).summary, r.summary);
    await Deno.remove(fresh.root, { recursive: true });
    assert.equal(datasetReadLog().length, 0);
    assert.deepEqual(r.summary.map((s) => s.method), ["teacher", "naive", "generator", "cake"]);
    const seed = r.seeds[0];
    assert.equal(seed.teacherField.values.length, 40 * 40);
    for (const m of seed.methods) {
      assert.equal(m.field.values.length, 40 * 40);
      assert.ok(m.accuracy > 0.5, `${m.method} ${m.accuracy}`);
      assert.ok(m.record.ledger !== undefined);
      assert.equal(m.record.metrics.studentAcc, m.accuracy);
    }
    // CAKE: 2 batches × 20 points × (30 forward+backward steps + 1 final forward).
    const cake = seed.methods.find((m) => m.method === "cake")!;
    assert.deepEqual([cake.teacherForward, cake.teacherBackward], [40 * 31, 40 * 30]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cake split invariance: one shard in process = 3 shards on the local executor", async () => {
  const one = await Deno.makeTempDir({ prefix: "bkd-cake-one-" });
  const three = await Deno.makeTempDir({ prefix: "bkd-cake-three-" });
  const settings = (batchesPerShard: number) => ({
    synth: { numBatches: 3, batchSize: 10, steps: 2 },
    student: { workers: 1 },
    batchesPerShard,
  });
  try {
    // The kit teacher is trained (reading mnist/train) once and cached; after that, nothing reads train.
    await initBackend();
    (await getTeacher({ dataset: "mnist", model: "cake-lenet5", scale: "smoke", seed: 1 })).model.dispose();
    clearDatasetReadLog();
    const plan1 = await cakeNotebookPlan("21", "smoke", { datasets: ["mnist"], settings: settings(3) });
    const plan3 = await cakeNotebookPlan("21", "smoke", { datasets: ["mnist"], settings: settings(1) });
    assert.equal(plan1.levels[1].keys.length, 1);
    assert.equal(plan3.levels[1].keys.length, 3);
    const s1 = await runExperiment(plan1, { store: one, onUnit: () => {} });
    assert.ok(datasetReadLog().length > 0, "the test split is read for evaluation");
    for (const e of datasetReadLog()) assert.equal(e.split, "test", `read ${e.name}/${e.split}`);
    const s3 = await runExperiment(plan3, { store: three, executor: "local", workers: 2, onUnit: () => {} });
    // Every unit of the 3-shard run was its own process (one log per unit).
    for (const u of ["teacher-0", "synth-0", "synth-1", "synth-2", "student-0"]) {
      assert.ok((await Deno.stat(`${three}/logs/${u}.log`)).isFile, u);
    }
    const [a, b] = [await readStoredSet(s1, 0), await readStoredSet(s3, 0)];
    assert.equal(a.shape[0], 30);
    assert.deepEqual(b.x, a.x);
    assert.deepEqual(b.targets, a.targets);
    assert.deepEqual(b.targetClass, a.targetClass);
    assert.deepEqual(b.eta, a.eta);
    assert.deepEqual(splitInvariantView(b.ledger), splitInvariantView(a.ledger));
    assert.equal(a.ledger.totals.images.backward, 30 * 2);
    const [r1, r3] = [(await readCakeMnist(s1))[0], (await readCakeMnist(s3))[0]];
    assert.equal(r3.studentAccuracy, r1.studentAccuracy);
    assert.equal(r3.studentBestAccuracy, r1.studentBestAccuracy);
    assert.equal(r3.teacherAccuracy, r1.teacherAccuracy);
    assert.deepEqual(r3.grid.x, r1.grid.x);
    assert.equal(r1.synth.shards, 1);
    assert.equal(r3.synth.shards, 3);
    // A second run finds every unit done.
    const again: string[] = [];
    await runExperiment(plan3, { store: three, onUnit: (r) => again.push(r.status) });
    assert.ok(again.every((s) => s === "already-done"), again.join(","));
  } finally {
    await Deno.remove(one, { recursive: true });
    await Deno.remove(three, { recursive: true });
  }
});

Deno.test("cake: a synthesis unit killed mid-run resumes; its paid queries are kept apart from the set's ledger", async () => {
  const ref = await Deno.makeTempDir({ prefix: "bkd-cake-ref-" });
  const root = await Deno.makeTempDir({ prefix: "bkd-cake-kill-" });
  // Two batches of 10 images × 100 steps: long enough to be killed after its first journaled calls.
  const ov = {
    datasets: ["mnist" as const],
    settings: {
      synth: { numBatches: 2, batchSize: 10, steps: 100 },
      student: { workers: 1 },
      batchesPerShard: 1,
    },
  };
  try {
    const plan = await cakeNotebookPlan("21", "smoke", ov);
    const store = await RunStore.create(root, plan);
    const victim = `${root}/work/${plan.levels[1].keys[1]}`;
    const first = await runLocal(store, {
      workers: 2,
      onStart: (level, index, child) => {
        if (level !== "synth" || index !== 1) return;
        (async () => {
          while ((await journalBytes(victim)) === 0) await new Promise((r) => setTimeout(r, 10));
          child.kill("SIGKILL");
        })();
      },
    });
    const failed = first.filter((r) => r.status === "failed").map((r) => `${r.level}${r.index}`);
    assert.deepEqual(failed, ["synth1"], JSON.stringify(first));
    const second = await runLocal(store, { workers: 2 });
    assert.deepEqual(second.map((r) => `${r.level}${r.index}:${r.status}`), ["synth1:ran", "student0:ran"]);
    const resumed = await readStoredSet(store, 0);
    const whole = await readStoredSet(await runExperiment(plan, { store: ref, onUnit: () => {} }), 0);
    assert.deepEqual(resumed.x, whole.x);
    assert.deepEqual(splitInvariantView(resumed.ledger), splitInvariantView(whole.ledger));
    assert.equal(whole.ledger.totals.images.backward, 20 * 100);
    const lostForward = resumed.paid.totals.images.forward - resumed.ledger.totals.images.forward;
    assert.ok(lostForward > 0, "the killed attempt's queries are in the paid ledger");
    assert.equal(whole.paid.totals.images.forward, whole.ledger.totals.images.forward);
    const rec = (await readCakeMnist(store))[0].record;
    assert.equal(rec.metrics.teacherPaidForward, resumed.paid.totals.images.forward);
  } finally {
    await Deno.remove(ref, { recursive: true });
    await Deno.remove(root, { recursive: true });
  }
});

async function journalBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith("journal-")) total += (await Deno.stat(`${dir}/${e.name}`)).size;
    }
  } catch {
    // not started yet
  }
  return total;
}

Deno.test("cake: a TF.js teacher folder the test exports itself gives the same run as the kit recipe it holds", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-cake-folder-" });
  // A folder teacher is the exported model inside the input adapter (a nested model), which the
  // native gradient engine does not take, so it runs on tfjs; the recipe teacher would run natively
  // and differ at float rounding. Same engine for both, so the runs must be identical.
  const engineBefore = Deno.env.get("BKD_GRAD_ENGINE");
  Deno.env.set("BKD_GRAD_ENGINE", "tfjs");
  try {
    await initBackend();
    const t = await getTeacher({ dataset: "mnist", model: "cake-lenet5", scale: "smoke", seed: 1 });
    await saveTeacherFolder(t.model, `${root}/teacher`);
    t.model.dispose();
    const ov = { datasets: ["mnist" as const], settings: { student: { workers: 1 } } };
    const viaRecipe = await runCakeSpec(await cakeNotebookSpec("21", "smoke", ov), { cache: `${root}/a` });
    const spec = await cakeNotebookSpec("21", "smoke", { ...ov, teacher: `${root}/teacher` });
    assert.equal(spec.teachers[0].source.kind, "folder");
    const viaFolder = await runCakeSpec(spec, { cache: `${root}/b` });
    const [a, b] = [await readStoredSet(viaRecipe, 0), await readStoredSet(viaFolder, 0)];
    assert.deepEqual(b.x, a.x);
    assert.deepEqual(b.targets, a.targets);
    const [ra, rb] = [(await readCakeMnist(viaRecipe))[0], (await readCakeMnist(viaFolder))[0]];
    assert.equal(rb.teacherAccuracy, ra.teacherAccuracy);
    assert.equal(rb.studentAccuracy, ra.studentAccuracy);
    // A folder that changes after planning is refused, naming the fix.
    const moved = await cakeNotebookPlan("21", "smoke", { ...ov, teacher: `${root}/teacher` });
    const other = buildModel({ name: "cake-lenet5", inputShape: [28, 28, 1], numClasses: 10 }, 9);
    await Deno.remove(`${root}/teacher`, { recursive: true });
    await saveTeacherFolder(other, `${root}/teacher`);
    other.dispose();
    await assert.rejects(
      () => runExperiment(moved, { store: `${root}/c`, onUnit: () => {} }),
      /model folder .*teacher changed since the run was planned/,
    );
  } finally {
    if (engineBefore === undefined) Deno.env.delete("BKD_GRAD_ENGINE");
    else Deno.env.set("BKD_GRAD_ENGINE", engineBefore);
    await Deno.remove(root, { recursive: true });
  }
});
