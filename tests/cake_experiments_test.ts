/**
 * Tests of the CAKE helpers (lib/experiments/cake_train.ts) and views (lib/views/cake.ts): helpers against hand-computed values,
 * views built from hand-made results (paper numbers must come from lib/results/paper.ts), and a tiny
 * end-to-end teacher-type matrix on MNIST (teacher cached, synthesis, students, records).
 */
import assert from "node:assert/strict";
import { shortHash as hashOf, specLabel } from "../lib/train/spec_teachers.ts";
import { meanStd } from "../lib/experiments/cake_collect.ts";
import { type CakeMatrixResult, readCakeMatrix } from "../lib/views/cake_results.ts";
import type { CakeMatrixSettings } from "../lib/experiments/cake_matrix_settings.ts";
import { cakeNotebookPlan } from "../lib/experiments/cake_notebooks.ts";
import { runExperiment } from "../lib/experiments/run.ts";
import {
  coarsenField,
  matrixPaperRows,
  measuredMatrix,
  paperMatrix,
  sameTypeClaim,
  twoMoonsClaims,
} from "../lib/views/cake.ts";
import type { TwoMoonsFigureResult } from "../lib/views/cake_results.ts";
import { TABLE_C_MNIST_TYPE } from "../lib/results/paper.ts";

Deno.test("meanStd: sample standard deviation, 0 for one value", () => {
  const a = meanStd([1, 2, 3, 4]);
  assert.deepEqual(a.mean, 2.5);
  assert.ok(Math.abs(a.std - Math.sqrt(5 / 3)) < 1e-12);
  assert.deepEqual(a.n, 4);
  assert.deepEqual(meanStd([7]).std, 0);
});

Deno.test("hashOf: independent of key order, sensitive to values", () => {
  assert.deepEqual(hashOf({ a: 1, b: { c: 2, d: [1, 2] } }), hashOf({ b: { d: [1, 2], c: 2 }, a: 1 }));
  assert(hashOf({ a: 1 }) !== hashOf({ a: 2 }));
});

Deno.test("specLabel names the options that matter", () => {
  assert.deepEqual(
    specLabel({ name: "resnet", options: { depth: 8, width: 16 } }),
    "resnet8w16",
  );
  assert.deepEqual(
    specLabel({ name: "mlp", options: { hidden: 20, depth: 2 } }),
    "mlp20x2",
  );
  assert.deepEqual(specLabel({ name: "cake-cnn" }), "cake-cnn");
});

function fakeMoons(values: Record<string, number[]>): TwoMoonsFigureResult {
  const summary = Object.entries(values).map(([method, v]) => ({ method, ...meanStd(v), values: v }));
  return { summary } as unknown as TwoMoonsFigureResult;
}

Deno.test("twoMoonsClaims: within tolerance and clearly above by more than the spread", () => {
  const ok = twoMoonsClaims(fakeMoons({
    teacher: [0.9, 0.92, 0.91],
    naive: [0.7, 0.72, 0.71],
    generator: [0.75, 0.6, 0.9],
    cake: [0.89, 0.9, 0.9],
  }));
  assert.deepEqual(ok.map((c) => c.holds), [true, true, false]);
  const far = twoMoonsClaims(fakeMoons({ teacher: [0.95], naive: [0.5], generator: [0.5], cake: [0.9] }));
  assert.deepEqual(far[0].holds, false);
});

function fakeMatrix(acc: number[][]): CakeMatrixResult {
  const names = TABLE_C_MNIST_TYPE.teachers;
  const settings = {
    dataset: "mnist",
    teachers: names.map((name) => ({ name, spec: { name: "mlp" } })),
    students: names.map((name) => ({ name, spec: { name: "mlp" } })),
  } as unknown as CakeMatrixSettings;
  return {
    scale: "smoke",
    settings,
    note: "",
    seeds: [1],
    teachers: names.map((name) => ({ name, accuracy: 0.9, cached: true, seconds: 0 })),
    cells: [],
    summary: names.flatMap((t, i) =>
      names.map((s, j) => ({ teacherName: t, studentName: s, mean: acc[i][j], std: 0, n: 1 }))
    ),
  };
}

