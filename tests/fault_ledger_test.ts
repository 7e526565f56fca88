/**
 * Fault injection for the query ledger: runs killed with SIGKILL at random (seeded) points and rerun
 * to completion must book what the teacher answered — counted on the teacher's side (an fsync'd
 * count file in the child, or the label server's request log) — and never let a sample exceed its
 * budget; budgets must not make results depend on timing; caches must be bound to the teacher and
 * shared safely; corrupt run files must give an error naming the file.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { labelDistances } from "../lib/db3/label_run.ts";
import { buildModel } from "../lib/models/registry.ts";
import { loadModel, saveModel } from "../lib/models/io.ts";
import { modelFingerprint } from "../lib/models/fingerprint.ts";
import { Ledger, type LedgerSnapshot } from "../lib/oracle/ledger.ts";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { teacherPredictor } from "../lib/native/teacher_predictor.ts";
import { remoteLabelOracle } from "../lib/remote/oracle.ts";
import { startServer } from "../lib/remote/serve.ts";
import { spawnServer } from "../lib/remote/spawn.ts";
import { Rng } from "../lib/util/rng.ts";
import {
  answeredImages,
  countingPredictor,
  ledgerWorld,
  nearestMeanLabels,
  nearestMeanModel,
} from "./fixtures/ledger_world.ts";

await tf.setBackend("cpu");

const CHILD = new URL("./fixtures/ledger_child.ts", import.meta.url).pathname;

interface ChildResult {
  ledger: LedgerSnapshot;
  distances?: (number | string)[];
  budgetCut?: number[];
  chunks?: { computed: number; resumed: number };
}

/** Run the child once; with `killAt`, SIGKILL it as soon as `count()` reaches `killAt`. */
async function runChild(
  args: Record<string, unknown>,
  kill?: { count: () => number | Promise<number>; at: number },
): Promise<"killed" | "done"> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, JSON.stringify(args)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let killed = false;
  if (kill) {
    while (!exited) {
      if ((await kill.count()) >= kill.at) {
        try {
          child.kill("SIGKILL");
          killed = true;
        } catch { /* it exited meanwhile */ }
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const s = await status;
  const err = await errText;
  if (killed && s.signal === "SIGKILL") return "killed";
  if (!s.success) throw new Error(`ledger child failed (${s.code}):\n${err.slice(-3000)}`);
  return "done";
}

/**
 * Kill a run at three seeded random points (fractions of a full run's teacher count), then run it to
 * completion. Returns the completed run's result and how many kills landed mid-run.
 */
async function killAndResume(
  args: Record<string, unknown>,
  fullCount: number,
  count: () => number | Promise<number>,
  seed: number,
): Promise<{ result: ChildResult; kills: number }> {
  const rng = new Rng(seed);
  const fractions = [0, 1, 2].map(() => 0.1 + 0.6 * rng.uniform());
  let kills = 0;
  for (const f of fractions) {
    const at = (await count()) + Math.max(1, Math.floor(f * fullCount / 2));
    if ((await runChild(args, { count, at })) === "killed") kills++;
  }
  await runChild(args);
  const result = JSON.parse(await Deno.readTextFile(String(args.out))) as ChildResult;
  return { result, kills };
}

/** The ledger books what the teacher answered: settled ≤ answered ≤ spent (reserved-unsettled: the gap). */
function assertLedgerMatches(l: LedgerSnapshot, answered: number, budget: number | undefined) {
  const unsettled = l.totals.reservedUnsettled ?? 0;
  assert.ok(
    l.totals.spent - unsettled <= answered && answered <= l.totals.spent,
    `ledger spent ${l.totals.spent} (${unsettled} reserved, unsettled) vs teacher answered ${answered}`,
  );
  let sum = 0;
  for (const [id, e] of Object.entries(l.bySample)) {
    sum += e.spent;
    if (budget !== undefined && id !== "-1") {
      assert.ok(e.spent <= budget, `sample ${id} spent ${e.spent} of a ${budget} budget`);
    }
  }
  assert.equal(sum, l.totals.spent, "totals equal the per-sample sums");
}

/** Images booked in a labeling folder: the sum of its chunks' ledger files (no journal left over). */
async function folderSpent(dir: string): Promise<number> {
  let s = 0;
  for await (const e of Deno.readDir(dir)) {
    assert.ok(!e.name.endsWith(".journal"), `a finished run leaves no journal (${e.name})`);
    if (e.name.endsWith(".ledger.json")) {
      s += (JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`)) as LedgerSnapshot).totals.spent;
    }
  }
  return s;
}

async function withTemp(f: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "bkd-fault-ledger-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ledger: NaN, negative or fractional budgets and image counts are errors, not 'no budget'", () => {
  for (const bad of [NaN, -1, 2.5, -Infinity]) {
    assert.throws(() => new Ledger({ perSample: bad }), /not a number of images/);
    assert.throws(() => new Ledger({ total: bad }), /not a number of images/);
    assert.throws(() => new Ledger().setSampleBudget(3, bad), /not a number of images/);
  }
  assert.equal(new Ledger({ perSample: Infinity }).budgetOf(0), Infinity);
  const l = new Ledger({ perSample: 10 });
  for (const n of [1.5, NaN, -1]) {
    assert.throws(() => l.charge({ kinds: ["label"], phase: "p", n }), /not an image count/);
  }
  assert.equal(l.spent, 0);
});

for (const mode of ["bd", "mbd"] as const) {
  const budget = mode === "bd" ? 250 : 1100;
  Deno.test(`fault: DB3 ${mode.toUpperCase()} labeling SIGKILLed at random points books what the teacher answered`, async () => {
    await withTemp(async (dir) => {
      // A full run for scale, then a run killed three times and resumed.
      const ref = { mode, dir: `${dir}/ref`, countFile: `${dir}/ref.count`, out: `${dir}/ref.json`, budget };
      await runChild(ref);
      const full = answeredImages(ref.countFile);
      const args = { mode, dir: `${dir}/run`, countFile: `${dir}/run.count`, out: `${dir}/run.json`, budget };
      const { result, kills } = await killAndResume(args, full, () => answeredImages(args.countFile), 13);
      assert.ok(kills >= 1, "at least one kill landed mid-run");
      assertLedgerMatches(result.ledger, answeredImages(args.countFile), budget);
      // The chunks' ledger files on disk add up to the completed run's ledger.
      assert.equal(await folderSpent(args.dir), result.ledger.totals.spent);
      // Budget-cut samples are reported.
      assert.ok(Array.isArray(result.budgetCut));
    });
  });
}

Deno.test("fault: ZSDB3KD generation SIGKILLed at random points books what the teacher answered", async () => {
  await withTemp(async (dir) => {
    const budget = 900;
    const ref = {
      mode: "zs",
      dir: `${dir}/ref`,
      countFile: `${dir}/ref.count`,
      out: `${dir}/ref.json`,
      budget,
    };
    await runChild(ref);
    const full = answeredImages(ref.countFile);
    const args = {
      mode: "zs",
      dir: `${dir}/run`,
      countFile: `${dir}/run.count`,
      out: `${dir}/run.json`,
      budget,
    };
    const { result, kills } = await killAndResume(args, full, () => answeredImages(args.countFile), 29);
    assert.ok(kills >= 1, "at least one kill landed mid-run");
    assertLedgerMatches(result.ledger, answeredImages(args.countFile), budget);
  });
});

Deno.test("fault: remote labeling against tools/serve.ts, client SIGKILLed at random points, books match the server log", async () => {
  await withTemp(async (dir) => {
    const spec = {
      name: "mlp" as const,
      inputShape: [28, 28, 1],
      numClasses: 10,
      options: { hidden: 16, depth: 1 },
    };
    await saveModel(`${dir}/teacher`, buildModel(spec, 4), spec, {});
    const server = await spawnServer({ teacher: `${dir}/teacher`, args: ["--protocol", "kserve-v2"] });
    try {
      const served = async () =>
        (await server.readLog()).reduce((a, e) => a + (e.outcome === "answered" ? e.images : 0), 0);
      const budget = 250;
      const ref = { mode: "remote", dir: `${dir}/ref`, url: server.url, out: `${dir}/ref.json`, budget };
      await runChild(ref);
      const full = await served();
      const args = {
        mode: "remote",
        dir: `${dir}/run`,
        url: server.url,
        remoteCache: `${dir}/remote-cache`,
        out: `${dir}/run.json`,
        budget,
      };
      const before = full;
      const { result, kills } = await killAndResume(args, full, served, 41);
      assert.ok(kills >= 1, "at least one kill landed mid-run");
      assertLedgerMatches(result.ledger, (await served()) - before, budget);
    } finally {
      await server.close();
    }
  });
});

/** A small MLP teacher on MNIST-shaped inputs. */
function mlpTeacher(seed: number) {
  const spec = {
    name: "mlp" as const,
    inputShape: [28, 28, 1],
    numClasses: 10,
    options: { hidden: 16, depth: 1 },
  };
  return { spec, model: buildModel(spec, seed) };
}

Deno.test("budgets: two identical budgeted BD runs give identical distances and ledgers (native engine or pool)", async () => {
  const w = await ledgerWorld(24);
  const t = nearestMeanModel(w);
  // The native engine (threads) where it builds, else the worker pool: answers arrive with real,
  // varying latency, so lanes racing for one sample's budget would show.
  const pool = await teacherPredictor(t.model, t.spec, { engine: "auto", workers: 2 });
  try {
    const run = async () => {
      const o = labelOracle(pool, { ledger: new Ledger({ perSample: 150 }) });
      return await labelDistances(o, w.samples, w.streams, {
        method: "bd",
        bd: { candidates: 10, tol: 1e-3 },
        chunkSize: 24,
        lockstep: { lanes: 2, maxImagesPerRound: 50 },
        progress: false,
      });
    };
    const a = await run();
    assert.ok(a.exhausted.some((v) => v === 1), "the budget cuts some samples");
    for (let r = 0; r < 3; r++) {
      const b = await run();
      assert.deepEqual(Array.from(b.distances), Array.from(a.distances));
      assert.deepEqual(b.ledger, a.ledger);
      assert.deepEqual(Array.from(b.exhausted), Array.from(a.exhausted));
    }
    assert.deepEqual(Array.from(a.budgetCut), Array.from(a.exhausted.keys()).filter((i) => a.exhausted[i]));
  } finally {
    pool.close();
  }
});

Deno.test("caches: a swapped teacher (new weights, same folder) misses the DB3 label cache", async () => {
  await withTemp(async (dir) => {
    const w = await ledgerWorld(6);
    const opts = {
      method: "bd" as const,
      bd: { candidates: 6, tol: 1e-3 },
      chunkSize: 3,
      progress: false as const,
    };
    const a = mlpTeacher(5);
    await saveModel(`${dir}/teacher`, a.model, a.spec, {});
    const loadedA = await loadModel(`${dir}/teacher`);
    assert.equal(modelFingerprint(loadedA.model), modelFingerprint(a.model), "stable through save/load");
    const cacheDir = `${dir}/labels`;
    const first = await labelDistances(labelOracle(loadedA.model), w.samples, w.streams, {
      ...opts,
      cacheDir,
      teacher: modelFingerprint(loadedA.model),
    });
    assert.equal(first.chunks.computed, 2);
    // Retrained teacher written over the same folder.
    const b = mlpTeacher(6);
    await saveModel(`${dir}/teacher`, b.model, b.spec, {});
    const loadedB = await loadModel(`${dir}/teacher`);
    assert.notEqual(modelFingerprint(loadedB.model), modelFingerprint(loadedA.model));
    await assert.rejects(
      () =>
        labelDistances(labelOracle(loadedB.model), w.samples, w.streams, {
          ...opts,
          cacheDir,
          teacher: modelFingerprint(loadedB.model),
        }),
      /different run/,
    );
    // Same teacher again: every chunk comes from the cache.
    const again = await labelDistances(labelOracle(loadedA.model), w.samples, w.streams, {
      ...opts,
      cacheDir,
      teacher: modelFingerprint(loadedA.model),
    });
    assert.equal(again.chunks.resumed, 2);
    assert.deepEqual(Array.from(again.distances), Array.from(first.distances));
  });
});

Deno.test("caches: the remote label cache hits across localhost / 127.0.0.1 and a port change", async () => {
  await withTemp(async (dir) => {
    const t = mlpTeacher(8);
    const x = new Float32Array(20 * 784).map((_, i) => ((i * 7919) % 1000) / 1000);
    const remote = (url: string) => ({
      url,
      model: "teacher",
      protocol: "kserve-v2" as const,
      inputShape: [28, 28, 1],
      numClasses: 10,
      cacheDir: `${dir}/cache`,
    });
    const s1 = await startServer({ teacher: t.model, protocol: "kserve-v2" });
    let first: Int32Array;
    try {
      const o = await remoteLabelOracle(remote(s1.url));
      first = (await o.labels(x, 20, { phase: "p" })).labels;
      assert.equal(o.usage().paid, 20);
      await o.cache!.flush();
    } finally {
      await s1.close();
    }
    const s2 = await startServer({ teacher: t.model, protocol: "kserve-v2" });
    try {
      const url = s2.url.replace("127.0.0.1", "localhost");
      assert.notEqual(new URL(url).port, new URL(s1.url).port);
      const o = await remoteLabelOracle(remote(url));
      const again = await o.labels(x, 20, { phase: "p" });
      assert.deepEqual(again.labels, first);
      assert.equal(o.usage().cacheHits, 20);
      assert.equal(o.usage().paid, 0);
      assert.equal(s2.answeredImages(), 0);
    } finally {
      await s2.close();
    }
  });
});

Deno.test("caches: two labelers started together on one cache folder pay each chunk once", async () => {
  await withTemp(async (dir) => {
    const one = { mode: "bd", dir: `${dir}/one`, countFile: `${dir}/one.count`, out: `${dir}/one.json` };
    await runChild(one);
    const single = answeredImages(one.countFile);
    const a = { mode: "bd", dir: `${dir}/shared`, countFile: `${dir}/a.count`, out: `${dir}/a.json` };
    const b = { ...a, countFile: `${dir}/b.count`, out: `${dir}/b.json` };
    await Promise.all([runChild(a), runChild(b)]);
    const paid = answeredImages(a.countFile) + answeredImages(b.countFile);
    assert.equal(paid, single, "the two labelers together paid what one run pays");
    const ra = JSON.parse(await Deno.readTextFile(a.out)) as ChildResult;
    const rb = JSON.parse(await Deno.readTextFile(b.out)) as ChildResult;
    const r1 = JSON.parse(await Deno.readTextFile(one.out)) as ChildResult;
    assert.deepEqual(ra.distances, r1.distances);
    assert.deepEqual(rb.distances, r1.distances);
    // Each labeler's final ledger includes the other's chunks (synced from the shared journal).
    assert.equal(ra.ledger.totals.spent, single);
    assert.equal(rb.ledger.totals.spent, single);
    assert.equal(await folderSpent(a.dir), single);
  });
});

Deno.test("files: corrupt chunk, chunk-ledger, meta or journal files give an error naming the file; a deleted ledger is refused", async () => {
  await withTemp(async (dir) => {
    const w = await ledgerWorld(6);
    const teacher = countingPredictor(
      { inputShape: [28, 28, 1], numClasses: 10 },
      (x, n) => nearestMeanLabels(w, x, n),
      `${dir}/count`,
    );
    const opts = {
      method: "bd" as const,
      bd: { candidates: 6, tol: 1e-3 },
      chunkSize: 3,
      progress: false as const,
      cacheDir: `${dir}/run`,
    };
    const run = () => labelDistances(labelOracle(teacher), w.samples, w.streams, opts);
    const clean = await run();
    const chunk = `${dir}/run/chunk-00001.json`, chunkLedger = `${dir}/run/chunk-00001.ledger.json`;
    const journal = `${dir}/run/chunk-00001.journal`;
    // A truncated chunk file.
    const chunkText = await Deno.readTextFile(chunk);
    await Deno.writeTextFile(chunk, chunkText.slice(0, chunkText.length >> 1));
    await assert.rejects(
      run,
      (e: Error) => /chunk-00001\.json is corrupt/.test(e.message) && /Delete/.test(e.message),
    );
    // A chunk of the wrong length.
    await Deno.writeTextFile(chunk, JSON.stringify({ ...JSON.parse(chunkText), distances: [1, 2] }));
    await assert.rejects(run, /chunk-00001\.json is corrupt \(distances/);
    await Deno.writeTextFile(chunk, chunkText);
    // A corrupt chunk ledger.
    const ledgerText = await Deno.readTextFile(chunkLedger);
    await Deno.writeTextFile(chunkLedger, ledgerText.slice(0, 40));
    await assert.rejects(run, /chunk-00001\.ledger\.json is corrupt/);
    // A deleted chunk ledger is refused, not a silently smaller count.
    await Deno.remove(chunkLedger);
    await assert.rejects(run, /chunk-00001\.json has no ledger/);
    // An interrupted chunk: its journal holds one reservation, then a line a crash cut short (dropped).
    await Deno.remove(chunk);
    const reserved = '{"t":"r","id":"dead-1","phase":"bd.init","kinds":["label"],"ok":[[3,1]],"no":[]}\n';
    await Deno.writeTextFile(journal, reserved + '{"t":"s","id":"dea');
    const resumed = await run();
    assert.equal(resumed.chunks.resumed, 1);
    assert.equal(resumed.ledger!.totals.images.label, clean.ledger!.totals.images.label + 1);
    assert.equal(resumed.ledger!.totals.reservedUnsettled, 1, "the killed reservation is reported");
    assert.deepEqual(Array.from(resumed.distances), Array.from(clean.distances));
    // The chunk's ledger file keeps it after the chunk is done.
    const again = await run();
    assert.equal(again.ledger!.totals.reservedUnsettled, 1);
    assert.equal(again.ledger!.totals.images.label, resumed.ledger!.totals.images.label);
    // A corrupt journal line in the middle.
    await Deno.remove(chunk);
    await Deno.writeTextFile(journal, reserved + "{not json\n" + reserved);
    await assert.rejects(
      run,
      (e: Error) => /chunk-00001\.journal/.test(e.message) && /corrupt/.test(e.message),
    );
    await Deno.remove(journal);
    // A corrupt meta.json.
    await Deno.writeTextFile(`${dir}/run/meta.json`, "{");
    await assert.rejects(run, /meta\.json is corrupt/);
  });
});

Deno.test("fingerprint: same weights and topology give the same fingerprint; any weight change gives another", () => {
  const a = mlpTeacher(3), b = mlpTeacher(3), c = mlpTeacher(4);
  assert.equal(modelFingerprint(a.model), modelFingerprint(b.model));
  assert.notEqual(modelFingerprint(a.model), modelFingerprint(c.model));
  const m = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3] })] });
  const fp = modelFingerprint(m);
  const m2 = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3] })] });
  m2.setWeights(m.getWeights().map((t) => t.clone()));
  assert.equal(modelFingerprint(m2), fp);
  const ws = m.getWeights();
  m2.setWeights([tf.add(ws[0], tf.scalar(1e-6)), ws[1]]);
  assert.notEqual(modelFingerprint(m2), fp);
});

Deno.test("ledger: a journal replays reservations, settles and releases; reserved-unsettled is reported", async () => {
  await withTemp((dir) => {
    const path = `${dir}/ledger.journal`;
    const l = new Ledger({ perSample: 5 });
    l.attachJournal(path);
    const ids = Int32Array.from([0, 0, 1]);
    const r1 = l.reserve({ kinds: ["label"], phase: "p", n: 3, sampleIds: ids });
    l.settle(r1.ticket, 3);
    const r2 = l.reserve({ kinds: ["label"], phase: "p", n: 3, sampleIds: ids });
    l.release(r2.ticket, Int32Array.from([1]), 1); // one image never answered
    const r3 = l.reserve({ kinds: ["label"], phase: "q", n: 2, sampleIds: Int32Array.from([1, 1]) });
    assert.equal(r3.admitted, 2);
    // "kill" here: r2's two sample-0 images and r3 were never settled.
    l.detachJournal();
    const back = new Ledger({ perSample: 5 });
    back.attachJournal(path);
    back.detachJournal();
    const s = back.snapshot();
    assert.deepEqual(s.totals.images.label, 3 + 2 + 2);
    assert.equal(s.totals.reservedUnsettled, 2 + 2);
    assert.equal(back.spentBy(0), 4);
    assert.equal(back.spentBy(1), 3);
    // Budgets hold across the restart: sample 0 has 1 image left.
    assert.equal(back.remaining(0), 1);
    assert.deepEqual(Ledger.replay(path).totals, s.totals);
  });
});

Deno.test("budgets: budget-cut samples are reported apart for BD and MBD, and never exceed the budget", async () => {
  const w = await ledgerWorld(6);
  const teacher = {
    spec: { inputShape: [28, 28, 1], numClasses: 10 },
    predictLabels: (x: Float32Array, n: number) => Promise.resolve(nearestMeanLabels(w, x, n)),
  };
  // BD costs under 300 queries per sample here: a 400 budget cuts MBD's refinement only.
  const o = labelOracle(teacher, { ledger: new Ledger({ perSample: 400 }) });
  const d = await labelDistances(o, w.samples, w.streams, {
    method: "mbd",
    bd: { candidates: 10, tol: 1e-3 },
    mbd: { kGrad: 10, queryLimit: 150, snapshotAt: [150], seed: 1 },
    progress: false,
  });
  assert.ok(d.bdExhausted!.every((v) => v === 0), "BD itself was not cut");
  assert.ok(d.exhausted.some((v) => v === 1), "MBD was cut");
  assert.deepEqual(Array.from(d.budgetCut), Array.from(d.exhausted.keys()).filter((i) => d.exhausted[i]));
  for (const [id, e] of Object.entries(d.ledger!.bySample)) if (id !== "-1") assert.ok(e.spent <= 400);
});
