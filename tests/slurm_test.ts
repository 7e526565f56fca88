/**
 * A real single-node Slurm cluster (tools/slurm/start.sh): the db3-label smoke run submitted as job
 * arrays equals the in-process run; one array task is cancelled mid-run, the run is resubmitted (only
 * the missing units go), completes, and its paid ledger holds the queries the cancelled task paid.
 *
 * Needs root to start the daemons. In CI (`CI=true`) a cluster that cannot be started fails the test;
 * elsewhere without root the test is skipped with the reason printed.
 */
import nodeAssert from "node:assert/strict";
import { resolve } from "node:path";
import { db3LabelPlan, db3LabelSpec } from "../lib/experiments/db3_label_spec.ts";
import { readDb3LabelResult } from "../lib/experiments/db3_label_units.ts";
import { resolveTeacher } from "../lib/experiments/open_teacher.ts";
import { familyOf } from "../lib/experiments/families.ts";
import { runInProcess } from "../lib/runner/executors/in_process.ts";
import { queuedTasks, submitSlurm } from "../lib/runner/executors/slurm.ts";
import { journalImages } from "../lib/runner/journal.ts";
import { splitInvariantView } from "../lib/runner/ledgers.ts";
import { runStatus } from "../lib/runner/status.ts";
import { RunStore } from "../lib/runner/store.ts";

function assert(v: unknown, msg?: string): asserts v {
  if (msg === undefined) nodeAssert.ok(v);
  else nodeAssert.ok(v, msg);
}
function assertEquals(a: unknown, b: unknown, msg?: string): void {
  if (msg === undefined) nodeAssert.deepStrictEqual(a, b);
  else nodeAssert.deepStrictEqual(a, b, msg);
}

const REPO = resolve(import.meta.dirname!, "..");
const inCi = (Deno.env.get("CI") ?? "").toLowerCase() === "true";
const isRoot = Deno.uid() === 0;
const skipReason = isRoot ? undefined : "slurm test skipped: starting slurmctld/slurmd/munged needs root";
if (skipReason && !inCi) console.log(skipReason);

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  return { ok: out.success, text: d.decode(out.stdout) + d.decode(out.stderr) };
}

/** Poll `check` every `ms` until it returns a value; give up after `limit` polls naming `what`. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 50,
  limit = 12000,
): Promise<T> {
  for (let i = 0; i < limit; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, ms));
  }
  const q = await sh("squeue", ["-r"]);
  throw new Error(`gave up waiting for ${what}; squeue:\n${q.text}`);
}

async function paidIn(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(dir)) total += await journalImages(`${dir}/${e.name}`);
  } catch {
    // no work folder yet
  }
  return total;
}

Deno.test({
  name: "slurm: job arrays equal the in-process run; a cancelled task is resubmitted and its queries counted",
  ignore: skipReason !== undefined && !inCi,
  sanitizeResources: false,
  fn: async () => {
    if (skipReason) throw new Error(`CI=true but ${skipReason}; run the tests as root so Slurm can start`);
    const start = await sh("bash", [`${REPO}/tools/slurm/start.sh`]);
    assert(start.ok, `tools/slurm/start.sh failed:\n${start.text}`);
    const one = await Deno.makeTempDir({ prefix: "bkd-slurm-ref-" });
    const root = await Deno.makeTempDir({ prefix: "bkd-slurm-run-" });
    let plan: ReturnType<typeof db3LabelPlan> | undefined;
    try {
      // 60 samples, 3 shards of 20, reference candidates: each task labels for a few seconds.
      const spec = db3LabelSpec({
        dataset: "mnist",
        scale: "smoke",
        override: { n: 60, shardSize: 20, bd: { candidates: 201 } },
      });
      const { fingerprint } = await resolveTeacher(spec);
      const ref = await RunStore.create(one, db3LabelPlan({ ...spec, shardSize: spec.n }, fingerprint));
      await runInProcess(ref, familyOf(ref.plan.family));
      const r1 = await readDb3LabelResult(ref);

      plan = db3LabelPlan(spec, fingerprint);
      const store = await RunStore.create(root, plan);
      const label = plan.levels[0];
      const subs = await submitSlurm(store, { throttle: 1 });
      assertEquals(subs.map((s) => [s.level, s.indices]), [["label", [0, 1, 2]], ["reduce", [0]]]);

      // Cancel the first task seen mid-search (the teacher answered over 100 of its queries).
      const victim = await waitFor("a label task to start querying", async () => {
        for (let i = 0; i < label.keys.length; i++) {
          if (await store.isDone(label.keys[i])) continue;
          if (await paidIn(`${root}/work/${label.keys[i]}`) > 100) return i;
        }
        return undefined;
      }, 10);
      const arrayJob = subs[0].jobId;
      const cancel = await sh("scancel", [`${arrayJob}_${victim}`]);
      assert(cancel.ok, cancel.text);
      await waitFor("the cancelled task to leave the queue", async () => {
        const q = await queuedTasks(plan!);
        return q.some((t) => t.level === "label" && t.index === victim) ? undefined : true;
      });
      assert(
        !(await store.isDone(label.keys[victim])),
        `task ${victim} finished before it could be cancelled`,
      );
      const killedPaid = await paidIn(`${root}/work/${label.keys[victim]}`);
      assert(killedPaid > 0);
      await waitFor("the other label tasks", async () => {
        const q = await queuedTasks(plan!);
        return q.some((t) => t.level === "label") ? undefined : true;
      });
      // The reduce waits on an array with a cancelled task: it can never start by itself.
      const stuck = (await queuedTasks(plan)).filter((t) => t.level === "reduce");
      assertEquals(stuck.map((t) => t.state), ["PENDING"]);

      const st = await runStatus(store, await queuedTasks(plan));
      assertEquals(st.levels.map((l) => [l.level, l.done, l.queued, l.failedIndices]), [
        ["label", 2, 0, [victim]],
        ["reduce", 0, 1, []],
      ]);
      assert(st.queriesInFlight >= killedPaid);

      // Resubmit: only the cancelled unit and the reduce go again.
      const again = await submitSlurm(store, { throttle: 1 });
      assertEquals(again.map((s) => [s.level, s.indices]), [["label", [victim]], ["reduce", [0]]]);
      await waitFor("the resubmitted run to finish", async () => {
        return (await store.isDone(plan!.levels[1].keys[0])) ? true : undefined;
      });
      assertEquals(await submitSlurm(store), [], "a finished run submitted jobs again");

      const r = await readDb3LabelResult(store);
      assertEquals(r.distances, r1.distances);
      assertEquals(r.z, r1.z);
      assertEquals(r.teacherLabels, r1.teacherLabels);
      assertEquals(splitInvariantView(r.ledger), splitInvariantView(r1.ledger));
      assertEquals(r.paid.totals.spent, r.ledger.totals.spent + killedPaid);
      console.log(
        `slurm: task ${victim} cancelled after ${killedPaid} queries; run paid ${r.paid.totals.spent} ` +
          `= ${r.ledger.totals.spent} (same as in-process) + ${killedPaid}`,
      );
    } finally {
      if (plan) {
        const left = await queuedTasks(plan).catch(() => []);
        if (left.length > 0) await sh("scancel", left.map((t) => t.jobId));
      }
      await Deno.remove(one, { recursive: true }).catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
      const stop = await sh("bash", [`${REPO}/tools/slurm/stop.sh`]);
      if (!stop.ok) console.error(stop.text);
    }
  },
});
