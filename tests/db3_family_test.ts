/**
 * The `db3` family (notebooks 10/11/12 on the runner): the settings table's paper base is the methods'
 * reference settings and the overrides reproduce the notebooks' laptop and smoke settings; its BD
 * shards have exactly a db3-label run's keys; and a smoke run in one process equals the same run
 * split into ≥ 3 BD and MBD shards, each unit a process of the local executor (distances, soft labels,
 * ledgers, student accuracies).
 */
import assert from "node:assert/strict";
import { BD_DEFAULTS } from "../lib/db3/bd.ts";
import { MBD_DEFAULTS } from "../lib/db3/mbd.ts";
import { SD_DEFAULTS } from "../lib/db3/sd.ts";
import { db3LabelPlan, db3LabelSpec } from "../lib/experiments/db3_label_spec.ts";
import { bdLabelSpec, db3Plan, db3Spec } from "../lib/experiments/db3_plan.ts";
import { DB3_SETTINGS, db3Settings } from "../lib/experiments/db3_spec.ts";
import { collectDb3, runDb3 } from "../lib/experiments/db3.ts";
import { splitInvariantView } from "../lib/runner/ledgers.ts";
import { levelOf } from "../lib/runner/plan.ts";
import { resolve } from "node:path";
import { resolveTeacher } from "../lib/experiments/open_teacher.ts";
import { familyOf } from "../lib/experiments/families.ts";
import { runInProcess } from "../lib/runner/executors/in_process.ts";
import { RunStore } from "../lib/runner/store.ts";

const REPO = resolve(import.meta.dirname!, "..");

Deno.test("db3 settings: paper is the methods' reference; laptop and smoke as the notebooks ran them", () => {
  for (const arch of ["lenet", "alexnet"] as const) {
    const p = DB3_SETTINGS[arch].paper.base;
    assert.deepEqual(p.bd, BD_DEFAULTS);
    const { seed: _seed, ...mbd } = MBD_DEFAULTS;
    assert.deepEqual(p.mbd, mbd);
    assert.deepEqual(p.sd, SD_DEFAULTS);
    assert.equal(p.samplesPerClass, 0, "paper: every training image");
    assert.equal(p.testLimit, 0);
    // algorithms.md: batch 512, Adam (1e-3 LeNet students, 5e-3 AlexNet students), 200 epochs, τ = 20.
    assert.deepEqual(
      { ...p.student },
      {
        model: arch === "lenet" ? "db3-lenet5-half" : "db3-alexnet-half",
        epochs: 200,
        batchSize: 512,
        lr: arch === "lenet" ? 1e-3 : 5e-3,
        temperature: 20,
        epochTestLimit: null,
      },
    );
  }
  const laptop = db3Settings("laptop", "mnist");
  assert.equal(laptop.samplesPerClass, 40);
  assert.equal(laptop.mbd.queryLimit, 2000);
  assert.deepEqual(laptop.mbd.snapshotAt, [500, 1000, 1500, 2000]);
  assert.equal(laptop.mbd.kGrad, 200);
  assert.deepEqual({ ...laptop.student, model: "" }, {
    model: "",
    epochs: 200,
    batchSize: 64,
    lr: 1e-3,
    temperature: 20,
    epochTestLimit: 1000,
  });
  const cifar = db3Settings("laptop", "cifar10");
  assert.equal(cifar.bd.candidates, 51);
  assert.equal(cifar.mbd.kGrad, 50);
  assert.equal(cifar.student.batchSize, 32);
  const smoke = db3Settings("smoke", "fmnist");
  assert.equal(smoke.bd.candidates, 11);
  assert.equal(smoke.student.epochs, 2);
  assert.equal(smoke.testLimit, 500);
  // An unknown --set key is an error naming the known ones.
  assert.throws(() => db3Settings("smoke", "mnist", { student: { epoch: 3 } } as never), /student\.epoch/);
});

Deno.test("db3 plan: its BD shards have a db3-label run's keys; paper labels every training image", () => {
  const fp = "f".repeat(64);
  for (const scale of ["paper", "smoke"] as const) {
    const spec = db3Spec({
      dataset: "mnist",
      scale,
      seeds: [1, 2],
      labelSeed: 0,
      teacher: "mnist:db3-lenet5:laptop:1",
    });
    const label = levelOf(db3Plan(spec, fp), "label");
    const ls = bdLabelSpec(spec);
    assert.deepEqual(label.keys, levelOf(db3LabelPlan(ls, fp), "label").keys);
    if (scale === "paper") {
      // The db3-label run's own spec at paper scale (1,000 samples per shard): the same keys.
      const own = db3LabelSpec({
        dataset: "mnist",
        scale: "paper",
        seed: 0,
        teacher: "mnist:db3-lenet5:laptop:1",
      });
      assert.deepEqual(label.keys, levelOf(db3LabelPlan(own, fp), "label").keys);
      assert.equal(label.keys.length, 60);
    }
  }
  const plan = db3Plan(db3Spec({ dataset: "mnist", scale: "smoke", seeds: [1, 2, 3] }), fp);
  assert.equal(levelOf(plan, "student").keys.length, 15);
  for (const l of plan.levels) assert.ok(l.estimate && l.estimate.source.length > 0, l.name);
});

