/**
 * Fault injection for files and the notebook runner: two real processes saving run records at
 * once, executed notebook copies named by their parameters, and notebooks that fail in ways a
 * cell's own completion does not show (an exception thrown in a timer, an unhandled promise
 * rejection, an undeclared parameter) run through the real runner and the real Deno kernel.
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadRuns, loadRunsCsv, saveRun, startRun } from "../lib/results/record.ts";
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

Deno.test("results: a corrupt JSON record stops the CSV rebuild with an error naming the file", async () => {
  await withTemp(async (dir) => {
    const runs = join(dir, "runs");
    await Deno.mkdir(join(runs, "broken"), { recursive: true });
    await Deno.writeTextFile(join(runs, "broken", "half.json"), '{"id": "half", "metr');
    const h = startRun({
      experiment: "broken",
      method: "m",
      dataset: "d",
      scale: "smoke",
      seed: 1,
      config: {},
    });
    await assert.rejects(
      () => saveRun(h.finish({ acc: 1 }), { dir: runs }),
      /run record .*broken\/half\.json is not valid JSON .*restore it from git or delete it/,
    );
  });
});

const NOTEBOOKS_TS = join(REPO, "tools", "notebooks.ts");

/** `deno run -A tools/notebooks.ts run <args>`: exit code, stdout and stderr. */
async function notebooksRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", NOTEBOOKS_TS, "run", ...args],
    env: { NO_COLOR: "1", BKD_PROGRESS: "0" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

interface NbOutput {
  output_type: string;
  ename?: string;
  evalue?: string;
  text?: string | string[];
}
interface ExecutedNotebook {
  cells: { outputs?: NbOutput[] }[];
  metadata: {
    bkd_execution: { status: string; failed_cell: number | null; parameters: Record<string, unknown> };
  };
}

const PARAMS: CellInput = { code: 'let scale = "laptop";\nlet seed = 1;', tags: ["parameters"] };

Deno.test("notebooks: an exception thrown in a timer and an unhandled rejection fail the run, naming notebook and cell", async () => {
  await withTemp(async (dir) => {
    await writeNotebook(join(dir, "01_timer.ipynb"), [
      PARAMS,
      { code: 'setTimeout(() => { throw new Error("timer-boom-7") }, 20);\nconsole.log("scheduled")' },
      { code: 'await new Promise((r) => setTimeout(r, 200));\nconsole.log("never reached")' },
    ]);
    await writeNotebook(join(dir, "02_reject.ipynb"), [
      PARAMS,
      { code: '// fire and forget\nPromise.reject(new Error("reject-boom-8"));\nconsole.log("rejected")' },
    ]);
    const out = join(dir, "out");
    const r = await notebooksRun([join(dir, "01_timer.ipynb"), join(dir, "02_reject.ipynb")].concat(
      ["--scale", "smoke", "--out", out],
    ));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED .* 01_timer\.ipynb/m);
    assert.match(r.stdout, /^FAILED .* 02_reject\.ipynb/m);
    assert.match(r.stdout, /^notebooks: 0 ok, 2 failed \(scale smoke\)$/m);
    // stderr names the notebook, the cell (index counts the injected parameters cell) and the error.
    assert.match(
      r.stderr,
      /01_timer\.ipynb: cell 2 failed[^]*throw new Error\("timer-boom-7"\)[^]*Error: timer-boom-7/,
    );
    assert.match(r.stderr, /02_reject\.ipynb: cell 2 failed[^]*\/\/ fire and forget[^]*Error: reject-boom-8/);

    const timer = JSON.parse(await Deno.readTextFile(join(out, "01_timer.smoke.ipynb"))) as ExecutedNotebook;
    assert.equal(timer.metadata.bkd_execution.status, "failed");
    assert.equal(timer.metadata.bkd_execution.failed_cell, 2);
    const timerErr = timer.cells[2].outputs?.find((o) => o.output_type === "error");
    assert.equal(timerErr?.ename, "UncaughtException");
    assert.match(timerErr?.evalue ?? "", /timer-boom-7/);
    assert.equal(timer.cells[3].outputs?.length ?? 0, 0, "the cell after the failure does not run");

    const reject = JSON.parse(
      await Deno.readTextFile(join(out, "02_reject.smoke.ipynb")),
    ) as ExecutedNotebook;
    const rejectErr = reject.cells[2].outputs?.find((o) => o.output_type === "error");
    assert.equal(rejectErr?.ename, "UnhandledRejection");
    assert.match(rejectErr?.evalue ?? "", /reject-boom-8/);
  });
});

