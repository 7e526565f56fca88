/**
 * Fault injection for files and the notebook runner: two real processes saving run records at
 * once, executed notebook copies named by their parameters, and notebooks that fail in ways a
 * cell's own completion does not show (an exception thrown in a timer, an unhandled promise
 * rejection, an undeclared parameter) run through the real runner and the real Deno kernel.
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadRuns, loadRunsCsv } from "../lib/results/record.ts";
import { type CellInput, writeNotebook } from "../tools/nb.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

async function withTemp<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-fault-io-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("results: two processes saving 40 records each at once: the CSV has all 80 rows", async () => {
  await withTemp(async (dir) => {
    const script = join(dir, "saver.ts");
    const recordTs = new URL("../lib/results/record.ts", import.meta.url).href;
    // Each child waits for a start file so both save at the same moment, then saves 40 records.
    await Deno.writeTextFile(
      script,
      `import { saveRun, startRun } from ${JSON.stringify(recordTs)};
const [dir, tag] = Deno.args;
while (true) {
  try { await Deno.stat(dir + "/go"); break; } catch { await new Promise((r) => setTimeout(r, 5)); }
}
for (let i = 0; i < 40; i++) {
  const h = startRun({ experiment: "race", method: "m-" + tag, dataset: "d", scale: "smoke", seed: i,
    config: { tag, i } });
  await saveRun(h.finish({ acc: i }), { dir: dir + "/runs" });
}
`,
    );
    const children = ["a", "b"].map((tag) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", join(REPO, "deno.json"), script, dir, tag],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
    await Deno.writeTextFile(join(dir, "go"), "");
    for (const c of children) {
      const out = await c.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    const records = await loadRuns("race", { dir: join(dir, "runs") });
    assert.equal(records.length, 80, "JSON records");
    const csv = await loadRunsCsv("race", { dir: join(dir, "runs") });
    assert.equal(csv.rows.length, 80, "CSV rows (one per JSON record)");
    assert.deepEqual(
      new Set(csv.rows.map((r) => r.id)),
      new Set(records.map((r) => r.id)),
      "the CSV holds exactly the JSON records",
    );
    const names = [...Deno.readDirSync(join(dir, "runs"))].map((e) => e.name);
    assert.ok(names.every((n) => !n.includes(".tmp-") && !n.endsWith(".lock")), names.join(","));
  });
});
