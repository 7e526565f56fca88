/**
 * Layering: every import in `lib/` points down the data flow (lib/layers.ts), and no two `lib/`
 * folders import each other, directly or around a loop.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import {
  folderCycles,
  type ImportEdge,
  importSpecifiers,
  importViolations,
  LAYERS,
  unitOf,
} from "../lib/layers.ts";
import { repoRoot } from "../lib/util/paths.ts";

const LIB = join(repoRoot(), "lib");

async function libFiles(dir = LIB): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await libFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Every relative import between two files of lib/ (imports leaving lib/, e.g. package.json, are skipped). */
async function libEdges(): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = [];
  for (const file of await libFiles()) {
    const from = relative(LIB, file);
    for (const spec of importSpecifiers(await Deno.readTextFile(file))) {
      const to = relative(LIB, normalize(join(dirname(file), spec)));
      if (!to.startsWith("..")) edges.push({ from, to });
    }
  }
  return edges;
}

Deno.test("layering: no lib/ module imports one from a layer above it", async () => {
  const edges = await libEdges();
  assert.ok(edges.length > 300, `only ${edges.length} imports parsed: the import parser is broken`);
  const bad = importViolations(edges).map((v) => `${v.from} → ${v.to}: ${v.reason}`);
  assert.deepEqual(bad, []);
});

Deno.test("layering: no import cycles between lib/ folders", async () => {
  assert.deepEqual(folderCycles(await libEdges()), []);
});

Deno.test("layering: every lib/ folder and top-level file is placed in exactly one layer", async () => {
  const units = new Set((await libFiles()).map((f) => unitOf(relative(LIB, f))));
  const placed = LAYERS.flat();
  assert.equal(new Set(placed).size, placed.length, "a unit is listed in two layers");
  for (const u of units) assert.ok(placed.includes(u), `lib/${u} is not in LAYERS (lib/layers.ts)`);
});

Deno.test("layering: the checks catch an upward import, an unplaced folder and a folder cycle", () => {
  const edges: ImportEdge[] = [
    { from: "db3/bd.ts", to: "oracle/oracle.ts" }, // down: fine
    { from: "remote/byot.ts", to: "experiments/db3.ts" }, // up
    { from: "db3/x.ts", to: "newstuff/y.ts" }, // unplaced
  ];
  const v = importViolations(edges);
  assert.deepEqual(v.map((x) => x.from), ["remote/byot.ts", "db3/x.ts"]);
  assert.match(v[0].reason, /remote \(layer \d+\) imports experiments/);
  assert.match(v[1].reason, /"newstuff" is not in LAYERS/);
  assert.deepEqual(
    folderCycles([
      { from: "train/trainer.ts", to: "parallel/pool.ts" },
      { from: "parallel/pool.ts", to: "learn/losses.ts" },
      { from: "parallel/replica.ts", to: "train/optim.ts" },
      { from: "data/a.ts", to: "util/b.ts" },
    ]),
    [["parallel", "train"]],
  );
});

Deno.test("layering: the parser finds static, re-export, side-effect, dynamic and worker imports", () => {
  const src = [
    `import { a } from "./a.ts";`,
    `import {`,
    `  b,`,
    `} from "../b/b.ts";`,
    `export * from "./c.ts";`,
    `import "./d.ts";`,
    ` * import { fake } from "./comment.ts"; (a doc comment line)`,
    `const m = await import("./e.ts");`,
    `new Worker(new URL("./worker.ts", import.meta.url));`,
    `import * as tf from "@tensorflow/tfjs-core";`,
  ].join("\n");
  assert.deepEqual(importSpecifiers(src).sort(), [
    "../b/b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./worker.ts",
  ]);
});
