/**
 * Remote label oracle vs in-process oracle on the same teacher (MNIST DB3 LeNet-5 at laptop scale,
 * exported as a TF.js folder and served by `tools/serve.ts` in its own process on 127.0.0.1).
 *
 *     deno run -A bench/remote.ts [--teacher laptop|smoke] [--bd-samples 20] [--calls 6] [--batch 2048]
 *                                 [--repeats 2] [--http-batch 512] [--concurrency 4] [--workers 0]
 *
 * Two workloads, each `--repeats` times in rounds over all oracles (ranges reported: the machine is
 * shared, and rounds spread load drift over every oracle alike):
 * - labels: `--calls` oracle calls of `--batch` perturbed test images (a lockstep round's size);
 * - BD: DB3-BD at the laptop settings (201 candidates, tol 1e-5, lean search, lockstep defaults) on
 *   the first `--bd-samples` of a stratified transfer set.
 * Oracles: in-process `labelOracle` on the loaded file teacher (one thread), and the remote label
 * oracle over KServe v2 (JSON and the binary tensor extension) and TF Serving (JSON), without cache,
 * then KServe v2 binary with a cold on-disk cache (hashing + appends, no hits).
 * With `--workers N`, a `ModelPool` in-process oracle and a server backed by the same pool size are
 * added. Prints a table: queries/s (min–max) and the remote/in-process time ratio (target ≤ 2×).
 */
import { initBackend } from "../lib/backend.ts";
import { loadDataset, stratifiedSubset } from "../lib/data/mod.ts";
import { boundaryDistances } from "../lib/db3/bd.ts";
import { makeClassStreams } from "../lib/db3/streams.ts";
import { type LabelOracle, labelOracle } from "../lib/oracle/oracle.ts";
import { ModelPool } from "../lib/parallel/pool.ts";
import { type RemoteLabelOracle, remoteLabelOracle } from "../lib/remote/oracle.ts";
import type { Protocol } from "../lib/remote/protocols.ts";
import { type SpawnedServer, spawnServer } from "../lib/remote/spawn.ts";
import { loadTeacher, saveTeacherFolder } from "../lib/teachers/load.ts";
import { getTeacher } from "../lib/train/teachers.ts";
import { Rng } from "../lib/util/rng.ts";

function flag(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : dflt;
}

interface Row {
  workload: string;
  oracle: string;
  queries: number;
  secs: number[];
  /** Cache hits in the last round (0 without a cache: the cold cache must stay at 0). */
  hits: number;
}

const fmt = (v: number) => Math.round(v).toLocaleString("en-US");

