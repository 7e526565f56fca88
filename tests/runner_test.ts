/**
 * The runner: run store (atomic, idempotent, exclusively claimed units), exact ledger merging, the
 * db3-label experiment split into shards (results independent of the split, a killed unit resumed),
 * the executors' scheduler inputs (sbatch argv, Kubernetes manifests) and the CLI's errors.
 * Everything runs for real: unit processes, SIGKILL, the smoke teacher.
 */
import nodeAssert from "node:assert/strict";
import { resolve } from "node:path";
import { BD_DEFAULTS } from "../lib/db3/bd.ts";
import { Ledger } from "../lib/oracle/ledger.ts";
import {
  BD_RATES,
  DB3_LABEL_SETTINGS,
  db3LabelPlan,
  db3LabelSpec,
} from "../lib/experiments/db3_label_spec.ts";
import { readDb3LabelResult } from "../lib/experiments/db3_label_units.ts";
import { resolveTeacher } from "../lib/experiments/open_teacher.ts";
import { familyOf } from "../lib/experiments/families.ts";
import { runInProcess } from "../lib/runner/executors/in_process.ts";
import { runLocal } from "../lib/runner/executors/local.ts";
import { k8sManifests } from "../lib/runner/executors/k8s.ts";
import { arraySpec, sbatchArgs } from "../lib/runner/executors/slurm.ts";
import { journalImages } from "../lib/runner/journal.ts";
import { LedgerMergeError, mergeLedgers, splitInvariantView } from "../lib/runner/ledgers.ts";
import { unitIndexFrom } from "../lib/runner/command.ts";
import { RunStore } from "../lib/runner/store.ts";
import { runUnit } from "../lib/runner/unit.ts";
import type { Family } from "../lib/runner/family.ts";
import type { RunPlan } from "../lib/runner/plan.ts";

function assert(v: unknown, msg?: string): asserts v {
  if (msg === undefined) nodeAssert.ok(v);
  else nodeAssert.ok(v, msg);
}
function assertEquals(a: unknown, b: unknown, msg?: string): void {
  if (msg === undefined) nodeAssert.deepStrictEqual(a, b);
  else nodeAssert.deepStrictEqual(a, b, msg);
}
// deno-lint-ignore no-explicit-any
function assertThrows(fn: () => unknown, cls: new (...a: any[]) => Error, includes?: string) {
  nodeAssert.throws(
    fn,
    (e: Error) => e instanceof cls && (includes === undefined || e.message.includes(includes)),
  );
}

const REPO = resolve(import.meta.dirname!, "..");

function toyPlan(units = 2): RunPlan {
  return {
    family: "toy",
    spec: { units },
    teacher: "t0",
    levels: [
      {
        name: "a",
        kind: "toy",
        keys: Array.from({ length: units }, (_, i) => `toy-a-${i}`),
        resources: { cores: 1, memoryMB: 100, timeMinutes: 1 },
        deps: [],
        describe: Array.from({ length: units }, (_, i) => `unit ${i}`),
      },
      {
        name: "b",
        kind: "toy",
        keys: ["toy-b-0"],
        resources: { cores: 1, memoryMB: 100, timeMinutes: 1 },
        deps: ["a"],
        describe: ["merge"],
      },
    ],
  };
}

Deno.test("db3-label settings: paper is the reference; laptop and smoke are noted overrides", () => {
  assertEquals(DB3_LABEL_SETTINGS.paper.bd, BD_DEFAULTS);
  assertEquals(DB3_LABEL_SETTINGS.paper.n, 60000);
  const paper = db3LabelSpec({ dataset: "mnist", scale: "paper" });
  assertEquals(paper.bd, BD_DEFAULTS);
  assertEquals([
    paper.n,
    paper.bd.candidates,
    paper.bd.tol,
    paper.teacher.kind === "recipe" && paper.teacher.scale,
  ], [
    60000,
    201,
    1e-5,
    "paper",
  ]);
  for (const s of ["laptop", "smoke"] as const) assert(DB3_LABEL_SETTINGS[s].note.length > 20);
  const smoke = db3LabelSpec({ dataset: "mnist", scale: "smoke" });
  assertEquals([smoke.n, smoke.shardSize, smoke.bd.candidates, smoke.bd.tol], [30, 10, 40, 1e-5]);
  assertThrows(
    () => db3LabelSpec({ dataset: "mnist", scale: "smoke", override: { shardSize: 0 } }),
    RangeError,
  );
});

