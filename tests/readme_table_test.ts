/**
 * The README's "measured so far" table is what `deno task report` computes from the committed run
 * records and executed laptop notebooks (so a hand edit, or a rerun without `deno task report`,
 * fails here), and the splice keeps everything outside the markers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildSite,
  measuredMarkdown,
  normalizeTable,
  README_MARKERS,
  readmeBlock,
  spliceReadme,
  summaryRows,
} from "../lib/report/mod.ts";
import type { RunRecord } from "../lib/results/record.ts";
import { repoRoot, resultsPath } from "../lib/util/paths.ts";

Deno.test("README: the measured table equals the one computed from the committed records", async () => {
  const site = await buildSite({
    notebooksDir: resultsPath("notebooks"),
    runsDir: resultsPath("runs"),
    outDir: await Deno.makeTempDir(),
    scale: "laptop",
  });
  const readme = await Deno.readTextFile(join(repoRoot(), "README.md"));
  assert.equal(
    normalizeTable(readmeBlock(readme) ?? ""),
    normalizeTable(measuredMarkdown(site.entries)),
    "README.md's measured table is stale: run `deno task report` and commit README.md",
  );
  // Every notebook with summary rows appears, and no row is empty.
  const block = readme.slice(readme.indexOf(README_MARKERS.begin), readme.indexOf(README_MARKERS.end));
  for (const e of site.entries.filter((x) => x.rows.length > 0)) {
    assert.match(block, new RegExp(`^\\| ${e.notebook.name.slice(0, 2)} +\\|`, "m"), e.notebook.name);
  }
});

Deno.test("README splice: replaces only the text between the markers; missing markers are an error", () => {
  const doc = `a\n${README_MARKERS.begin}\nold\n${README_MARKERS.end}\nb\n`;
  assert.equal(spliceReadme(doc, "T"), `a\n${README_MARKERS.begin}\n\nT\n\n${README_MARKERS.end}\nb\n`);
  assert.throws(() => spliceReadme("no markers", "T"), /measured table goes/);
  assert.equal(
    normalizeTable("| a  |  b |\n| :--- | ----: |\n| x \\| y | 2 |"),
    "|a|b|\n|:---|---:|\n|x \\| y|2|",
  );
  assert.throws(() => spliceReadme(`${README_MARKERS.end}\n${README_MARKERS.begin}`, "T"), /once each/);
});

Deno.test("summary rows: seeds over one labeling pay its queries once; seeds with their own teacher each pay", () => {
  const rec = (id: string, seed: number, config: Record<string, unknown>) => ({
    record: {
      id,
      experiment: "e",
      method: "m",
      dataset: "d",
      scale: "laptop",
      seed,
      config,
      startedAt: "2026-12-03T00:00:00Z",
      wallTimeSec: 1,
      metrics: { testAcc: 0.5 + seed / 100, queries: 1000 },
      ledger: { totals: { spent: 1000 } },
      notes: [],
    } as unknown as RunRecord,
    json: `${id}.json`,
    csv: "e.csv",
  });
  const spec = { experiment: "e", label: () => "row", metric: "testAcc", section: "s" };
  const shared = summaryRows(spec, [1, 2, 3].map((s) => rec(`a${s}`, s, { labelSeed: 1 })));
  assert.equal(shared[0].queries, 1000);
  const own = summaryRows(spec, [1, 2, 3].map((s) => rec(`b${s}`, s, {})));
  assert.equal(own[0].queries, 3000);
  assert.equal(own[0].measured.n, 3);
});
