/**
 * Remote label oracles against real HTTP servers on 127.0.0.1 (started here on port 0): both
 * protocols, score-returning endpoints, injected 500s, timeouts, malformed JSON, wrong output shapes,
 * auth, connections cut mid-answer, and a server killed mid-run and restarted. After each, the
 * ledger's paid images must equal what the server's own request log says it answered.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { Ledger } from "../lib/oracle/ledger.ts";
import { labelOracle, OracleError } from "../lib/oracle/oracle.ts";
import {
  cachedLabelOracle,
  decodeResponse,
  encodeRequest,
  type Fault,
  LabelCache,
  type Protocol,
  remoteCacheIdentity,
  remoteLabelOracle,
  type RemoteOracleOptions,
  remoteTeacher,
  reportedModelIdentity,
  type ServerHandle,
  startServer,
} from "../lib/remote/mod.ts";
import { saveTeacherFolder } from "../lib/teachers/load.ts";
import { Rng } from "../lib/util/rng.ts";

await tf.setBackend("cpu");

const SHAPE = [2, 2, 1], D = 4, K = 3;

/** A fixed 4-pixel, 3-class linear teacher. */
function teacher(): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: SHAPE }), tfl.layers.dense({ units: K })],
  });
  m.setWeights([tf.tensor2d([[1, 0, -1], [0, 1, -1], [1, -1, 0], [-1, 0, 1]]), tf.tensor1d([0, 0.1, 0.2])]);
  return m;
}

function images(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * D }, () => r.uniform());
}

async function truth(n: number, x: Float32Array): Promise<Int32Array> {
  return (await labelOracle(teacher()).labels(x, n, { phase: "truth" })).labels;
}

const FAST: Partial<RemoteOracleOptions> = { backoffMs: 5, maxBackoffMs: 200, timeoutMs: 5_000 };

function opts(
  srv: ServerHandle,
  protocol: Protocol,
  extra: Partial<RemoteOracleOptions> = {},
): RemoteOracleOptions {
  return { url: srv.url, model: "teacher", protocol, inputShape: SHAPE, numClasses: K, ...FAST, ...extra };
}

/** Paid images in the ledger equal the images the server says it answered. */
async function assertBooksMatch(paid: number, ...servers: ServerHandle[]) {
  let answered = 0;
  for (const s of servers) {
    await s.settled();
    answered += s.answeredImages();
  }
  assert.equal(paid, answered, "ledger paid images vs server request log");
}

async function withTemp<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-remote-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const protocol of ["kserve-v2", "tf-serving"] as const) {
  Deno.test(`remote ${protocol}: labels equal the in-process oracle's; a rerun is all cache hits`, async () => {
    await withTemp(async (dir) => {
      const srv = await startServer({ teacher: teacher() });
      try {
        const n = 100, x = images(n, 1);
        const o = await remoteLabelOracle(
          opts(srv, protocol, { batchSize: 16, concurrency: 3, cacheDir: dir }),
        );
        const ids = Int32Array.from({ length: n }, (_, i) => i % 7);
        const a = await o.labels(x, n, { phase: "p", sampleIds: ids });
        assert.deepEqual(a.labels, await truth(n, x));
        assert.equal(a.refused.reduce((s, v) => s + v, 0), 0);
        const u = o.usage();
        assert.equal(u.paid, n);
        assert.equal(u.cacheHits, 0);
        assert.equal(u.requests, Math.ceil(n / 16));
        assert.equal(o.ledger.snapshot().totals.images.label, n);
        assert.equal(o.ledger.spentBy(0), 15); // ids 0..6 cycling: sample 0 has 15 of the 100
        await assertBooksMatch(n, srv);

        // Same images again, from a new oracle on the same cache folder: nothing paid.
        const o2 = await remoteLabelOracle(opts(srv, protocol, { batchSize: 16, cacheDir: dir }));
        assert.equal(o2.usage().cacheLoaded, n);
        const b = await o2.labels(x, n, { phase: "p", sampleIds: ids });
        assert.deepEqual(b.labels, a.labels);
        assert.equal(o2.usage().cacheHits, n);
        assert.equal(o2.usage().paid, 0);
        assert.equal(o2.ledger.spent, 0);
        await assertBooksMatch(n, srv);
      } finally {
        await srv.close();
      }
    });
  });
}