Deno.test("db3-label plan: keys follow the spec, the teacher fingerprint and the inputs", () => {
  const spec = db3LabelSpec({ dataset: "mnist", scale: "smoke" });
  const p = db3LabelPlan(spec, "fp-a");
  assertEquals(p.levels.map((l) => [l.name, l.keys.length, l.deps]), [["label", 3, []], ["reduce", 1, [
    "label",
  ]]]);
  assertEquals(new Set(p.levels[0].keys).size, 3);
  assertEquals(db3LabelPlan(spec, "fp-a"), p);
  const otherTeacher = db3LabelPlan(spec, "fp-b");
  assert(otherTeacher.levels[0].keys.every((k, i) => k !== p.levels[0].keys[i]));
  assert(otherTeacher.levels[1].keys[0] !== p.levels[1].keys[0]);
  const more = db3LabelPlan({ ...spec, bd: { ...spec.bd, candidates: 41 } }, "fp-a");
  assert(more.levels[0].keys[0] !== p.levels[0].keys[0]);
  // The same first shard under a different shard count keeps its range and hence its key.
  const four = db3LabelPlan({ ...spec, n: 40 }, "fp-a");
  assertEquals(four.levels[0].keys.slice(0, 3), p.levels[0].keys);
  assert(four.levels[1].keys[0] !== p.levels[1].keys[0]);
});

Deno.test("run store: a unit commits once, needs its dependencies, and a different plan is refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-store-" });
  try {
    let runs = 0;
    const family: Family = {
      name: "toy",
      runUnit: (_kind, ctx) => {
        runs++;
        return Promise.resolve({
          files: { "out.txt": `unit ${ctx.level.name}[${ctx.index}]` },
          done: { runs },
        });
      },
    };
    const store = await RunStore.create(root, toyPlan());
    await runUnit(store, family, "b", 0).then(
      () => assert(false, "b ran before a"),
      (e) => assert(/needs level "a" done, but 2 of its units are not/.test(e.message), e.message),
    );
    assertEquals((await runUnit(store, family, "a", 0)).status, "ran");
    assertEquals((await runUnit(store, family, "a", 0)).status, "already-done");
    assertEquals(runs, 1);
    assertEquals(await store.readText("toy-a-0", "out.txt"), "unit a[0]");
    assertEquals(JSON.parse(await store.readText("toy-a-0", "done.json")).runs, 1);
    const reports = await runInProcess(store, family);
    assertEquals(reports.map((r) => `${r.level}${r.index}:${r.status}`), [
      "a0:already-done",
      "a1:ran",
      "b0:ran",
    ]);
    assertEquals(runs, 3);
    await RunStore.create(root, toyPlan()); // same plan: reopened
    // New resources or cost estimates are the same run: reopened, and run.json takes the new ones.
    const remeasured = toyPlan();
    remeasured.levels[0].resources = { cores: 2, memoryMB: 200, timeMinutes: 9 };
    remeasured.levels[0].estimate = { queries: 5, cpuSeconds: 7, source: "re-measured" };
    const again = await RunStore.create(root, remeasured);
    assertEquals(again.plan.levels[0].estimate?.source, "re-measured");
    assertEquals((await RunStore.open(root)).plan.levels[0].resources.timeMinutes, 9);
    assertEquals(await again.isDone("toy-a-0"), true);
    const otherKind = toyPlan();
    otherKind.levels[1].kind = "toy2";
    await RunStore.create(root, otherKind).then(
      () => assert(false, "a plan with another unit kind was accepted"),
      (e) => assert(/holds a different run/.test(e.message), e.message),
    );
    await RunStore.create(root, toyPlan(3)).then(
      () => assert(false, "a different plan was accepted"),
      (e) => assert(/holds a different run/.test(e.message), e.message),
    );
    await RunStore.open(`${root}/nope`).then(
      () => assert(false),
      (e) => assert(/no run store at .*bkd run --store/.test(e.message), e.message),
    );
    await runUnit(store, family, "a", 7).then(
      () => assert(false),
      (e) => assert(/index 7 is out of range: level "a" has units 0..1/.test(e.message), e.message),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("run store: a claim is exclusive while its process lives and taken over once it is killed", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-claim-" });
  try {
    await RunStore.create(root, toyPlan());
    const code = `import { RunStore } from "${REPO}/lib/runner/store.ts";
      const s = await RunStore.open(${JSON.stringify(root)});
      const c = await s.claim("toy-a-0");
      console.log(c ? "claimed" : "refused");
      await new Promise((r) => setTimeout(r, 600000));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "inherit",
    })
      .spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assertEquals((await reader.read()).value?.trim(), "claimed");
    const store = await RunStore.open(root);
    assertEquals(await store.claim("toy-a-0"), undefined);
    assertEquals((await store.claimHolder("toy-a-0"))?.pid, child.pid);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    assertEquals(await store.claimHolder("toy-a-0"), undefined);
    const c = await store.claim("toy-a-0");
    assert(c, "stale claim of a killed process was not taken over");
    assertEquals(c.info.pid, Deno.pid);
    assertEquals(
      await store.claim("toy-a-0"),
      undefined,
      "a claim held by this live process was granted twice",
    );
    await c.release();
    assertEquals(await store.isDone("toy-a-0"), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("run store: a claim from another host is honoured while touched and taken over once stale", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-claim-host-" });
  try {
    const store = await RunStore.create(root, toyPlan());
    // What a unit on another cluster node leaves in the shared store.
    const path = `${root}/claims/toy-a-1.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: 1, host: "node-elsewhere", since: "2026-01-01T00:00:00Z" }),
    );
    assertEquals((await store.claimHolder("toy-a-1"))?.host, "node-elsewhere");
    assertEquals(await store.claim("toy-a-1"), undefined, "a fresh claim from another host was taken");
    const old = new Date(Date.now() - (store.staleAfterSec + 60) * 1000);
    await Deno.utime(path, old, old);
    assertEquals(await store.claimHolder("toy-a-1"), undefined);
    const c = await store.claim("toy-a-1");
    assert(c, "a stale claim from another host was not taken over");
    assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
    await c.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ledger merge: exact totals; overlapping shards and over-budget samples fail loudly", () => {
  const a = new Ledger(), b = new Ledger();
  a.charge({ kinds: ["label"], phase: "bd.search", n: 3, sampleIds: Int32Array.from([0, 0, 1]) });
  b.charge({ kinds: ["label"], phase: "bd.search", n: 2, sampleIds: Int32Array.from([2, 2]) });
  b.charge({ kinds: ["label"], phase: "bd.init", n: 1, sampleIds: Int32Array.from([3]) });
  const m = mergeLedgers([a.snapshot(), b.snapshot()], { disjoint: true, perSample: 2 });
  assertEquals(m.totals.spent, 6);
  assertEquals(m.bySample["0"].spent, 2);
  assertEquals(m.byPhase["bd.search"].images.label, 5);
  assertThrows(
    () => mergeLedgers([a.snapshot(), a.snapshot()], { disjoint: true, names: ["s0", "s1"] }),
    LedgerMergeError,
    "sample 0 was charged by both s0 and s1",
  );
  assertThrows(
    () => mergeLedgers([a.snapshot(), a.snapshot()], { perSample: 3 }),
    LedgerMergeError,
    "over its budget",
  );
  const bad = a.snapshot();
  bad.totals.spent += 1;
  assertThrows(() => mergeLedgers([bad]), LedgerMergeError, "per-sample sum");
});