async function main() {
  const scale = flag("teacher", "laptop") === "smoke" ? "smoke" : "laptop";
  const bdSamples = Number(flag("bd-samples", "20"));
  const calls = Number(flag("calls", "6"));
  const batch = Number(flag("batch", "2048"));
  const repeats = Number(flag("repeats", "2"));
  const httpBatch = Number(flag("http-batch", "512"));
  const concurrency = Number(flag("concurrency", "4"));
  const workers = Number(flag("workers", "0"));
  const backend = await initBackend();
  const kit = await getTeacher({ dataset: "mnist", scale, seed: 1 });
  const tmp = await Deno.makeTempDir({ prefix: "bkd-bench-remote-" });
  const folder = `${tmp}/tfjs`;
  await saveTeacherFolder(kit.model, folder);
  const teacher = await loadTeacher(folder);
  const shape = teacher.inputShape, d = shape.reduce((a, b) => a * b, 1);

  // calls × batch distinct images (test images plus noise), so a cache never answers a repeat.
  const test = await loadDataset("mnist", "test", { limit: batch });
  const rng = new Rng(5);
  const xs = new Float32Array(calls * batch * d);
  for (let i = 0; i < xs.length; i++) {
    xs[i] = Math.min(1, Math.max(0, test.x[i % test.x.length] + 0.2 * (rng.uniform() - 0.5)));
  }
  const train = await loadDataset("mnist", "train");
  const perClass = Math.max(1, Math.ceil(bdSamples / 10));
  const samples = stratifiedSubset(train, perClass, 1);
  const n = Math.min(bdSamples, samples.y.length);
  const part = {
    x: samples.x.subarray(0, n * d),
    y: samples.y.subarray(0, n),
    shape: [n, ...shape],
    numClasses: 10,
  };
  const streams = makeClassStreams(train, 1);

  const servers: SpawnedServer[] = [];
  const serve = async (extra: string[] = []) => {
    const s = await spawnServer({
      teacher: extra.length ? "mnist::" + scale : folder,
      args: ["--port", "0", ...extra],
    });
    servers.push(s);
    return s;
  };
  const rows: Row[] = [];
  const configs: { oracle: string; make: () => Promise<LabelOracle>; lab: Row; bd: Row }[] = [];
  const add = (oracle: string, make: () => Promise<LabelOracle>) => {
    const lab: Row = {
      workload: `labels (${calls} × ${batch})`,
      oracle,
      queries: calls * batch,
      secs: [],
      hits: 0,
    };
    const bd: Row = { workload: `BD, ${n} samples`, oracle, queries: 0, secs: [], hits: 0 };
    rows.push(lab, bd);
    configs.push({ oracle, make, lab, bd });
  };
  const hitsOf = (o: LabelOracle) => ("usage" in o ? (o as RemoteLabelOracle).usage().cacheHits : 0);
  // Rounds over all configurations, so load drift on the shared machine hits them alike.
  const run = async () => {
    for (let r = 0; r < repeats; r++) {
      for (const c of configs) {
        const o = await c.make();
        await o.labels(xs, 64, { phase: "warmup" });
        let t0 = performance.now();
        for (let k = 1; k <= calls; k++) {
          await o.labels(xs.subarray((k - 1) * batch * d, k * batch * d), batch, { phase: "labels" });
        }
        c.lab.secs.push((performance.now() - t0) / 1000);
        c.lab.hits = hitsOf(o);
        const o2 = await c.make();
        t0 = performance.now();
        await boundaryDistances(o2, part, streams, {});
        c.bd.secs.push((performance.now() - t0) / 1000);
        c.bd.queries = o2.ledger.spent + hitsOf(o2);
        c.bd.hits = hitsOf(o2);
        console.error(`  round ${r + 1}/${repeats}: ${c.oracle} done`);
      }
    }
  };

  let pool: ModelPool | undefined;
  try {
    add("in-process (1 thread)", () => Promise.resolve(labelOracle(teacher.model)));
    const srv = await serve();
    const remote = (protocol: Protocol, cache: boolean, binary = false) => () =>
      remoteLabelOracle({
        url: srv.url,
        model: "teacher",
        protocol,
        binary,
        inputShape: shape,
        numClasses: 10,
        batchSize: httpBatch,
        concurrency,
        cacheDir: cache ? `${tmp}/cache-${crypto.randomUUID()}` : undefined,
      });
    add("HTTP kserve-v2 JSON", remote("kserve-v2", false));
    add("HTTP kserve-v2 binary", remote("kserve-v2", false, true));
    add("HTTP tf-serving JSON", remote("tf-serving", false));
    add("HTTP kserve-v2 binary + disk cache (cold)", remote("kserve-v2", true, true));
    if (workers > 0) {
      pool = await ModelPool.fromModel(kit.model, kit.spec, { workers });
      const p = pool;
      add(`in-process pool (${workers} workers)`, () => Promise.resolve(labelOracle(p)));
      const psrv = await serve(["--workers", String(workers), "--engine", "pool"]);
      add(`HTTP kserve-v2 binary, server pool (${workers})`, () =>
        remoteLabelOracle({
          url: psrv.url,
          model: "teacher",
          protocol: "kserve-v2",
          binary: true,
          inputShape: shape,
          numClasses: 10,
          batchSize: httpBatch,
          concurrency,
        }));
    }
    await run();
  } finally {
    pool?.close();
    for (const s of servers) await s.close();
    await Deno.remove(tmp, { recursive: true });
  }

  console.log(
    `\nremote vs in-process label oracle — MNIST ${kit.spec.name} (${scale}, test acc ${kit.meta.testAcc}), ` +
      `backend ${backend.name}, ${navigator.hardwareConcurrency} cores (shared), HTTP batch ${httpBatch}, ` +
      `concurrency ${concurrency}, ${repeats} repeats (min–max)\n`,
  );
  const header = [
    "workload",
    "oracle",
    "queries",
    "cache hits",
    "seconds",
    "queries/s",
    "× in-process (min, max)",
  ];
  const table = rows.map((r) => {
    const base = rows.find((b) => b.workload === r.workload)!;
    const lo = Math.min(...r.secs), hi = Math.max(...r.secs);
    const blo = Math.min(...base.secs), bhi = Math.max(...base.secs);
    return [
      r.workload,
      r.oracle,
      fmt(r.queries),
      fmt(r.hits),
      `${lo.toFixed(2)}–${hi.toFixed(2)}`,
      `${fmt(r.queries / hi)}–${fmt(r.queries / lo)}`,
      r === base ? "1" : `${(lo / blo).toFixed(2)}, ${(hi / bhi).toFixed(2)}`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const t of table) console.log(line(t));
}

if (import.meta.main) await main();
