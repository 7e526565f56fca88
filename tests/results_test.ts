import assert from "node:assert/strict";
import Papa from "papaparse";
import { loadRuns, loadRunsCsv, type RunRecord, runToRow, saveRun, startRun } from "../lib/results/record.ts";
import {
  formatPaperValue,
  matrixCell,
  TABLE_A,
  TABLE_B,
  TABLE_C_CIFAR_DEPTH,
  TABLE_C_MNIST_TYPE,
  tableARow,
  tableARows,
  tableBRows,
} from "../lib/results/paper.ts";
import { paperVsMeasured, table, toMarkdown } from "../lib/results/table.ts";
import { flattenObject } from "../lib/util/flatten.ts";
import { DISPLAY } from "../lib/show/display.ts";

function fakeRun(
  method: string,
  seed: number,
  config: Record<string, unknown>,
  metrics: Record<string, number>,
) {
  const h = startRun({ experiment: "unit test", method, dataset: "mnist", scale: "smoke", seed, config });
  return h.finish(metrics, { ledger: { label: { total: 10 } }, notes: ["test run"] });
}

Deno.test("record: startRun/finish fills identity, versions and timing", () => {
  const r = fakeRun("cake", 1, { epochs: 2, optimizer: { kind: "adam", lr: 0.001 } }, { studentAcc: 0.9 });
  assert.match(r.id, /^\d{8}T\d{6}Z-cake-mnist-smoke-s1-[0-9a-f]{6}$/);
  assert.equal(r.experiment, "unit test");
  assert.ok(r.wallTimeSec >= 0);
  assert.equal(r.versions.deno, Deno.version.deno);
  assert.equal(r.versions.tfjs, "4.22.0");
  assert.match(r.versions.kit, /^boundary-kd@/);
  assert.ok(r.gitCommit === null || /^[0-9a-f]{40}$/.test(r.gitCommit));
  assert.deepEqual(r.notes, ["test run"]);
  const row = runToRow(r);
  assert.equal(row["config.optimizer.lr"], 0.001);
  assert.equal(row["metrics.studentAcc"], 0.9);
});

Deno.test("record: JSON and CSV round trip, CSV rewritten with the union of columns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = fakeRun("cake", 1, { epochs: 2 }, { studentAcc: 0.91 });
    const b = fakeRun("db3", 2, { epochs: 3, tau: 20 }, { studentAcc: 0.8, queries: 1234 });
    const pa = await saveRun(a, { dir });
    const pb = await saveRun(b, { dir });
    assert.equal(pa.csv, `${dir}/unit-test.csv`);
    assert.equal(pa.json, `${dir}/unit-test/${a.id}.json`);
    assert.equal(pb.csv, pa.csv);

    const back = await loadRuns("unit test", { dir });
    assert.equal(back.length, 2);
    const byId = new Map(back.map((r) => [r.id, r]));
    assert.deepEqual(byId.get(a.id), JSON.parse(JSON.stringify(a)) as RunRecord);
    assert.deepEqual(byId.get(b.id)?.metrics, { studentAcc: 0.8, queries: 1234 });

    const text = await Deno.readTextFile(pa.csv);
    const parsed = (Papa as unknown as {
      parse(t: string, c: object): { data: Record<string, unknown>[]; meta: { fields: string[] } };
    }).parse(text, { header: true, skipEmptyLines: true, dynamicTyping: true });
    assert.equal(parsed.data.length, 2);
    for (const col of ["id", "config.epochs", "config.tau", "metrics.studentAcc", "metrics.queries"]) {
      assert.ok(parsed.meta.fields.includes(col), `column ${col}`);
    }
    const rowA = parsed.data.find((r) => r.id === a.id)!;
    const rowB = parsed.data.find((r) => r.id === b.id)!;
    assert.equal(rowA["config.tau"], null, "missing cell stays empty");
    assert.equal(rowA["metrics.studentAcc"], 0.91);
    assert.equal(rowB["config.tau"], 20);
    assert.equal(rowB["metrics.queries"], 1234);

    // saving the same run again replaces its row
    await saveRun(a, { dir });
    const again = await loadRunsCsv("unit test", { dir });
    assert.equal(again.rows.length, 2);
    assert.equal(again.columns.length, parsed.meta.fields.length);
    // no temp files left behind
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.ok(names.every((n) => !n.includes(".tmp-")), names.join(","));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record: loading an experiment that does not exist gives nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await loadRuns("nope", { dir }), []);
    assert.deepEqual((await loadRunsCsv("nope", { dir })).rows, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flatten: nested objects, arrays and undefined", () => {
  assert.deepEqual(flattenObject({ a: { b: 1, c: [1, 2] }, d: undefined, e: null }, "config"), {
    "config.a.b": 1,
    "config.a.c": "[1,2]",
    "config.e": null,
  });
});