Deno.test("db3-label: 1 shard in process equals 3 shards on the local executor; a killed unit resumes", async () => {
  const spec = db3LabelSpec({ dataset: "mnist", scale: "smoke" });
  const { fingerprint } = await resolveTeacher(spec);
  const one = await Deno.makeTempDir({ prefix: "bkd-one-" });
  const three = await Deno.makeTempDir({ prefix: "bkd-three-" });
  try {
    const s1 = await RunStore.create(one, db3LabelPlan({ ...spec, shardSize: spec.n }, fingerprint));
    await runInProcess(s1, familyOf(s1.plan.family));
    const r1 = await readDb3LabelResult(s1);

    const plan3 = db3LabelPlan(spec, fingerprint);
    const s3 = await RunStore.create(three, plan3);
    // Kill unit 1 once the teacher has answered some of its queries (journal non-empty).
    const victimWork = `${three}/work/${plan3.levels[0].keys[1]}`;
    let killedPaid = 0;
    const first = await runLocal(s3, {
      workers: 2,
      onStart: (level, index, child) => {
        if (level !== "label" || index !== 1) return;
        (async () => {
          for (;;) {
            const paid = await journalsPaid(victimWork);
            if (paid > 0) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          child.kill("SIGKILL");
        })();
      },
    });
    const failed = first.filter((r) => r.status === "failed");
    assertEquals(failed.map((r) => `${r.level}${r.index}`), ["label1"], JSON.stringify(first));
    assert(/SIGKILL/.test(failed[0].detail ?? ""), failed[0].detail);
    assertEquals(await s3.isDone(plan3.levels[0].keys[1]), false);
    killedPaid = await journalsPaid(victimWork);
    assert(killedPaid > 0);

    const second = await runLocal(s3, { workers: 2 });
    assertEquals(second.map((r) => `${r.level}${r.index}:${r.status}`), ["label1:ran", "reduce0:ran"]);
    assertEquals(await runLocal(s3, { workers: 2 }), [], "a finished run was not a no-op");
    const r3 = await readDb3LabelResult(s3);

    assertEquals(r3.distances, r1.distances);
    assertEquals(r3.z, r1.z);
    assertEquals(r3.y, r1.y);
    assertEquals(r3.teacherLabels, r1.teacherLabels);
    assertEquals(splitInvariantView(r3.ledger), splitInvariantView(r1.ledger));
    assert(r1.ledger.totals.spent > 30 * 9, `only ${r1.ledger.totals.spent} queries`);
    // The killed attempt's queries are in the paid ledger, on top of the split-invariant one.
    assertEquals(r3.paid.totals.spent, r3.ledger.totals.spent + killedPaid);
    assertEquals(r1.paid.totals.spent, r1.ledger.totals.spent);
  } finally {
    await Deno.remove(one, { recursive: true });
    await Deno.remove(three, { recursive: true });
  }
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

Deno.test("slurm: sbatch argv carries the array, throttle, resources, dependency and extra options", async () => {
  assertEquals(arraySpec([0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
  const root = await Deno.makeTempDir({ prefix: "bkd-sbatch-" });
  try {
    const store = await RunStore.create(root, toyPlan(3));
    const argv = sbatchArgs(store, store.plan.levels[1], [0], ["101", "102"], {
      throttle: 2,
      sbatchOptions: ["--partition=cpu", "--account=lab", "--qos=normal"],
    });
    assert(argv.includes("--array=0%2"));
    assert(argv.includes("--cpus-per-task=1") && argv.includes("--mem=100M") && argv.includes("--time=1"));
    assert(argv.includes("--dependency=afterok:101:102"));
    for (const o of ["--partition=cpu", "--account=lab", "--qos=normal"]) assert(argv.includes(o));
    const wrap = argv.find((a) => a.startsWith("--wrap="))!;
    assert(/tools\/bkd\.ts unit --store \S+ --level b$/.test(wrap), wrap);
    assert(!wrap.includes("--index"), "the index must come from SLURM_ARRAY_TASK_ID");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("k8s: one Indexed Job per level with index, parallelism, volume, command and retry policy", () => {
  const plan = toyPlan(5);
  const jobs = k8sManifests(plan, { image: "bkd:1", pvc: "runs", storePath: "/runs/r1", parallelism: 2 });
  assertEquals(jobs.length, 2);
  // deno-lint-ignore no-explicit-any
  const [a, b] = jobs as any[];
  assertEquals([a.kind, a.apiVersion], ["Job", "batch/v1"]);
  assertEquals([a.spec.completionMode, a.spec.completions, a.spec.parallelism], ["Indexed", 5, 2]);
  assertEquals([b.spec.completions, b.spec.parallelism], [1, 1]);
  assertEquals(a.spec.backoffLimitPerIndex, 3);
  assertEquals(a.spec.podFailurePolicy.rules[0].action, "FailIndex");
  const pod = a.spec.template.spec;
  assertEquals(pod.restartPolicy, "Never");
  assertEquals(pod.volumes[0].persistentVolumeClaim.claimName, "runs");
  assertEquals(pod.containers[0].volumeMounts[0], { name: "run-store", mountPath: "/runs/r1" });
  assertEquals(pod.containers[0].image, "bkd:1");
  const cmd: string[] = pod.containers[0].command;
  assertEquals(cmd.slice(cmd.indexOf("unit")), ["unit", "--store", "/runs/r1", "--level", "a"]);
  assert(!cmd.includes("--index"), "the index must come from JOB_COMPLETION_INDEX");
  // deno-lint-ignore no-explicit-any
  const plain = k8sManifests(plan, { image: "x", pvc: "p", storePath: "/s", perIndex: false })[0] as any;
  assertEquals([plain.spec.backoffLimit, plain.spec.backoffLimitPerIndex, plain.spec.podFailurePolicy], [
    15,
    undefined,
    undefined,
  ]);
  assertEquals(unitIndexFrom(undefined, (k) => k === "JOB_COMPLETION_INDEX" ? "4" : undefined), 4);
  assertEquals(unitIndexFrom(undefined, (k) => k === "SLURM_ARRAY_TASK_ID" ? "2" : undefined), 2);
  assertEquals(unitIndexFrom("1", () => "9"), 1);
  assertThrows(() => unitIndexFrom(undefined, () => undefined), Error, "pass --index");
});

Deno.test("bkd CLI: bad input exits 2 with what went wrong and what to do", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-cli-" });
  try {
    const cli = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO}/tools/bkd.ts`, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
    };
    const bad = await cli("run", "--store", root, "--executor", "lsf");
    assertEquals(bad.code, 2);
    assert(/unknown executor "lsf"; use one of in-process, local, slurm, k8s/.test(bad.text), bad.text);
    const missing = await cli("status", "--store", `${root}/none`);
    assertEquals(missing.code, 2);
    assert(/no run store at .*none/.test(missing.text), missing.text);
    const noStore = await cli("collect");
    assertEquals(noStore.code, 2);
    assert(/--store DIR is required/.test(noStore.text), noStore.text);
    const scale = await cli("plan", "--scale", "huge");
    assertEquals(scale.code, 2);
    assert(/unknown --scale "huge"/.test(scale.text), scale.text);
    const plan = await cli("plan", "--scale", "paper");
    assertEquals(plan.code, 0, plan.text);
    const expected = (60_000 * BD_RATES.queriesPerSample).toLocaleString("en-US");
    assert(
      /\| label \| 60 \|/.test(plan.text) && plan.text.includes(`teacher queries ≈ ${expected}`),
      plan.text,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bkd CLI: run in-process, status, collect writes a run record; run again is a no-op", async () => {
  const root = await Deno.makeTempDir({ prefix: "bkd-cli-run-" });
  try {
    const cli = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO}/tools/bkd.ts`, ...args],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const d = new TextDecoder();
      return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
    };
    const store = `${root}/store`;
    const spec = ["--scale", "smoke", "--n", "12", "--shard-size", "5", "--candidates", "10"];
    const run = await cli("run", "--store", store, "--executor", "in-process", ...spec);
    assertEquals(run.code, 0, run.err);
    assert(/4 units: 4 ok, 0 failed/.test(run.out), run.out);
    const again = await cli("run", "--store", store, "--executor", "in-process");
    assertEquals(again.code, 0, again.err);
    assert(/label\[0\] already-done/.test(again.err) && !/ ran /.test(again.err), again.err);
    const other = await cli(
      "run",
      "--store",
      store,
      "--executor",
      "in-process",
      "--scale",
      "smoke",
      "--n",
      "13",
    );
    assertEquals(other.code, 2);
    assert(/holds a different run/.test(other.err), other.err);
    const noIndex = await cli("unit", "--store", store, "--level", "label");
    assertEquals(noIndex.code, 2);
    assert(/no unit index: pass --index <i>/.test(noIndex.err), noIndex.err);
    const status = await cli("status", "--store", store);
    assertEquals(status.code, 0, status.err);
    assert(/\| label \| 3 \| 3 \| 0 \| 0 \| 0 \| 0 \|/.test(status.out), status.out);
    const collect = await cli("collect", "--store", store, "--runs-dir", `${root}/runs`);
    assertEquals(collect.code, 0, collect.err);
    const path = collect.out.match(/record: (\S+)/)?.[1];
    assert(path, collect.out);
    const rec = JSON.parse(await Deno.readTextFile(path));
    assertEquals([rec.method, rec.scale, rec.metrics.samples], ["db3-bd", "smoke", 12]);
    assertEquals(rec.metrics.queries, rec.ledger.totals.spent);
    assert(rec.metrics.queries > 12 * 9, JSON.stringify(rec.metrics));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("db3-label: a per-sample budget holds across shards and the reduce checks it", async () => {
  const spec = db3LabelSpec({
    dataset: "mnist",
    scale: "smoke",
    override: { n: 6, shardSize: 3, bd: { candidates: 10 }, budgetPerSample: 60 },
  });
  const { fingerprint } = await resolveTeacher(spec);
  const root = await Deno.makeTempDir({ prefix: "bkd-budget-" });
  try {
    const store = await RunStore.create(root, db3LabelPlan(spec, fingerprint));
    await runInProcess(store, familyOf(store.plan.family));
    const r = await readDb3LabelResult(store);
    const spent = Object.values(r.paid.bySample).map((e) => e.spent);
    assertEquals(spent.length, 6);
    assert(spent.every((s) => s <= 60), `spent ${spent}`);
    assert(spent.some((s) => s > 50), `the budget never bound: ${spent}`);
    assert(r.paid.totals.refused > 0, "no query was refused at a budget of 60");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
