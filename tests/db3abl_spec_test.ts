/**
 * The DB3 ablations as data: the settings table's `paper` base is the reference, the scales resolve to
 * the settings notebook 13 ran with before it became data, and the variants are the students it trained.
 */
import assert from "node:assert/strict";
import { MBD_DEFAULTS } from "../lib/db3/mbd.ts";
import { db3Settings } from "../lib/experiments/db3.ts";
import { DB3_ABLATION_SETTINGS, db3AblationVariants, db3Remedies } from "../lib/experiments/db3abl_spec.ts";
import { db3AblationSettings } from "../lib/experiments/db3_ablations.ts";
import { modelTitle } from "../lib/views/db3_table.ts";

Deno.test("db3 ablation settings: paper is the reference (200 epochs, τ 20 among the values, half and fifth students)", () => {
  const table = db3Settings("paper", "mnist");
  const base = DB3_ABLATION_SETTINGS.paper.base;
  // algorithms.md, "Student training in DB3 (reference)": 200 epochs, τ = 20, LeNet students.
  assert.equal(base.epochs, 200);
  assert.equal(base.epochs, table.student.epochs);
  assert.ok(base.taus.includes(20) && table.student.temperature === 20);
  // experiments.md D: student size (half, fifth); the table's student comes first.
  assert.deepEqual(Object.values(base.students), ["db3-lenet5-half", "db3-lenet5-fifth"]);
  assert.equal(Object.values(base.students)[0], table.student.model);
  assert.equal(base.epochTestLimit, null, "paper scores every epoch, as the table's students");
  const s = db3AblationSettings("paper");
  assert.equal(s.note, table.note);
  // The budget curve at paper scale: MBD's reference snapshots 1k…20k.
  const budget = db3AblationVariants(s, ["budget"]);
  assert.deepEqual(budget.map((v) => v.snapshot ?? null), [null, ...MBD_DEFAULTS.snapshotAt]);
});

Deno.test("db3 ablation settings: laptop and smoke resolve to the settings notebook 13 ran with", () => {
  const laptop = db3AblationSettings("laptop");
  assert.equal(laptop.epochs, 100);
  assert.deepEqual(laptop.taus, [1, 5, 20, 50]);
  assert.equal(laptop.epochTestLimit, 0);
  assert.deepEqual(laptop.stress, { scan: 20000, add: 6 });
  assert.deepEqual(laptop.floor, { quantile: 0.05 });
  assert.deepEqual(laptop.table, db3Settings("laptop", "mnist"));
  assert.equal(
    laptop.note,
    `${laptop.table.note}; ablation students 100 epochs (base students 200), test set scored after the ` +
      "last epoch only (no best-epoch numbers)",
  );
  const smoke = db3AblationSettings("smoke");
  assert.equal(smoke.epochs, db3Settings("smoke", "mnist").student.epochs);
  assert.deepEqual(smoke.taus, [1, 20]);
  assert.deepEqual(smoke.stress, { scan: 500, add: 2 });
  assert.equal(smoke.epochTestLimit, null);
  // An override on top; a key the table lacks is refused with the known keys.
  assert.equal(db3AblationSettings("smoke", { stress: { add: 1 } }).stress.scan, 500);
  assert.throws(
    () => db3AblationSettings("smoke", { epoch: 3 } as never),
    /unknown key\(s\) epoch; known: epochs/,
  );
});

Deno.test("db3 ablation variants: one named override per student, in notebook order", () => {
  const v = db3AblationVariants(db3AblationSettings("laptop"));
  assert.deepEqual(v.map((x) => `${x.part}: ${x.name}`), [
    "budget: BD",
    "budget: MBD ≤ 500",
    "budget: MBD ≤ 1000",
    "budget: MBD ≤ 1500",
    "budget: MBD ≤ 2000",
    "tau: τ = 1",
    "tau: τ = 5",
    "tau: τ = 20",
    "tau: τ = 50",
    "size: LeNet-5-half, CE",
    "size: LeNet-5-half, MBD",
    "size: LeNet-5-fifth, CE",
    "size: LeNet-5-fifth, MBD",
    // BD, then MBD (the printed name adds the source and the added images at run time).
    ...[1, 2].flatMap(() => ["no remedy", "distance floor", "flagged dropped"].map((r) => `remedies: ${r}`)),
  ]);
  // Every variant overrides only what it names; sources and remedies as the parts say.
  for (const x of v.filter((x) => x.part === "tau")) {
    assert.deepEqual(Object.keys(x.student!), ["temperature"]);
  }
  for (const x of v.filter((x) => x.part === "size")) {
    assert.equal(x.name.split(", ")[0], modelTitle(x.student!.model!), "size names are the models' titles");
    assert.equal(x.source, x.name.endsWith("MBD") ? "mbd" : null);
  }
  const rem = v.filter((x) => x.part === "remedies");
  assert.deepEqual(rem.map((x) => x.source), ["bd", "bd", "bd", "mbd", "mbd", "mbd"]);
  assert.ok(rem.every((x) => x.stress === true));
  assert.deepEqual(
    rem.map((x) => x.soft),
    [...db3Remedies({ quantile: 0.05 }), ...db3Remedies({ quantile: 0.05 })].map(([, o]) => o),
  );
  // A subset of parts gives only their variants.
  assert.deepEqual(
    new Set(db3AblationVariants(db3AblationSettings("smoke"), ["tau"]).map((x) => x.part)),
    new Set(["tau"]),
  );
});
