/**
 * Run the serve command (`tools/serve.ts`) as a child process: a teacher endpoint in its own process,
 * as a real remote one would be (its inference does not share the caller's thread). The child writes
 * its request log as JSON lines, read back with {@link SpawnedServer.readLog}.
 *
 * @module
 */
import { repoRoot } from "../util/paths.ts";
import type { RequestLogEntry } from "./serve.ts";

/** A serve command running in a child process. */
export interface SpawnedServer {
  /** Base URL (http://127.0.0.1:port). */
  url: string;
  /** The child's request log (JSON lines file). */
  logFile: string;
  /** Entries logged so far. */
  readLog(): Promise<RequestLogEntry[]>;
  /** Stop the child (SIGTERM, or SIGKILL with `hard`) and wait for it to exit. */
  close(hard?: boolean): Promise<void>;
}

/** Options of {@link spawnServer}. */
export interface SpawnOptions {
  /** `--teacher` argument: model folder or dataset:model:scale[:seed]. */
  teacher: string;
  /** Request log file (default: a new temporary file). */
  logFile?: string;
  /** Any further serve flags, e.g. ["--protocol", "kserve-v2", "--workers", "2"]. */
  args?: string[];
}

/** Start `tools/serve.ts` in a child process; resolves once it prints its URL. */
export async function spawnServer(opts: SpawnOptions): Promise<SpawnedServer> {
  const logFile = opts.logFile ?? await Deno.makeTempFile({ prefix: "bkd-serve-", suffix: ".jsonl" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${repoRoot()}/tools/serve.ts`,
      "--teacher",
      opts.teacher,
      "--log",
      logFile,
      ...(opts.args ?? []),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  let text = "";
  const pattern = /serving \S+ at (http:\/\/127\.0\.0\.1:\d+)/;
  while (!pattern.test(text)) {
    const { value, done } = await out.read();
    if (done) {
      await child.status;
      throw new Error(`serve exited before printing its URL:\n${text}\n${(await errText).slice(-2000)}`);
    }
    text += value;
  }
  const drained = (async () => {
    while (!(await out.read()).done) { /* keep the pipe flowing */ }
  })();
  let closed = false;
  return {
    url: text.match(pattern)![1],
    logFile,
    async readLog() {
      const t = await Deno.readTextFile(logFile).catch(() => "");
      return t.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as RequestLogEntry);
    },
    async close(hard = false) {
      if (!closed) {
        closed = true;
        try {
          child.kill(hard ? "SIGKILL" : "SIGTERM");
        } catch { /* already gone */ }
      }
      await child.status;
      await drained;
      await errText;
    },
  };
}