Deno.test("remote kserve-v2 binary extension: same labels, booked the same; binary answers decode", async () => {
  await withTemp(async (dir) => {
    const srv = await startServer({ teacher: teacher() });
    try {
      const n = 70, x = images(n, 13);
      const o = await remoteLabelOracle(
        opts(srv, "kserve-v2", { binary: true, batchSize: 16, cacheDir: dir }),
      );
      assert.deepEqual((await o.labels(x, n, { phase: "p" })).labels, await truth(n, x));
      await assertBooksMatch(o.usage().paid, srv);
      // JSON and binary requests share one cache namespace: the answers are the same.
      const j = await remoteLabelOracle(opts(srv, "kserve-v2", { batchSize: 16, cacheDir: dir }));
      await j.labels(x, n, { phase: "p" });
      assert.equal(j.usage().cacheHits, n);
    } finally {
      await srv.close();
    }
  });
  // A binary answer (Triton-style INT64 output after the JSON header).
  const head = new TextEncoder().encode(JSON.stringify({
    outputs: [{ name: "label", datatype: "INT64", shape: [3], parameters: { binary_data_size: 24 } }],
  }));
  const body = new Uint8Array(head.length + 24);
  body.set(head);
  body.set(new Uint8Array(new BigInt64Array([2n, 0n, 1n]).buffer), head.length);
  const e = { url: "http://127.0.0.1:1", model: "m", protocol: "kserve-v2" as const };
  const h = new Headers({ "inference-header-content-length": String(head.length) });
  assert.deepEqual(Array.from(decodeResponse(e, body, h, 3, K)), [2, 0, 1]);
});

Deno.test("remote: TF Serving instances are nested like the image shape; KServe data is flat", () => {
  const x = Float32Array.from({ length: 2 * 12 }, (_, i) => i / 32);
  const shape = [2, 3, 2];
  const tfs = JSON.parse(
    encodeRequest({ url: "", model: "m", protocol: "tf-serving" }, x, 2, shape).body as string,
  );
  const nested = (o: number) =>
    Array.from(
      { length: 2 },
      (_, a) =>
        Array.from({ length: 3 }, (_, b) => Array.from({ length: 2 }, (_, c) => x[o + a * 6 + b * 2 + c])),
    );
  assert.deepEqual(tfs, { instances: [nested(0), nested(12)] });
  const ks = JSON.parse(
    encodeRequest({ url: "", model: "m", protocol: "kserve-v2" }, x, 2, shape).body as string,
  );
  assert.deepEqual(ks.inputs[0].shape, [2, 2, 3, 2]);
  assert.deepEqual(ks.inputs[0].data, Array.from(x));
  // Exact: every float32 survives the decimal round trip.
  assert.ok(Float32Array.from(ks.inputs[0].data as number[]).every((v, i) => Object.is(v, x[i])));
});