Deno.test({
  name: "db3 family: a smoke run in one process equals the run split into ≥ 3 shards on the local executor",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bkd-db3-family-" });
    try {
      const req = {
        dataset: "mnist" as const,
        scale: "smoke" as const,
        seeds: [1],
        override: { chunk: { bd: 4, mbd: 4 } },
        save: false,
      };
      const one = await runDb3({ ...req, cache: `${tmp}/a/one` });
      const split = await runDb3({ ...req, cache: `${tmp}/b/split`, executor: "local", workers: 2 });
      // Separate folders: stores beside each other share finished units, which would hide the split.
      for (const k of levelOf((await RunStore.open(`${tmp}/b/split`)).plan, "label").keys) {
        assert.notEqual(
          await Deno.readTextFile(`${tmp}/b/split/units/${k}/done.json`),
          await Deno.readTextFile(`${tmp}/a/one/units/${k}/done.json`),
          "each run computed its own labels",
        );
      }
      const plan = db3Plan(db3Spec(req), "x");
      assert.ok(levelOf(plan, "label").keys.length >= 3 && levelOf(plan, "mbd").keys.length >= 3);
      for (const m of ["sd", "bd", "mbd"] as const) {
        const a = one.distances[m]!, b = split.distances[m]!;
        assert.deepEqual(b.distances, a.distances, `${m} distances`);
        assert.deepEqual(b.teacherLabels, a.teacherLabels, `${m} teacher labels`);
        assert.deepEqual(split.softLabels[m]!.z, one.softLabels[m]!.z, `${m} soft labels`);
        if (m !== "sd") {
          assert.deepEqual(splitInvariantView(b.ledger!), splitInvariantView(a.ledger!), `${m} ledger`);
          const perSample = Object.values(a.ledger!.bySample).reduce((s, e) => s + e.spent, 0);
          assert.equal(a.ledger!.totals.spent, perSample, `${m}: total = Σ per-sample`);
          assert.ok(a.ledger!.totals.spent > 0);
        }
      }
      assert.deepEqual(split.distances.mbd!.snapshots, one.distances.mbd!.snapshots);
      assert.deepEqual(
        split.rows.map((r) => [r.method, r.testAcc]),
        one.rows.map((r) => [r.method, r.testAcc]),
      );
      assert.deepEqual(
        split.records.map((r) => [r.method, r.metrics.testAcc, JSON.stringify(r.ledger ?? null)]),
        one.records.map((r) => [r.method, r.metrics.testAcc, JSON.stringify(r.ledger ?? null)]),
      );
      assert.deepEqual(one.rows.map((r) => r.method), ["teacher", "ce", "kd", "sd", "bd", "mbd"]);
      assert.equal(one.rows.find((r) => r.method === "kd")!.queriesPerSample, 1);
      for (const q of one.distances.mbd!.queries!) assert.ok(q <= one.settings.mbd.queryLimit!);
      // Paper scale in a notebook: only collect a finished store (of this notebook's dataset).
      const collected = await runDb3({ ...req, scale: "paper", cache: one.store, collectOnly: true });
      assert.deepEqual(collected.rows, one.rows);
      await assert.rejects(
        runDb3({ ...req, dataset: "fmnist", cache: one.store, collectOnly: true }),
        /holds a db3 run on mnist, not db3 on fmnist/,
      );
      // Another experiment beside it (other rows, other records) takes its finished labeling by key.
      const other = await runDb3({
        ...req,
        methods: ["ce", "bd"],
        experiment: "db3-other",
        cache: `${tmp}/a/other`,
      });
      for (const k of levelOf((await RunStore.open(`${tmp}/a/other`)).plan, "label").keys) {
        assert.equal(
          (await Deno.stat(`${tmp}/a/other/units/${k}/done.json`)).ino,
          (await Deno.stat(`${tmp}/a/one/units/${k}/done.json`)).ino,
          "label unit shared (hard link), not recomputed",
        );
      }
      assert.deepEqual(other.distances.bd!.distances, one.distances.bd!.distances);
      // A rerun finds every unit done and collects the same numbers; its records are this execution's
      // (started after it began, so the report's execution window finds them), each naming the first.
      for (const r of one.records) assert.ok(!(r.notes ?? []).some((n) => n.includes("numbers reused")));
      const rerunAt = Date.now();
      const again = await runDb3({ ...req, cache: `${tmp}/a/one` });
      assert.deepEqual(again.rows, one.rows);
      assert.equal(again.records.length, one.records.length);
      for (const [i, r] of again.records.entries()) {
        const first = one.records[i];
        assert.ok(
          Date.parse(r.startedAt) >= rerunAt,
          `${r.method}: started ${r.startedAt}, rerun at ${rerunAt}`,
        );
        assert.notEqual(r.id, first.id);
        assert.deepEqual([r.method, r.metrics, r.ledger], [first.method, first.metrics, first.ledger]);
        const note = r.notes!.at(-1)!;
        assert.ok(note.includes(`first recorded as ${first.id}`) && note.includes(one.store), note);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "bkd import: a finished labeling run's shards feed a db3 run (hard-linked, never redone)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bkd-db3-import-" });
    try {
      const req = {
        dataset: "mnist" as const,
        scale: "smoke" as const,
        methods: ["ce" as const, "bd" as const, "mbd" as const],
        override: { chunk: { bd: 4, mbd: 3 } },
      };
      const spec = db3Spec(req);
      const { fingerprint } = await resolveTeacher(spec);
      // A db3-label run over the same transfer set (its spec is the db3 run's BD labeling spec).
      const old = await RunStore.create(`${tmp}/old`, db3LabelPlan(bdLabelSpec(spec), fingerprint));
      await runInProcess(old, familyOf("db3-label"));
      const cli = async (...args: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", `${REPO}/tools/bkd.ts`, ...args],
          stdout: "piped",
          stderr: "piped",
        }).output();
        return {
          code: out.code,
          text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
        };
      };
      const imp = await cli(
        "import",
        "--store",
        `${tmp}/new`,
        "--from",
        `${tmp}/old`,
        "--notebook",
        "10",
        "--scale",
        "smoke",
        "--methods",
        "ce,bd,mbd",
        "--set",
        "chunk.bd=4",
        "--set",
        "chunk.mbd=3",
      );
      assert.equal(imp.code, 0, imp.text);
      assert.match(imp.text, /imported 3 unit\(s\) \(label 3\)/);
      const store = await RunStore.open(`${tmp}/new`);
      const label = levelOf(store.plan, "label");
      for (const key of label.keys) {
        const a = await Deno.stat(`${old.unitDir(key)}/distances.f32`);
        const b = await Deno.stat(`${store.unitDir(key)}/distances.f32`);
        assert.equal(b.ino, a.ino, "hard-linked");
      }
      // Shard 0 as an older kit wrote it (no best candidates): MBD runs BD again for those samples.
      const path = `${store.unitDir(label.keys[0])}/result.json`;
      const shard = JSON.parse(await Deno.readTextFile(path));
      delete shard.bestCandidate;
      await Deno.remove(path); // a hard link: replace the file, never write through to the old store
      await Deno.writeTextFile(path, JSON.stringify(shard));
      const reports = await runInProcess(store, familyOf("db3"));
      assert.deepEqual(
        reports.filter((r) => r.level === "label").map((r) => r.status),
        ["already-done", "already-done", "already-done"],
      );
      assert.ok(reports.every((r) => r.status !== "failed"), JSON.stringify(reports));
      const imported = await collectDb3(store);
      const fresh = await runDb3({ ...req, cache: `${tmp}/f/fresh`, save: false });
      assert.deepEqual(imported.distances.mbd!.distances, fresh.distances.mbd!.distances);
      assert.deepEqual(imported.distances.bd!.ledger, fresh.distances.bd!.ledger);
      // The recomputed BD queries are booked: MBD's ledger is larger by exactly the BD share of the MBD
      // shards that read BD shard 0 (samples 0–2 and 3–5 against BD's 0–3).
      const bd0 = Object.entries(fresh.distances.bd!.ledger!.bySample).filter(([id]) => Number(id) < 6)
        .reduce((a, [, e]) => a + e.spent, 0);
      assert.ok(bd0 > 0);
      assert.equal(
        imported.distances.mbd!.ledger!.totals.spent,
        fresh.distances.mbd!.ledger!.totals.spent + bd0,
      );
      // An unknown --set key fails with exit 2 and names the known keys.
      const bad = await cli("plan", "--notebook", "10", "--set", "student.epoch=3");
      assert.equal(bad.code, 2);
      assert.match(bad.text, /unknown key\(s\) student\.epoch/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