Deno.test("paper: table A sanity", () => {
  assert.equal(TABLE_A.length, 15);
  const cake = tableARow("cake", "mnist", "LeNet-5-half");
  assert.ok(cake);
  assert.deepEqual(cake.studentAcc, [{ mean: 98.4, std: 0.18 }]);
  assert.deepEqual(cake.teacherAcc, [{ mean: 99.3, std: 0.12 }]);
  assert.equal(formatPaperValue(cake.studentAcc[0]), "98.4 ± 0.18");
  assert.equal(tableARow("ZSDB3KD", "CIFAR-10")?.studentAcc[0].mean, 59.5);
  assert.equal(tableARow("kd", "Fashion-MNIST")?.teacherAcc[0].mean, 90.8);
  assert.equal(tableARows("cake", "svhn").length, 2);
  assert.equal(tableARow("cake", "svhn"), undefined, "ambiguous without the student");
  assert.equal(tableARow("cake", "svhn", "ResNet-18")?.studentAcc[0].std, 0.54);
  assert.equal(tableARow("dafl", "cifar10")?.studentAcc[1].mean, 90.4);
  for (const r of TABLE_A) {
    for (const v of [...r.teacherAcc, ...r.studentAcc]) assert.ok(v.mean > 0 && v.mean <= 100);
  }
});

Deno.test("paper: table B is unverified", () => {
  assert.equal(TABLE_B.length, 4);
  assert.ok(TABLE_B.every((r) => r.verified === false && r.status === "unverified"));
  assert.deepEqual(tableBRows("mnist").map((r) => r.studentAcc.mean), [99.33, 99.52]);
});

Deno.test("paper: table C matrices", () => {
  for (const m of [TABLE_C_CIFAR_DEPTH, TABLE_C_MNIST_TYPE]) {
    assert.equal(m.studentAcc.length, m.teachers.length);
    assert.ok(m.studentAcc.every((r) => r.length === m.students.length));
  }
  assert.equal(matrixCell(TABLE_C_CIFAR_DEPTH, "R4", "R4")?.mean, 49.3);
  assert.equal(matrixCell(TABLE_C_CIFAR_DEPTH, "ResNet-18", "ResNet-4")?.approx, true);
  assert.equal(matrixCell(TABLE_C_MNIST_TYPE, "ViT", "ViT")?.mean, 96.8);
  assert.equal(matrixCell(TABLE_C_MNIST_TYPE, "CNN", "MLP")?.mean, 63.4);
  assert.equal(TABLE_C_CIFAR_DEPTH.teacherAcc[3].approx, true);
});

Deno.test("table: DataFrame renders as an HTML table with one row per input", () => {
  const rows = [
    { method: "kd", acc: 98.81234, n: 3 },
    { method: "cake", acc: 97.5 },
    { method: "db3", acc: null, note: "not run" },
  ];
  const df = table(rows, { digits: 2 });
  assert.deepEqual(df.shape, [3, 4]);
  assert.deepEqual(df.columns, ["method", "acc", "n", "note"]);
  const b = df[DISPLAY]();
  const html = String(b["text/html"]);
  assert.equal((html.match(/<tr>/g) ?? []).length, 1 + 3);
  assert.ok(html.includes(">98.81<"));
  assert.ok(String(b["text/plain"]).split("\n").length === 2 + 3);
  assert.equal(table([], { columns: ["a"] })[DISPLAY]()["text/html"].toString().includes("<th"), true);
});

Deno.test("table: markdown", () => {
  const md = toMarkdown([{ a: 1, b: "x|y" }, { a: 2.5 }], { digits: 1 });
  assert.deepEqual(md.split("\n"), ["| a | b |", "| ---: | --- |", "| 1 | x\\|y |", "| 2.5 |  |"]);
});

Deno.test("table: paperVsMeasured side by side", () => {
  const cake = tableARow("cake", "mnist")!;
  const df = paperVsMeasured([
    {
      method: "CAKE",
      dataset: "mnist",
      pair: "LeNet-5 → LeNet-5-half",
      paper: cake.studentAcc[0],
      measured: { mean: 97.1, std: 0.4, n: 3 },
      scale: "laptop",
    },
    { method: "DB3-MBD", dataset: "mnist", paper: 99.52, unverified: true, scale: "laptop" },
  ]);
  assert.deepEqual(df.columns, [
    "method",
    "dataset",
    "teacher → student",
    "paper",
    "measured",
    "Δ",
    "scale",
    "note",
  ]);
  const vals = df.values as unknown[][];
  assert.equal(vals[0][3], "98.4 ± 0.18");
  assert.equal(vals[0][4], "97.10 ± 0.40 std (3 seeds)");
  assert.equal(vals[0][5], -1.3);
  assert.equal(vals[1][3], "99.52 (unverified)");
  assert.equal(vals[1][4], "");
  assert.ok(String(df[DISPLAY]()["text/html"]).includes("unverified"));
});