Deno.test("remote: score-returning endpoints are reduced to labels, scores never reach the oracle", async () => {
  const m = teacher();
  const scores = (x: Float32Array, n: number) => {
    const t = tf.tidy(() => m.predict(tf.tensor(x, [n, ...SHAPE])) as tf.Tensor);
    const z = Array.from(t.dataSync());
    t.dispose();
    return z;
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    if (req.url.includes("/v2/")) {
      const t = body.inputs[0];
      const n = t.shape[0];
      const z = scores(Float32Array.from(t.data), n);
      return Response.json({ outputs: [{ name: "logits", shape: [n, K], datatype: "FP32", data: z }] });
    }
    const n = body.instances.length;
    const z = scores(Float32Array.from(body.instances.flat(Infinity)), n);
    return Response.json({ predictions: Array.from({ length: n }, (_, i) => z.slice(i * K, (i + 1) * K)) });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    for (const protocol of ["kserve-v2", "tf-serving"] as const) {
      const n = 40, x = images(n, 2);
      const o = await remoteLabelOracle({
        url,
        model: "m",
        protocol,
        inputShape: SHAPE,
        numClasses: K,
        batchSize: 8,
      });
      const a = await o.labels(x, n, { phase: "p" });
      assert.deepEqual(a.labels, await truth(n, x));
      assert.deepEqual(Object.keys(a).sort(), ["labels", "refused"]);
      assert.ok(!("predictLogits" in o) && !("probs" in o));
      assert.equal(o.access, "label");
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote: injected 500s and 503s are retried; failed attempts counted apart from paid queries", async () => {
  const faults = new Map<number, Fault>([[0, { status: 500 }], [1, { status: 503 }], [4, { status: 502 }]]);
  const srv = await startServer({ teacher: teacher(), faults: (c) => faults.get(c.index) });
  try {
    const n = 64, x = images(n, 3);
    const o = await remoteLabelOracle(opts(srv, "kserve-v2", { batchSize: 16, concurrency: 1 }));
    const a = await o.labels(x, n, { phase: "p" });
    assert.deepEqual(a.labels, await truth(n, x));
    const u = o.usage();
    assert.equal(u.paid, n);
    assert.equal(u.failedAttempts, 3);
    assert.equal(u.retries, 3);
    assert.deepEqual(u.failuresByCause, { "http 500": 1, "http 503": 1, "http 502": 1 });
    assert.equal(u.attempts, 4 + 3);
    await srv.settled();
    assert.equal(srv.requestLog.filter((e) => e.outcome === "fault").length, 3);
    await assertBooksMatch(o.ledger.snapshot().totals.images.label, srv);
  } finally {
    await srv.close();
  }
});

Deno.test("remote: a request past its timeout is retried and booked once", async () => {
  const srv = await startServer({
    teacher: teacher(),
    faults: (c) => (c.index === 1 ? { delayMs: 3_000 } : undefined),
  });
  try {
    const n = 48, x = images(n, 4);
    const o = await remoteLabelOracle(
      opts(srv, "tf-serving", { batchSize: 16, concurrency: 1, timeoutMs: 250 }),
    );
    const a = await o.labels(x, n, { phase: "p" });
    assert.deepEqual(a.labels, await truth(n, x));
    assert.equal(o.usage().failuresByCause.timeout, 1);
    await srv.settled();
    assert.equal(srv.requestLog.find((e) => e.index === 1)?.outcome, "aborted");
    await assertBooksMatch(o.usage().paid, srv);
    assert.equal(o.usage().paid, n);
  } finally {
    await srv.close();
  }
});

Deno.test("remote: malformed JSON and wrong output shapes are clear errors, not retried, not booked", async () => {
  for (
    const [fault, pattern] of [[{ malformed: true }, /malformed JSON/], [
      { wrongShape: true },
      /asked 16 images/,
    ]] as const
  ) {
    for (const protocol of ["kserve-v2", "tf-serving"] as const) {
      const srv = await startServer({
        teacher: teacher(),
        faults: (c) => (c.index === 2 ? fault : undefined),
      });
      try {
        const n = 64, x = images(n, 5);
        const o = await remoteLabelOracle(opts(srv, protocol, { batchSize: 16, concurrency: 1 }));
        await assert.rejects(
          () => o.labels(x, n, { phase: "p" }),
          (e: Error) =>
            e instanceof OracleError && pattern.test(e.message) && /after 32 of 64/.test(e.message),
        );
        const u = o.usage();
        assert.equal(u.attempts, 3); // two good batches, the bad one once, nothing after it
        assert.equal(u.failedAttempts, 1);
        assert.equal(u.retries, 0);
        assert.equal(u.paid, 32);
        await assertBooksMatch(o.ledger.snapshot().totals.images.label, srv);
        // The failed call reserved nothing for good: the same images go through on the next call.
        const a = await o.labels(x, n, { phase: "p" });
        assert.deepEqual(a.labels, await truth(n, x));
        await assertBooksMatch(o.ledger.snapshot().totals.images.label, srv);
      } finally {
        await srv.close();
      }
    }
  }
});

Deno.test("remote: 4xx is not retried (auth); the right auth header works", async () => {
  const srv = await startServer({ teacher: teacher(), auth: "Bearer s3cret" });
  try {
    const n = 8, x = images(n, 6);
    const bad = await remoteLabelOracle(opts(srv, "kserve-v2", { auth: "Bearer wrong" }));
    await assert.rejects(() => bad.labels(x, n, { phase: "p" }), /HTTP 401 \(check the auth header\)/);
    assert.equal(bad.usage().attempts, 1);
    const missingModel = await remoteLabelOracle({
      ...opts(srv, "tf-serving", { auth: "Bearer s3cret" }),
      model: "nope",
    });
    await assert.rejects(() => missingModel.labels(x, n, { phase: "p" }), /HTTP 404 \(check the model name/);
    assert.equal(missingModel.usage().attempts, 1);
    const good = await remoteLabelOracle(opts(srv, "kserve-v2", { auth: "Bearer s3cret" }));
    assert.deepEqual((await good.labels(x, n, { phase: "p" })).labels, await truth(n, x));
    await assertBooksMatch(good.usage().paid, srv);
  } finally {
    await srv.close();
  }
});

Deno.test("remote: a connection cut mid-answer is retried; the cut answer is not booked", async () => {
  const srv = await startServer({
    teacher: teacher(),
    faults: (c) => (c.index === 1 ? { cut: true } : undefined),
  });
  try {
    const n = 48, x = images(n, 7);
    const o = await remoteLabelOracle(opts(srv, "kserve-v2", { batchSize: 16, concurrency: 1 }));
    assert.deepEqual((await o.labels(x, n, { phase: "p" })).labels, await truth(n, x));
    assert.equal(o.usage().failuresByCause.network, 1);
    await assertBooksMatch(o.usage().paid, srv);
    assert.equal(o.usage().paid, n);
  } finally {
    await srv.close();
  }
});

Deno.test("remote: a server killed mid-run and restarted on its port: retried, nothing lost or booked twice", async () => {
  await withTemp(async (dir) => {
    const servers: ServerHandle[] = [];
    let restarted: Promise<void> | undefined;
    const first = await startServer({
      teacher: teacher(),
      faults: (c) => {
        if (c.index !== 3) return undefined;
        // Die mid-answer (stop accepting at once), stay down a while, come back on the same port.
        restarted = (async () => {
          await first.close();
          await new Promise((r) => setTimeout(r, 300));
          servers.push(await startServer({ teacher: teacher(), port: first.port }));
        })();
        return { cut: true };
      },
    });
    servers.push(first);
    try {
      const n = 160, x = images(n, 8);
      const o = await remoteLabelOracle(
        opts(first, "kserve-v2", {
          batchSize: 16,
          concurrency: 2,
          retries: 12,
          maxBackoffMs: 400,
          cacheDir: dir,
        }),
      );
      const a = await o.labels(x, n, { phase: "p" });
      await restarted;
      assert.deepEqual(a.labels, await truth(n, x));
      const u = o.usage();
      assert.ok(u.failedAttempts >= 1);
      assert.equal(u.paid, n);
      assert.equal(servers.length, 2);
      assert.ok(servers[1].answeredImages() > 0, "the restarted server answered the rest");
      await assertBooksMatch(o.ledger.snapshot().totals.images.label, ...servers);
      // The cache holds every answer exactly once.
      const o2 = opts(servers[1], "kserve-v2");
      const cache = await LabelCache.open(
        dir,
        remoteCacheIdentity(remoteTeacher(o2), undefined, await reportedModelIdentity(o2)),
      );
      assert.equal(cache.size, n);
    } finally {
      for (const s of servers) await s.close().catch(() => {});
    }
  });
});

Deno.test("remote: budgets count paid queries only; cache hits are free, refused images are not sent", async () => {
  await withTemp(async (dir) => {
    const srv = await startServer({ teacher: teacher() });
    try {
      const x = images(6, 9);
      const ledger = new Ledger({ perSample: 3 });
      const o = await remoteLabelOracle(opts(srv, "kserve-v2", { cacheDir: dir, ledger }));
      // sample 0: 3 images (fits), sample 1: 3 images (fits)
      const ids = Int32Array.from([0, 0, 0, 1, 1, 1]);
      const a = await o.labels(x, 6, { phase: "p", sampleIds: ids });
      assert.equal(a.refused.reduce((s, v) => s + v, 0), 0);
      assert.equal(ledger.spentBy(0), 3);
      // sample 0 again with the same images: cache hits, free, not refused
      const b = await o.labels(x.subarray(0, 3 * D), 3, {
        phase: "p",
        sampleIds: Int32Array.from([0, 0, 0]),
      });
      assert.deepEqual(b.labels, a.labels.subarray(0, 3));
      assert.equal(b.refused.reduce((s, v) => s + v, 0), 0);
      // sample 0 with a new image: over budget → refused, not sent
      const before = srv.requestLog.length;
      const c = await o.labels(images(1, 10), 1, { phase: "p", sampleIds: Int32Array.from([0]) });
      assert.deepEqual(Array.from(c.refused), [1]);
      assert.deepEqual(Array.from(c.labels), [-1]);
      await srv.settled();
      assert.equal(srv.requestLog.length, before);
      const u = o.usage();
      assert.deepEqual([u.paid, u.cacheHits, u.refused], [6, 3, 1]);
      assert.equal(ledger.spent, 6);
      await assertBooksMatch(ledger.spent, srv);
    } finally {
      await srv.close();
    }
  });
});

Deno.test("remote: cachedLabelOracle composes with any label predictor (e.g. an in-process one)", async () => {
  await withTemp(async (dir) => {
    const m = teacher();
    let asked = 0;
    const pred = {
      spec: { inputShape: SHAPE, numClasses: K },
      predictLabels: async (x: Float32Array, n: number) => {
        asked += n;
        return (await labelOracle(m).labels(x, n, { phase: "inner" })).labels;
      },
    };
    const cache = await LabelCache.open(dir, { kind: "in-process", name: "linear" });
    const o = cachedLabelOracle(pred, { cache });
    const x = images(10, 11);
    await o.labels(x, 10, { phase: "p" });
    await o.labels(x, 10, { phase: "p" });
    assert.equal(asked, 10);
    assert.deepEqual([o.usage().paid, o.usage().cacheHits], [10, 10]);
    // A cut record at the end of the file (crash mid-append) is dropped on open.
    await Deno.writeFile(cache.file, new Uint8Array(7), { append: true });
    const again = await LabelCache.open(dir, { kind: "in-process", name: "linear" });
    assert.equal(again.size, 10);
    assert.equal((await Deno.stat(again.file)).size, 10 * 20);
  });
});

/** `deno run -A tools/serve.ts …` as a child process; resolves once it prints its URL. */
async function spawnServe(
  args: string[],
): Promise<{ url: string; child: Deno.ChildProcess; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tools/serve.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/at (http:\/\/127\.0\.0\.1:\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited before printing its URL: ${text}`);
    text += value;
  }
  const url = text.match(/at (http:\/\/127\.0\.0\.1:\d+)/)![1];
  // Keep draining stdout in the background so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url,
    child,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await drained;
    },
  };
}

function answeredInLog(text: string): number {
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    .reduce((a, e) => a + (e.outcome === "answered" ? e.images : 0), 0);
}

Deno.test("remote: tools/serve.ts SIGKILLed mid-run and restarted: the client resumes, its books match the log", async () => {
  await withTemp(async (dir) => {
    await saveTeacherFolder(teacher(), `${dir}/teacher`);
    const log = `${dir}/requests.jsonl`;
    const common = ["--teacher", `${dir}/teacher`, "--log", log, "--protocol", "tf-serving"];
    let srv = await spawnServe([...common, "--port", "0"]);
    const port = new URL(srv.url).port;
    try {
      const n = 80, x = images(n, 12);
      const o = await remoteLabelOracle({
        url: srv.url,
        model: "teacher",
        protocol: "tf-serving",
        inputShape: SHAPE,
        numClasses: K,
        batchSize: 8,
        concurrency: 1,
        requestsPerSecond: 5, // a 200 ms gap between requests: the kill lands between two of them
        retries: 30,
        backoffMs: 50,
        maxBackoffMs: 500,
        cacheDir: `${dir}/cache`,
      });
      const run = o.labels(x, n, { phase: "p" });
      // Kill the server once it has answered three requests; restart it on the same port.
      for (let i = 0; i < 1000; i++) {
        const text = await Deno.readTextFile(log).catch(() => "");
        if (text.split("\n").filter((l) => l.trim()).length >= 3) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await srv.stop();
      const killedAt = answeredInLog(await Deno.readTextFile(log));
      // Restart only once the client has met the dead server (bounded wait), so the test does not
      // depend on whether its next request happens to fall before or after the restart.
      for (let i = 0; i < 1000 && o.usage().failedAttempts < 1; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      srv = await spawnServe([...common, "--port", port]);
      const a = await run;
      assert.deepEqual(a.labels, await truth(n, x));
      const u = o.usage();
      assert.ok(killedAt < n, "killed before the end");
      assert.ok(u.failedAttempts >= 1, "the client saw the server go away");
      assert.equal(u.paid, n);
      await srv.stop();
      assert.equal(answeredInLog(await Deno.readTextFile(log)), o.ledger.snapshot().totals.images.label);
    } finally {
      await srv.stop();
    }
  });
});
