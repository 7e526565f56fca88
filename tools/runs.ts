/**
 * Run records on the command line.
 *
 *   deno run -A tools/runs.ts supersede <experiment> --reason "<why>" [--by "<what replaced them>"] <id>...
 *
 * moves the records to results/runs/superseded/<experiment>/ (marked, never deleted) and notes why in
 * results/runs/superseded/README.md; see lib/results/supersede.ts.
 *
 * @module
 */
import { supersedeRuns } from "../lib/results/supersede.ts";

const USAGE = `usage: deno run -A tools/runs.ts supersede <experiment> --reason "<why>" [--by "<what>"] ` +
  `[--dir <runs dir>] <id>...`;

async function main(argv: string[]): Promise<number> {
  const [cmd, experiment, ...rest] = argv;
  if (cmd !== "supersede" || !experiment) {
    console.error(USAGE);
    return 2;
  }
  let reason = "", by: string | undefined, dir: string | undefined;
  const ids: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const value = () => {
      const v = rest[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--reason") reason = value();
    else if (a === "--by") by = value();
    else if (a === "--dir") dir = value();
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}\n${USAGE}`);
    else ids.push(a.replace(/\.json$/, ""));
  }
  const r = await supersedeRuns(experiment, ids, { reason, by, dir });
  console.log(`moved ${r.moved.length} record(s) to ${r.folder}\n${r.readmeLine}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`runs.ts: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
