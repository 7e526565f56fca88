/**
 * Fault injection for bad input and damaged files (issue 13, items 4 and 5): every case must end in
 * an error that names what is wrong and what to do — never a hang, a silently wrong number or a
 * silent retrain. Real small tfjs models, real files in temp folders.
 *
 * Searches that would loop forever on bad options run against a ledger with a small per-sample
 * budget, so a regression returns (and fails the assertion) instead of hanging the suite.
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert";
import { initBackend } from "../lib/backend.ts";
import { openBatchCache } from "../lib/cake/checkpoint.ts";
import { resolveCakeOptions } from "../lib/cake/options.ts";
import {
  boundaryDistances,
  type Db3Samples,
  makeClassStreams,
  minimalBoundaryDistances,
  sampleDistances,
} from "../lib/db3/mod.ts";
import { CheckpointError, loadModel } from "../lib/models/io.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { parseEngine, teacherPredictor } from "../lib/native/teacher_predictor.ts";
import { resolveTeacher } from "../lib/teachers/resolve.ts";
import {
  findNonFinitePixel,
  labelOracle,
  Ledger,
  logitsGradOracle,
  nonFiniteMessage,
  probsOracle,
} from "../lib/oracle/mod.ts";
import { cachedLabelOracle } from "../lib/remote/oracle.ts";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint.ts";
import { getTeacher, TEACHER_RECIPES, type TeacherRequest } from "../lib/train/teachers.ts";
import { train } from "../lib/train/trainer.ts";
import { generatePseudoSamples } from "../lib/zeroshot/generate.ts";
import { initPseudoNoise } from "../lib/zeroshot/noise_init.ts";
import { untargetedBoundary } from "../lib/zeroshot/untargeted.ts";
import { Rng } from "../lib/util/rng.ts";

const D = 6, K = 3;
const SPEC: ModelSpec = { name: "mlp", inputShape: [D], numClasses: K, options: { hidden: 8, depth: 1 } };

/** A real small teacher, a pool and samples both labelled by it. */
async function world(nSamples = 2) {
  await initBackend("cpu");
  const model = buildModel(SPEC, 3);
  const rng = new Rng(5);
  const pool = rng.fillUniform(new Float32Array(300 * D));
  const samplesX = rng.fillUniform(new Float32Array(nSamples * D));
  const truth = labelOracle(model);
  const py = (await truth.labels(pool, 300, { phase: "pool" })).labels;
  const sy = (await truth.labels(samplesX, nSamples, { phase: "samples" })).labels;
  const streams = makeClassStreams({ x: pool, y: py, shape: [300, D], numClasses: K }, 1);
  const samples: Db3Samples = { x: samplesX, y: sy, shape: [nSamples, D], numClasses: K };
  // A small per-sample budget: a search that never ends on its own is cut off by refusals.
  const oracle = labelOracle(model, { ledger: new Ledger({ perSample: 3000 }) });
  return { model, streams, samples, oracle };
}

