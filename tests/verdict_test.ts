import assert from "node:assert/strict";
import { formatSeeds, summarizeSeeds } from "../lib/results/seeds.ts";
import {
  ablationVerdicts,
  compareGap,
  compareMethods,
  curveVerdict,
  pairedCurves,
} from "../lib/results/verdict.ts";
import { formatMeasured } from "../lib/results/table.ts";

Deno.test("seeds: one seed prints no spread, several print mean ± named spread and the count", () => {
  assert.equal(formatSeeds([93.45]), "93.45 (1 seed)");
  assert.equal(formatSeeds({ mean: 93.45, std: 0, n: 1 }), "93.45 (1 seed)");
  assert.equal(formatSeeds({ mean: 93.45, std: 0 }), "93.45 (1 seed)");
  assert.equal(formatSeeds([97, 98, 99]), "98.00 ± 1.00 std (3 seeds)");
  assert.equal(formatSeeds([97, 98, 99], { spread: "range", digits: 1 }), "98.0 (97.0–99.0 over 3 seeds)");
  assert.equal(formatSeeds([97, 99], { bare: true, unit: " %" }), "98.00 % ± 1.41 % std");
  assert.equal(formatSeeds([]), "");
  assert.equal(formatSeeds([NaN, 50]), "50.00 (1 seed)");
  const s = summarizeSeeds([1, 2, 3, 4]);
  assert.equal(s.n, 4);
  assert.equal(s.mean, 2.5);
  assert.ok(Math.abs(s.std! - Math.sqrt(5 / 3)) < 1e-12);
  assert.equal(summarizeSeeds([7]).std, undefined);
  // The table helper goes through the same formatting.
  assert.equal(formatMeasured({ mean: 93.45, std: 0, n: 1 }), "93.45 (1 seed)");
  assert.equal(formatMeasured({ mean: 93.45, std: 0.5, n: 3 }), "93.45 ± 0.50 std (3 seeds)");
  assert.ok(!formatMeasured({ mean: 93.45, std: 0, n: 1 }).includes("±"));
});

Deno.test("verdict: gaps are judged against seed noise, a given noise, or the minimum only", () => {
  const bySeeds = compareGap({ name: "a", values: [80, 81, 82] }, { name: "b", values: [70, 71, 72] });
  assert.equal(bySeeds.noise, "seeds");
  assert.ok(bySeeds.measurable);
  assert.equal(bySeeds.gap, 10);
  const noisy = compareGap({ name: "a", values: [60, 80, 100] }, { name: "b", values: [65, 75, 85] });
  assert.equal(noisy.noise, "seeds");
  assert.ok(!noisy.measurable, "5 points inside a 20-point std is no effect");
  const given = compareGap({ name: "a", values: [23.1] }, { name: "b", values: [11.7] }, { se: 1.3 });
  assert.equal(given.noise, "given");
  assert.ok(given.measurable);
  const none = compareGap({ name: "a", values: [50.5] }, { name: "b", values: [50] });
  assert.equal(none.noise, "minimum only");
  assert.ok(!none.measurable);
  assert.match(none.noiseWords, /one seed/);
});

Deno.test("verdict: methods that differ are not called the same; equal ones are", () => {
  const differ = compareMethods([
    { name: "BD", values: [11.7] },
    { name: "SD", values: [23.1] },
    { name: "MBD", values: [15.0] },
  ], { se: 1.3 });
  assert.equal(differ.ranking[0].name, "SD");
  assert.equal(differ.allSame, false);
  assert.match(differ.sentence, /^SD trains the best student, 8\.10 points above the next \(MBD\)/);
  assert.match(differ.sentence, /best − worst \(BD\) = 11\.40 points/);
  assert.doesNotMatch(differ.sentence, /same student within/);
  const same = compareMethods([
    { name: "SD", values: [90.1, 90.5, 89.9] },
    { name: "BD", values: [90.3, 89.8, 90.2] },
  ]);
  assert.equal(same.allSame, true);
  assert.match(same.sentence, /^All 2 methods train the same student within the noise/);
  assert.match(same.sentence, /no measurable difference/);
  assert.throws(() => compareMethods([{ name: "SD", values: [1] }]), /at least two methods/);
});