Deno.test("notebooks: a parameter the notebook does not declare is an error listing the declared ones", async () => {
  await withTemp(async (dir) => {
    await writeNotebook(join(dir, "01_p.ipynb"), [PARAMS, { code: 'console.log("ran")' }]);
    const out = join(dir, "out");
    const r = await notebooksRun([join(dir, "01_p.ipynb"), "--scale", "smoke", "--out", out, "-p", "sede=2"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^FAILED .* 01_p\.ipynb/m);
    assert.match(
      r.stderr,
      /parameter\(s\) sede not declared by the notebook \(its parameters cell declares scale, seed\)/,
    );
    assert.deepEqual([...Deno.readDirSync(out)], [], "nothing executed, nothing written");
  });
});

Deno.test("notebooks: executed copies are named by their non-default parameters and do not overwrite each other", async () => {
  await withTemp(async (dir) => {
    await writeNotebook(join(dir, "01_p.ipynb"), [PARAMS, { code: "console.log(`seed=${seed}`)" }]);
    const out = join(dir, "out");
    const nb = join(dir, "01_p.ipynb");
    for (const extra of [[], ["-p", "seed=2"], ["-p", "seed=1"], ["-p", "seed=3"]]) {
      const r = await notebooksRun([nb, "--scale", "smoke", "--out", out, ...extra]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    // seed=1 is the default: same name as no parameter (and still matched by .gitignore's *.smoke.ipynb).
    assert.deepEqual(names, ["01_p.seed-2.smoke.ipynb", "01_p.seed-3.smoke.ipynb", "01_p.smoke.ipynb"]);
    for (
      const [name, seed] of [["01_p.seed-2.smoke.ipynb", 2], ["01_p.seed-3.smoke.ipynb", 3], [
        "01_p.smoke.ipynb",
        1,
      ]]
    ) {
      const e = JSON.parse(await Deno.readTextFile(join(out, name as string))) as ExecutedNotebook;
      const text = e.cells.flatMap((c) => c.outputs ?? []).map((o) => [o.text ?? ""].flat().join("")).join(
        "",
      );
      assert.equal(text, `seed=${seed}\n`, name as string);
    }
  });
});

Deno.test("notebooks: executedName keeps the default name and slugs odd values", async () => {
  const { executedName } = await import("../tools/notebooks.ts");
  const nb = JSON.stringify({
    cells: [{
      metadata: { tags: ["parameters"] },
      source: ['let scale = "laptop";\n', "let seed = 1; // the seed\n", 'let tag = "a b";'],
    }],
  });
  assert.equal(executedName("/x/10_db3.ipynb", nb, "laptop", []), "10_db3.laptop.ipynb");
  assert.equal(executedName("/x/10_db3.ipynb", nb, "laptop", ["seed=1", 'tag="a b"']), "10_db3.laptop.ipynb");
  assert.equal(
    executedName("/x/10_db3.ipynb", nb, "smoke", ["tag=c/d", "seed=7"]),
    "10_db3.seed-7.tag-c_d.smoke.ipynb",
  );
  const long = executedName("/x/10_db3.ipynb", nb, "paper", [`tag=${"x".repeat(100)}`]);
  assert.match(long, /^10_db3\.tag-x{23}~[0-9a-f]{8}\.paper\.ipynb$/);
});