/** Assert that `p` rejects with an error whose message matches every pattern. */
async function rejectsWith(p: Promise<unknown> | (() => unknown), ...patterns: RegExp[]) {
  const run = typeof p === "function" ? Promise.resolve().then(p) : p;
  await assert.rejects(run, (e: Error) => {
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// 4. Bad input

Deno.test("BD with tol ≤ 0 or NaN is rejected before any query (no hang)", async () => {
  const w = await world();
  for (const tol of [0, -1e-5, NaN]) {
    for (const faithful of [false, true]) {
      await rejectsWith(
        boundaryDistances(w.oracle, w.samples, w.streams, { tol, faithful, candidates: 5 }),
        /option tol = .* out of range/,
        /leave tol unset for the default/,
      );
    }
  }
  assert.strictEqual(w.oracle.ledger.spent, 0, "nothing was asked");
  w.model.dispose();
});

Deno.test("BD/MBD/SD/untargeted options out of range are rejected with the option named", async () => {
  const w = await world();
  const bd = (o: object) => boundaryDistances(w.oracle, w.samples, w.streams, { candidates: 5, ...o });
  await rejectsWith(bd({ candidates: 0 }), /candidates = 0/, /an integer ≥ 1/);
  await rejectsWith(bd({ candidates: 2.5 }), /candidates = 2\.5/);
  await rejectsWith(bd({ skew: 0 }), /skew = 0/);
  await rejectsWith(bd({ order: "random" }), /order "random" is not one of nearest, stream/);
  await rejectsWith(bd({ lockstep: { lanes: 0 } }), /lanes = 0/);
  const mbd = (o: object) =>
    minimalBoundaryDistances(w.oracle, w.samples, w.streams, { bd: { candidates: 5 }, ...o });
  await rejectsWith(mbd({ beta: 0 }), /option beta = 0/);
  await rejectsWith(mbd({ kGrad: NaN }), /option kGrad = NaN/);
  await rejectsWith(mbd({ seed: -1 }), /seed -1 is not a non-negative integer/);
  await rejectsWith(mbd({ bd: { tol: 0 } }), /bd options.*tol = 0/);
  await rejectsWith(() => sampleDistances(w.samples, w.streams, { candidates: 0 }), /candidates = 0/);
  await rejectsWith(
    untargetedBoundary(w.oracle, w.samples.x, w.samples.y, { tol: 0, queryLimit: 500 }),
    /untargetedBoundary: option tol = 0/,
  );
  await rejectsWith(
    generatePseudoSamples(w.oracle, { perClass: 0 }),
    /generatePseudoSamples: option perClass = 0/,
  );
  await rejectsWith(
    generatePseudoSamples(w.oracle, { perClass: 1, untargeted: { beta: 0 } }),
    /untargeted options\): option beta = 0/,
  );
  await rejectsWith(
    initPseudoNoise(w.oracle, { perClass: 1, walkTol: 0 }),
    /initPseudoNoise: option walkTol = 0/,
  );
  await rejectsWith(
    initPseudoNoise(w.oracle, { perClass: 1, families: [] }),
    /families \[\] must be a non-empty/,
  );
  assert.strictEqual(w.oracle.ledger.spent, 0);
  await rejectsWith(() => resolveCakeOptions({ eta0: NaN }, "mnist"), /eta0 = NaN/);
  await rejectsWith(() => resolveCakeOptions({ seed: 1.5 }, "mnist"), /seed 1\.5/);
  w.model.dispose();
});

Deno.test("samples of the wrong shape for the teacher are rejected (methods and oracle)", async () => {
  const w = await world();
  const wide: Db3Samples = {
    x: new Float32Array(2 * 8).fill(0.5),
    y: w.samples.y,
    shape: [2, 8],
    numClasses: K,
  };
  const wideStreams = makeClassStreams({
    x: new Float32Array(3 * 8),
    y: Int32Array.from([0, 1, 2]),
    shape: [3, 8],
    numClasses: K,
  }, 1);
  await rejectsWith(
    boundaryDistances(w.oracle, wide, wideStreams, { candidates: 5 }),
    /images of shape \[8\] do not fit the teacher's input \[6\]/,
  );
  await rejectsWith(
    minimalBoundaryDistances(w.oracle, wide, wideStreams),
    /do not fit the teacher's input/,
  );
  // Streams of another image size than the samples.
  await rejectsWith(() => sampleDistances(w.samples, wideStreams), /class streams .* do not fit/);
  // The flat oracle API: a batch that is not n images of the teacher's size.
  await rejectsWith(
    w.oracle.labels(new Float32Array(2 * 8), 2, { phase: "p" }),
    /16 floats are not 2 images of 6 values/,
  );
  await rejectsWith(
    w.oracle.labels(new Float32Array(2 * D), 2, { phase: "p", sampleIds: Int32Array.from([1]) }),
    /1 sample ids for 2 images/,
  );
  await rejectsWith(
    logitsGradOracle(w.model).logits(tf.zeros([2, 8]), "p"),
    /input of shape \[2,8\] does not fit the teacher's \[n, 6\]/,
  );
  assert.strictEqual(w.oracle.ledger.spent, 0);
  w.model.dispose();
});

Deno.test("labels ≥ K, negative labels and a K that differs from the teacher's are rejected", async () => {
  const w = await world();
  for (const bad of [K, -1]) {
    const y = Int32Array.from(w.samples.y);
    y[1] = bad;
    await rejectsWith(
      boundaryDistances(w.oracle, { ...w.samples, y }, w.streams, { candidates: 5 }),
      new RegExp(`label ${bad} at index 1 is not a class id in 0\\.\\.${K - 1}`),
    );
    await rejectsWith(() => sampleDistances({ ...w.samples, y }, w.streams), /label .* at index 1/);
    await rejectsWith(untargetedBoundary(w.oracle, w.samples.x, y), /label .* at index 1/);
  }
  await rejectsWith(
    boundaryDistances(w.oracle, { ...w.samples, numClasses: 4 }, w.streams),
    /K = 4 classes but the teacher has 3/,
  );
  // The pool of a class stream (today a TypeError deep in the loop).
  await rejectsWith(
    () =>
      makeClassStreams({
        x: new Float32Array(2 * D),
        y: Int32Array.from([0, 7]),
        shape: [2, D],
        numClasses: K,
      }, 1),
    /label 7 at index 1/,
  );
  // Training labels.
  await rejectsWith(
    train(SPEC, { x: new Float32Array(2 * D), shape: [2, D], y: Int32Array.from([0, 3]) }, {
      epochs: 1,
      batchSize: 2,
      seed: 1,
      loss: { kind: "ce" },
      optimizer: { kind: "adam", lr: 1e-3 },
    }),
    /train labels: label 3 at index 1/,
  );
  w.model.dispose();
});

Deno.test("NaN/±Inf pixels reject the request naming the image, in every oracle", async () => {
  const w = await world();
  const x = new Rng(2).fillUniform(new Float32Array(4 * D));
  for (const v of [NaN, Infinity, -Infinity]) {
    const bad = x.slice();
    bad[2 * D + 3] = v;
    const ledger = new Ledger();
    const lo = labelOracle(w.model, { ledger });
    await rejectsWith(lo.labels(bad, 4, { phase: "p" }), /image 2 of the request has a non-finite pixel/);
    const po = probsOracle(w.model, { ledger });
    await rejectsWith(po.probs(bad, 4, { phase: "p" }), /image 2 .*non-finite/);
    const inner = labelOracle(w.model);
    const ro = cachedLabelOracle({
      spec: SPEC,
      predictLabels: async (xs: Float32Array, n: number) =>
        (await inner.labels(xs, n, { phase: "in" })).labels,
    }, { ledger });
    await rejectsWith(ro.labels(bad, 4, { phase: "p" }), /remote label oracle.*image 2 .*non-finite/);
    const go = logitsGradOracle(w.model, { ledger });
    const t = tf.tensor(bad, [4, D]);
    await rejectsWith(go.logits(t, "p"), /image 2 .*non-finite/);
    await rejectsWith(go.valueAndGrad(t, (z) => tf.sum(z) as tf.Scalar, "p"), /image 2 .*non-finite/);
    t.dispose();
    assert.strictEqual(ledger.spent, 0, `nothing booked for ${v}`);
    // The function the label server calls on a decoded request.
    const hit = findNonFinitePixel(bad, 4, D);
    assert.deepStrictEqual({ sample: hit?.sample, pixel: hit?.pixel }, { sample: 2, pixel: 3 });
    assert.match(nonFiniteMessage(hit!), /image 2 .*offset 3/);
  }
  assert.strictEqual(findNonFinitePixel(x, 4, D), null);
  // A DB3 sample with a NaN pixel is named before any query.
  const sx = w.samples.x.slice();
  sx[D + 1] = NaN;
  await rejectsWith(
    boundaryDistances(w.oracle, { ...w.samples, x: sx }, w.streams, { candidates: 5 }),
    /boundaryDistances samples: sample 1 has a non-finite pixel \(NaN at offset 1\)/,
  );
  // Finite values outside [0, 1] are still legal (clamped, as documented).
  const big = x.slice();
  big[0] = 7;
  big[1] = -3e38;
  const a = await labelOracle(w.model).labels(big, 4, { phase: "p" });
  assert(a.labels.every((l) => l >= 0 && l < K));
  w.model.dispose();
});

Deno.test("unknown scale, model, dataset and engine names are errors listing the valid ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const req = { dataset: "mnist", scale: "smoke", seed: 1, dir } as TeacherRequest;
    await rejectsWith(
      getTeacher({ ...req, scale: "huge" as TeacherRequest["scale"] }),
      /scale "huge" is not one of smoke, laptop, paper/,
    );
    await rejectsWith(
      getTeacher({ ...req, model: "lenet" as TeacherRequest["model"] }),
      /model "lenet" is not one of db3-lenet5/,
    );
    await rejectsWith(
      getTeacher({ ...req, dataset: "svhn" as TeacherRequest["dataset"] }),
      /dataset "svhn" is not one of mnist, fmnist, cifar10/,
    );
    assert.deepStrictEqual([...Deno.readDirSync(dir)], [], "nothing trained or written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(
    () => parseEngine("gpu", "BKD_ENGINE"),
    /BKD_ENGINE "gpu" is not an engine; use one of auto, native, pool/,
  );
  assert.strictEqual(parseEngine(" Native ", "--engine"), "native");
  // The environment variable goes through the same parser (before: silently "auto").
  await initBackend("cpu");
  const model = buildModel(SPEC, 1);
  Deno.env.set("BKD_ENGINE", "gpu");
  try {
    await rejectsWith(teacherPredictor(model, SPEC, { workers: 1 }), /BKD_ENGINE "gpu" is not an engine/);
  } finally {
    Deno.env.delete("BKD_ENGINE");
    model.dispose();
  }
  await rejectsWith(resolveTeacher("mnist::smoke:one"), /seed "one" is not a non-negative integer/);
  await rejectsWith(resolveTeacher("mnist::tiny"), /scale "tiny" is not one of smoke, laptop, paper/);
  assert.strictEqual(parseEngine("", "BKD_ENGINE"), undefined);
});

Deno.test("a NaN, fractional or negative seed is rejected wherever a seed enters", async () => {
  await initBackend("cpu");
  for (const seed of [NaN, 1.5, -1, Infinity]) {
    assert.throws(() => new Rng(seed), /Rng: seed .* is not a non-negative integer/);
    assert.throws(() => buildModel(SPEC, seed), /buildModel\(mlp\): seed/);
    await rejectsWith(
      train(SPEC, { x: new Float32Array(2 * D), shape: [2, D], y: Int32Array.from([0, 1]) }, {
        epochs: 1,
        batchSize: 2,
        seed,
        loss: { kind: "ce" },
        optimizer: { kind: "adam", lr: 1e-3 },
      }),
      /train: seed/,
    );
  }
  const dir = await Deno.makeTempDir();
  try {
    await rejectsWith(
      getTeacher({
        dataset: "mnist",
        model: "mlp",
        scale: "smoke",
        seed: NaN,
        dir,
        recipe: TINY,
        workers: 1,
      }),
      /getTeacher: seed NaN is not a non-negative integer/,
    );
    assert.deepStrictEqual([...Deno.readDirSync(dir)], [], "no teacher trained or cached");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// 5. Stored files are verified

const TINY = {
  ...TEACHER_RECIPES.smoke.lenet,
  epochs: 1,
  batchSize: 32,
  trainLimit: 128,
  testLimit: 64,
  note: "fault test",
};

async function tinyTeacher(dir: string, extra: Partial<TeacherRequest> = {}) {
  return await getTeacher({
    dataset: "mnist",
    model: "mlp",
    scale: "smoke",
    seed: 2,
    dir,
    recipe: TINY,
    workers: 1,
    ...extra,
  });
}

Deno.test("a corrupt teacher is reported by name, not retrained; retrain: true retrains it", async () => {
  await initBackend("cpu");
  const root = await Deno.makeTempDir();
  try {
    const a = await tinyTeacher(root);
    const folder = `${root}/mnist-mlp-smoke-s2`;
    const bin = `${folder}/weights.bin`;
    const bytes = await Deno.readFile(bin);
    bytes[40] ^= 0x01; // one flipped bit
    await Deno.writeFile(bin, bytes);
    await assert.rejects(tinyTeacher(root), (e: Error) => {
      assert.ok(e instanceof CheckpointError, `${e}`);
      assert.strictEqual(e.file, bin);
      assert.match(e.message, /weights\.bin: checksum mismatch \(corrupt\): SHA-256/);
      assert.match(e.message, /delete the folder .*mnist-mlp-smoke-s2 to retrain, or pass `retrain: true`/);
      assert.match(e.message, /BKD_RETRAIN_TEACHERS=1/);
      return true;
    });
    assert.deepStrictEqual(await Deno.readFile(bin), bytes, "the damaged folder is left for inspection");
    const b = await tinyTeacher(root, { retrain: true });
    assert.notStrictEqual(b.meta.createdAt, a.meta.createdAt);
    const c = await tinyTeacher(root);
    assert.strictEqual(c.meta.createdAt, b.meta.createdAt);
    for (const t of [a, b, c]) t.model.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an edited testAcc or spec is detected; re-indenting meta.json is not a change", async () => {
  await initBackend("cpu");
  const root = await Deno.makeTempDir();
  try {
    const a = await tinyTeacher(root);
    const folder = `${root}/mnist-mlp-smoke-s2`;
    const metaFile = `${folder}/meta.json`;
    const original = await Deno.readTextFile(metaFile);
    const meta = JSON.parse(original);
    // Same content, other formatting and key order: still verified.
    const reordered = Object.fromEntries(Object.entries(meta).reverse());
    await Deno.writeTextFile(metaFile, JSON.stringify(reordered));
    const same = await tinyTeacher(root);
    assert.strictEqual(same.meta.testAcc, a.meta.testAcc);
    assert.strictEqual(same.meta.integrityWarning, undefined);
    // An edited accuracy.
    await Deno.writeTextFile(metaFile, JSON.stringify({ ...meta, testAcc: 0.999 }, null, 2));
    await rejectsWith(
      tinyTeacher(root),
      /meta\.json: content does not match the SHA-256 recorded in manifest\.json/,
      /retrain: true/,
    );
    await rejectsWith(loadModel(folder), /meta\.json: content does not match/);
    await Deno.writeTextFile(metaFile, original);
    const spec = JSON.parse(await Deno.readTextFile(`${folder}/spec.json`));
    await Deno.writeTextFile(
      `${folder}/spec.json`,
      JSON.stringify({ ...spec, options: { hidden: 100, depth: 4 } }),
    );
    await rejectsWith(loadModel(folder), /spec\.json: content does not match/);
    for (const t of [a, same]) t.model.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a truncated meta.json names the file; an old folder loads with a warning", async () => {
  await initBackend("cpu");
  const root = await Deno.makeTempDir();
  try {
    const a = await tinyTeacher(root);
    const folder = `${root}/mnist-mlp-smoke-s2`;
    const metaFile = `${folder}/meta.json`;
    const meta = await Deno.readTextFile(metaFile);
    await Deno.writeTextFile(metaFile, meta.slice(0, meta.length / 2));
    await assert.rejects(tinyTeacher(root), (e: Error) => {
      assert.ok(e instanceof CheckpointError, `not a bare ${e.name}`);
      assert.match(e.message, /meta\.json: is not valid JSON/);
      assert.match(e.message, /retrain: true/);
      return true;
    });
    await Deno.writeTextFile(metaFile, meta);
    // A folder saved before the SHA-256 digests: loads, with the warning in the returned meta.
    const manifestFile = `${folder}/manifest.json`;
    const manifest = JSON.parse(await Deno.readTextFile(manifestFile));
    delete manifest.sha256;
    await Deno.writeTextFile(manifestFile, JSON.stringify(manifest));
    const old = await tinyTeacher(root);
    assert.match(old.meta.integrityWarning ?? "", /saved without SHA-256 digests/);
    assert.strictEqual((await loadModel(folder)).integrity.verified, false);
    for (const t of [a, old]) t.model.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a truncated, flipped or old-format training checkpoint names the file and the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ck = {
      configHash: "abc",
      epoch: 2,
      history: [{ epoch: 1 }],
      weights: [new Float32Array([1, 2, 3]), new Float32Array([-0.5])],
      optimizer: { kind: "sgd" as const, step: 3, slots: [[new Float32Array([1, 1, 1])]] },
      meta: {},
    };
    await saveCheckpoint(dir, ck);
    const file = `${dir}/checkpoint.bin`;
    const good = await Deno.readFile(file);
    const expectBad = async (bytes: Uint8Array, re: RegExp) => {
      await Deno.writeFile(file, bytes);
      await assert.rejects(loadCheckpoint(dir), (e: Error) => {
        assert.ok(e instanceof CheckpointError, `not a bare ${e.name}: ${e.message}`);
        assert.strictEqual(e.file, file);
        assert.match(e.message, re);
        assert.match(e.message, /Delete .*checkpoint\.bin to start this training run fresh/);
        return true;
      });
    };
    await expectBad(good.subarray(0, 30), /is truncated \(30 bytes\)/);
    await expectBad(good.subarray(0, 60), /does not match its SHA-256 digest/); // inside the header
    await expectBad(good.subarray(0, good.length - 5), /does not match its SHA-256 digest/);
    const flipped = good.slice();
    flipped[good.length - 40] ^= 0x80; // a weight or slot value
    await expectBad(flipped, /does not match its SHA-256 digest/);
    const v1 = good.slice();
    v1.set(new TextEncoder().encode("BKDCKPT1"), 0);
    await expectBad(v1, /old-format checkpoint without a SHA-256 digest/);
    await expectBad(new Uint8Array(4), /bad magic/);
    await Deno.writeFile(file, good);
    assert.deepStrictEqual(await loadCheckpoint(dir), ck);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt CAKE batch file names the file instead of being recomputed silently", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cache = await openBatchCache(dir, { test: 1 });
    const rec = {
      m: 0,
      eta: 0.1,
      n: 2,
      dim: 3,
      numClasses: 2,
      x: Float32Array.from([1, 2, 3, 4, 5, 6]),
      logits: Float32Array.from([0.5, -0.5, 1, 2]),
      targetClass: Int32Array.from([0, 1]),
      lastLoss: 1.5,
      seconds: 0.1,
      passes: { forward: 4, backward: 4 },
    };
    await cache.save(rec);
    assert.deepStrictEqual(await cache.load(0), rec);
    const bin = `${dir}/batch-00000.bin`, json = `${dir}/batch-00000.json`;
    const bytes = await Deno.readFile(bin);
    await Deno.writeFile(bin, bytes.subarray(0, bytes.length - 4));
    await rejectsWith(cache.load(0), /batch-00000\.bin: has 56 bytes, 60 expected/, /to recompute batch 0/);
    const flipped = bytes.slice();
    flipped[20] ^= 1;
    await Deno.writeFile(bin, flipped);
    await rejectsWith(cache.load(0), /batch-00000\.bin: does not match the SHA-256/);
    await Deno.writeFile(bin, bytes);
    const text = await Deno.readTextFile(json);
    await Deno.writeTextFile(json, text.slice(0, 10));
    await rejectsWith(cache.load(0), /batch-00000\.json: is not valid JSON/);
    await Deno.writeTextFile(`${dir}/cake.json`, "{ truncated");
    await rejectsWith(openBatchCache(dir, { test: 1 }), /cake\.json: is not valid JSON/, /delete the folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