Deno.test("matrix views: measured percent, paper cells from TABLE_C_MNIST_TYPE, same-type claim", () => {
  const acc = [[0.9, 0.1, 0.1, 0.1], [0.1, 0.8, 0.1, 0.1], [0.2, 0.2, 0.1, 0.2], [0.1, 0.1, 0.1, 0.7]];
  const r = fakeMatrix(acc);
  const m = measuredMatrix(r);
  assert.ok(Math.abs(m.values[1][1]! - 80) < 1e-9);
  assert.deepEqual(m.rows[0], "MLP (90.0)");
  const p = paperMatrix(TABLE_C_MNIST_TYPE);
  assert.deepEqual(p.values[2][2], TABLE_C_MNIST_TYPE.studentAcc[2][2].mean);
  const rows = matrixPaperRows(r, TABLE_C_MNIST_TYPE);
  assert.deepEqual(rows.length, 16);
  assert.deepEqual(rows[5].paper, TABLE_C_MNIST_TYPE.studentAcc[1][1]);
  assert.deepEqual(sameTypeClaim(r).map((c) => c.holds), [true, true, false, true]);
});

Deno.test("matrix run: MLP teacher → MLP student on MNIST end to end, teacher cached on the second run", async () => {
  const dir = await Deno.makeTempDir();
  Deno.env.set("BKD_TEACHER_DIR", `${dir}/teachers`);
  try {
    const settings = {
      teachers: [{ name: "MLP", spec: { name: "mlp" as const, options: { hidden: 16, depth: 1 } } }],
      students: [{ name: "MLP", spec: { name: "mlp" as const, options: { hidden: 8, depth: 1 } } }],
      teacherRecipe: {
        epochs: 1,
        batchSize: 32,
        optimizer: { kind: "adam" as const, lr: 1e-3 },
        schedule: { kind: "constant" as const },
        trainLimit: 128,
        testLimit: 50,
        workers: 1,
      },
      synth: { numBatches: 1, batchSize: 10, steps: 1 },
      student: { epochs: 1, batchSize: 8, valFraction: 0.1, workers: 1 },
      testLimit: 50,
    };
    const plan = await cakeNotebookPlan("24", "smoke", { settings });
    const run = async (store: string) => {
      const s = await runExperiment(plan, { store, onUnit: () => {} });
      return await readCakeMatrix(s, { save: true, resultsDir: `${dir}/runs` });
    };
    const a = await run(`${dir}/store-a`);
    assert.deepEqual(a.cells.length, 1);
    assert.deepEqual(a.teachers[0].cached, false);
    assert.deepEqual(a.cells[0].syntheticSamples, 10);
    assert(a.cells[0].studentAccuracy >= 0 && a.cells[0].studentAccuracy <= 1);
    assert.deepEqual(a.cells[0].record.scale, "smoke");
    assert.deepEqual(a.cells[0].record.method, "cake:mlp16x1->mlp8x1");
    const saved = [...Deno.readDirSync(`${dir}/runs/cake-across-models`)].map((e) => e.name);
    assert.deepEqual(saved, [`${a.cells[0].record.id}.json`]);
    const b = await run(`${dir}/store-b`);
    assert.deepEqual(b.teachers[0].cached, true);
    assert.deepEqual(b.teachers[0].accuracy, a.teachers[0].accuracy);
  } finally {
    Deno.env.delete("BKD_TEACHER_DIR");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("coarsenField: block means, grid kept when the factor divides it", () => {
  const values = Float32Array.from({ length: 16 }, (_, k) => k);
  const f = coarsenField({ grid: { x0: -2, x1: 2, y0: -2, y1: 2, nx: 4, ny: 4 }, values }, 2);
  assert.deepEqual(f.grid, { x0: -2, x1: 2, y0: -2, y1: 2, nx: 2, ny: 2 });
  assert.deepEqual(Array.from(f.values), [2.5, 4.5, 10.5, 12.5]);
  const same = coarsenField({ grid: { x0: 0, x1: 1, y0: 0, y1: 1, nx: 4, ny: 4 }, values }, 40);
  assert.equal(same.values, values);
});