Deno.test("verdict: ablations say no effect, better/worse than full, and contradicts the paper", () => {
  const full = { name: "full", values: [80, 81, 79] };
  const v = ablationVerdicts(full, [
    { name: "no contrastive term", values: [79.8, 80.1, 79.7], paper: "worse" },
    { name: "no TV prior", values: [85.5, 86, 85.7], paper: "worse" },
    { name: "LAKE", values: [82.9, 83, 82.8] },
    { name: "no noise", values: [70, 71, 69], paper: "worse" },
  ]);
  assert.deepEqual(v.map((x) => x.verdict), [
    "no measurable effect",
    "better than full",
    "better than full",
    "worse than full",
  ]);
  assert.deepEqual(v.map((x) => x.paper), ["not reproduced", "contradicts the paper", "unknown", "agrees"]);
  assert.match(v[1].sentence, /^no TV prior: better than full \(\+5\.73 points vs full/);
  assert.match(v[1].sentence, /contradicts the paper/);
  assert.match(v[0].sentence, /does not reproduce that/);
});

Deno.test("verdict: curves are flat, rising or falling, and steps against the trend are named", () => {
  const dip = curveVerdict(
    [{ x: 0, y: 30 }, { x: 1, y: 35 }, { x: 2, y: 31 }, { x: 3, y: 40 }, { x: 10, y: 51.5 }],
    { what: "accuracy", xName: "iteration" },
  );
  assert.equal(dip.trend, "rising");
  assert.deepEqual(dip.reversals, [{ from: 1, to: 2, change: -4 }]);
  assert.match(
    dip.sentence,
    /^Accuracy rises from iteration 0 to 10 \(\+21\.50 points\), not monotone: iteration 1 → 2: −4\.00/,
  );
  const flat = curveVerdict([{ x: 1000, y: 20.1 }, { x: 5000, y: 20.4 }, { x: 20000, y: 20.3 }], {
    what: "accuracy",
  });
  assert.equal(flat.trend, "flat");
  assert.deepEqual(flat.reversals, []);
  // Notebook 33's dip at iteration 2 on 1,000 test images is within the noise, and still named.
  const small = curveVerdict(
    [{ x: 0, y: 30 }, { x: 2, y: 27.6 }, { x: 4, y: 35.4 }, { x: 10, y: 51.5 }],
    { what: "accuracy", xName: "iteration", minEffect: 4.4 },
  );
  assert.deepEqual(small.reversals, []);
  assert.equal(small.minorReversals.length, 1);
  assert.match(
    small.sentence,
    /monotone within ±4\.4 points per step; step\(s\) against the trend within ±4\.4 points: iteration 0 → 2: −2\.40 points\.$/,
  );
  assert.match(curveVerdict([{ x: 0, y: 3 }, { x: 1, y: 2.999 }], { relative: true }).sentence, /\(±0 %/);
  const shrink = curveVerdict([{ x: 1000, y: 4 }, { x: 5000, y: 3.4 }, { x: 20000, y: 3 }], {
    what: "median distance",
    relative: true,
  });
  assert.equal(shrink.trend, "falling");
  assert.equal(shrink.change, -25);
  const both = pairedCurves(
    { points: [{ x: 1000, y: 20.1 }, { x: 20000, y: 20.3 }], opts: { what: "student accuracy" } },
    { points: [{ x: 1000, y: 4 }, { x: 20000, y: 3 }], opts: { what: "median distance", relative: true } },
  );
  assert.match(both.sentence, /median distance changes while student accuracy does not/);
  assert.throws(() => curveVerdict([{ x: 0, y: 1 }]), /at least two/);
});

Deno.test("verdict: DB3 'why not' text compares the soft-label students from their numbers", async () => {
  const { db3ClaimsText } = await import("../lib/views/db3_claims.ts");
  // Notebook 12's laptop run: SD 22.6, BD 15.3, MBD 20.3 (claims imply ≈ 1,000 test images), SD targets uniform.
  const claims = [
    { claim: "DB3-BD > CE", holds: false, gap: -5.21, gapInSE: -3.1, holdsAtBestEpoch: null },
    { claim: "DB3-BD ≥ DB3-SD", holds: false, gap: -7.28, gapInSE: -4.2, holdsAtBestEpoch: null },
  ];
  const diag = [
    {
      method: "DB3-SD",
      "mean entropy / log K": 1.0,
      "flagged share of KD pull": 0,
      "final acc (%)": 22.6155,
    },
    {
      method: "DB3-BD",
      "mean entropy / log K": 0.83,
      "flagged share of KD pull": 0.99,
      "final acc (%)": 15.3392,
    },
    {
      method: "DB3-MBD",
      "mean entropy / log K": 0.83,
      "flagged share of KD pull": 0.99,
      "final acc (%)": 20.2557,
    },
  ];
  for (const text of [db3ClaimsText(claims, diag), db3ClaimsText(claims, diag, { testN: 1000 })]) {
    assert.doesNotMatch(text, /almost the same student/);
    assert.match(text, /DB3-SD and DB3-MBD train the best students \(2\.36 points apart, within the noise\)/);
    assert.match(text, /best − worst \(DB3-BD\) = 7\.28 points/);
    assert.match(text, /yet the soft-label students differ measurably/);
  }
  // Students within the noise are called the same.
  const close = diag.map((d, i) => ({ ...d, "final acc (%)": 20 + 0.3 * i }));
  const text = db3ClaimsText(claims, close, { testN: 10000 });
  assert.match(text, /no measurable difference/);
  assert.match(text, /consistent with the soft-label students not differing measurably/);
});

Deno.test("verdict: CAKE ablation text names better/worse/no-effect variants and the paper's direction", async () => {
  const { ablationVerdictRows, ablationVerdictText } = await import("../lib/views/cake.ts");
  // Notebook 23's MNIST pattern: TV off and LAKE above full, contrastive off no different.
  const summary = [
    { variant: "full", label: "CAKE (full)", values: [0.80, 0.81, 0.79] },
    { variant: "no-contr", label: "no contrastive", values: [0.799, 0.80, 0.80] },
    { variant: "no-tv", label: "no TV prior", values: [0.855, 0.86, 0.857] },
    { variant: "lake", label: "LAKE", values: [0.829, 0.83, 0.828] },
    { variant: "no-contr-no-decay", label: "naive CE", values: [0.70, 0.71, 0.69] },
  ].map((x) => ({ ...x, mean: x.values.reduce((a, b) => a + b) / 3, std: 0.01 }));
  const rowsOf = (sm: typeof summary) =>
    sm.flatMap((x) => x.values.map((accuracy, i) => ({ variant: x.variant, seed: i + 1, accuracy })));
  const r = { dataset: "mnist", summary, rows: rowsOf(summary) } as unknown as Parameters<
    typeof ablationVerdictText
  >[0];
  const text = ablationVerdictText(r);
  assert.match(
    text,
    /^MNIST, 3 seed\(s\): 2 variant\(s\) better than the full method, 1 worse, 1 with no measurable/,
  );
  assert.match(text, /- no TV prior: better than full \(\+5\.73 points/);
  assert.match(text, /- no contrastive: no measurable effect .*does not reproduce that/);
  assert.match(text, /- naive CE: worse than full .*agrees with the paper/);
  assert.doesNotMatch(text, /LAKE.*paper/);
  const rows = ablationVerdictRows(r);
  assert.deepEqual(rows.map((x) => x["paper's direction"]), [
    "not reproduced",
    "unknown",
    "unknown",
    "agrees",
  ]);
});

Deno.test("verdict: ablation gaps are paired by seed (notebook 23's laptop MNIST numbers)", async () => {
  const { ablationVerdictText } = await import("../lib/views/cake.ts");
  // Seed-to-seed swings (std ≈ 4-5 points) are shared by all variants of a seed; the per-seed gaps are steady.
  const per = {
    full: [85.8, 77.8, 78.4],
    "no-tv": [92.5, 83.3, 82.6],
    lake: [89.6, 81.3, 79.8],
    "no-contr": [88.6, 75.3, 78.1],
  };
  const summary = Object.entries(per).map(([variant, v]) => ({
    variant,
    label: variant,
    values: v.map((x) => x / 100),
  }));
  const rows = summary.flatMap((x) =>
    x.values.map((accuracy, i) => ({ variant: x.variant, seed: i + 1, accuracy }))
  );
  const text = ablationVerdictText(
    { dataset: "mnist", summary, rows } as unknown as Parameters<
      typeof ablationVerdictText
    >[0],
  );
  assert.match(text, /- no-tv: better than full \(\+5\.47 points vs full/);
  assert.match(text, /- lake: better than full \(\+2\.90 points vs full/);
  assert.match(text, /- no-contr: no measurable effect \(±0\.00 points vs full/);
  assert.match(text, /per-seed gap over 3 shared seeds/);
  // Unpaired, the same numbers would hide the TV effect in the seed spread.
  const unpaired = compareGap({ name: "no-tv", values: per["no-tv"] }, { name: "full", values: per.full });
  assert.equal(unpaired.measurable, false);
  const paired = compareGap(
    { name: "no-tv", values: per["no-tv"], seeds: [1, 2, 3] },
    { name: "full", values: per.full, seeds: [1, 2, 3] },
  );
  assert.equal(paired.noise, "paired seeds");
  assert.equal(paired.measurable, true);
});

Deno.test("verdict: ZSDB3KD iteration curve names its dip; DB3 budget curve flat while distances shrink", async () => {
  const { iterationVerdict } = await import("../lib/views/zeroshot.ts");
  const { budgetVerdict } = await import("../lib/views/db3_ablations.ts");
  const students = [[0, 30, "noise"], [1, 35, "zsdb3kd"], [2, 31, "zsdb3kd"], [10, 51.5, "zsdb3kd"]].map((
    [iteration, acc, variant],
  ) => ({ iteration, testAcc: (acc as number) / 100, variant }));
  const run = { students } as unknown as Parameters<typeof iterationVerdict>[0][0];
  const text = iterationVerdict([run], 10000);
  assert.match(
    text,
    /^Student accuracy \(one seed\) rises from iteration 0 to 10 \(\+21\.50 points\), not monotone: iteration 1 → 2: −4\.00 points/,
  );
  assert.match(text, /rises overall but not at every step/);
  const flat = { students: students.map((s) => ({ ...s, testAcc: 0.3 })) } as typeof run;
  assert.match(iterationVerdict([flat]), /flat.*does not reproduce that/);

  const budget = [1000, 5000, 20000].map((b, i) => ({ part: "budget", budget: b, testAcc: 0.9 + 0.001 * i }));
  const r = { rows: budget, testN: 10000 } as unknown as Parameters<typeof budgetVerdict>[0];
  const curve = [{ queries: 1000, median: 4 }, { queries: 5000, median: 3.4 }, { queries: 20000, median: 3 }];
  const b = budgetVerdict(r, curve);
  assert.match(b, /^Student accuracy is flat from budget 1000 to 20000/);
  assert.match(b, /The median boundary distance falls from budget 1000 to 20000 \(−25 %\)/);
  assert.match(b, /changes while student accuracy does not/);
});

Deno.test("verdict: DB3 claims over ≥ 2 shared seeds use the per-seed gap's noise and say so", async () => {
  const { db3Claims, db3ClaimsText, db3SeedSamples } = await import("../lib/views/db3_claims.ts");
  const row = (method: string, accs: number[]) => ({
    method,
    testAcc: accs.reduce((a, b) => a + b, 0) / accs.length,
    seeds: [1, 2, 3],
    testAccBySeed: accs,
    bestTestAcc: null,
  });
  const r = {
    testN: 10000,
    rows: [
      row("ce", [0.9038, 0.9139, 0.9072]),
      row("sd", [0.9399, 0.9519, 0.9401]),
      row("bd", [0.9395, 0.9526, 0.9359]),
      row("mbd", [0.9367, 0.9504, 0.9372]),
    ],
  } as unknown as Parameters<typeof db3Claims>[0];
  const claims = db3Claims(r);
  const bdCe = claims.find((c) => c.claim.startsWith("DB3-BD >"))!;
  assert.equal(bdCe.noise, "the per-seed gap over 3 seeds");
  // Paired gaps 3.57, 3.87, 2.87 points: mean 3.44, sd 0.513, se 0.296 → 11.6 standard errors.
  assert.ok(Math.abs(bdCe.gap - 3.4367) < 1e-3, String(bdCe.gap));
  assert.ok(Math.abs(bdCe.gapInSE - 11.6) < 0.1, String(bdCe.gapInSE));
  const text = db3ClaimsText(claims, [], { testN: 10000, samples: db3SeedSamples(r) });
  assert.match(text, /standard errors of the per-seed gap over 3 seeds/);
  assert.match(text, /not distinguishable from seed-to-seed noise/);
  assert.doesNotMatch(text, /with one seed|\(1 seed\)/);
});
