/**
 * Serve a kit teacher as a label-only endpoint on loopback (KServe v2 and/or TF Serving REST).
 *
 *   deno run -A tools/serve.ts --teacher <dir | dataset:model:scale[:seed]> [--port 0]
 *       [--protocol both|kserve-v2|tf-serving] [--model teacher] [--token-file FILE] [--workers N]
 *       [--engine auto|native|pool] [--max-batch 8192] [--max-body-mb 64] [--log requests.jsonl]
 *       [--layout NHWC|NCHW] [--range 0,255] [--mean a,b,c] [--std a,b,c] [--output logits|probs]
 *
 * `--teacher` takes a kit teacher (`mnist:db3-lenet5:laptop`, trained on first use and cached), a kit
 * checkpoint folder, or a TF.js model folder (the adapter flags say how that model expects its input).
 * `--workers N` (N > 0, kit teachers) answers on N cores: the native engine when it builds and the model
 * is a supported chain (`--engine auto`, the default), else a wasm worker pool (`--engine pool` forces it).
 *
 * Auth: with a token, every request needs `Authorization: Bearer <token>`. Give the token in the
 * `BKD_TOKEN` environment variable or in a file (`--token-file`, first line) — not on the command
 * line, where `ps` shows it to every user; `--auth VALUE` (the whole header value) still works.
 * `--max-body-mb` caps one request body (default 64); bigger bodies get 413 without being buffered.
 * Bad flag values (`--max-batch abc`, an unknown `--protocol`) stop the server before it starts,
 * with exit code 2 and a message naming the flag.
 *
 * Prints one line `serving <model> at <url>` (then the routes) and runs until Ctrl-C / SIGTERM.
 */
import { initBackend } from "../lib/backend.ts";
import {
  engineInfo,
  parseEngine,
  type TeacherPredictor,
  teacherPredictor,
} from "../lib/native/teacher_predictor.ts";
import { isServeProtocol, SERVE_PROTOCOLS, startServer } from "../lib/remote/serve.ts";
import { inferPath } from "../lib/remote/protocols.ts";
import { modelFingerprint } from "../lib/models/fingerprint.ts";
import { type Layout, resolveTeacher } from "../lib/teachers/mod.ts";

const USAGE = `usage: deno run -A tools/serve.ts --teacher <dir | dataset:model:scale[:seed]> [--port 0]
  [--protocol both|kserve-v2|tf-serving] [--model teacher] [--token-file FILE | --auth VALUE]
  [--workers N] [--engine auto|native|pool] [--max-batch N] [--max-body-mb MB]
  [--log FILE] [--layout NHWC|NCHW] [--range lo,hi] [--mean a,..] [--std a,..] [--output logits|probs]`;

function parse(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      out[a.slice(2)] = v;
    }
  }
  return out;
}

const nums = (s: string | undefined) => (s === undefined ? undefined : s.split(",").map(Number));

/** A startup error: the message says which flag and what to give instead. */
class FlagError extends Error {}

/** `--flag` as an integer in [min, max], or `undefined` when absent. */
function intFlag(flags: Record<string, string>, name: string, min: number, max: number): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const v = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new FlagError(`--${name} ${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
  }
  return v;
}

/** The required `Authorization` value from BKD_TOKEN, --token-file or --auth (at most one of them). */
async function authFrom(flags: Record<string, string>): Promise<string | undefined> {
  const env = Deno.env.get("BKD_TOKEN");
  const given = [
    env ? "BKD_TOKEN" : "",
    flags["token-file"] ? "--token-file" : "",
    flags.auth ? "--auth" : "",
  ]
    .filter(Boolean);
  if (given.length > 1) throw new FlagError(`${given.join(" and ")} both set the token; keep one`);
  if (flags.auth) return flags.auth;
  let token = env;
  if (flags["token-file"]) {
    try {
      token = (await Deno.readTextFile(flags["token-file"])).split(/\r?\n/)[0].trim();
    } catch (e) {
      throw new FlagError(`--token-file ${flags["token-file"]}: cannot read it (${(e as Error).message})`);
    }
    if (!token) throw new FlagError(`--token-file ${flags["token-file"]}: the first line is empty`);
  }
  return token ? `Bearer ${token.trim()}` : undefined;
}

let a: Record<string, string>;
let settings;
try {
  a = parse(Deno.args);
  if (!a.teacher) throw new FlagError(`--teacher is required\n${USAGE}`);
  const protocol = a.protocol ?? "both";
  if (!isServeProtocol(protocol)) {
    throw new FlagError(`--protocol ${protocol}: expected one of ${SERVE_PROTOCOLS.join(", ")}`);
  }
  const engine = a.engine === undefined ? undefined : parseEngine(a.engine);
  if (a.engine !== undefined && !engine) {
    throw new FlagError(`--engine ${a.engine}: expected auto, native or pool`);
  }
  const maxBodyMb = intFlag(a, "max-body-mb", 1, 1 << 20);
  settings = {
    protocol,
    engine,
    port: intFlag(a, "port", 0, 65535) ?? 0,
    workers: intFlag(a, "workers", 0, 1024) ?? 0,
    maxBatch: intFlag(a, "max-batch", 1, Number.MAX_SAFE_INTEGER),
    maxBodyBytes: maxBodyMb === undefined ? undefined : maxBodyMb * 1024 * 1024,
    auth: await authFrom(a),
  };
} catch (e) {
  console.error(`serve: ${(e as Error).message}`);
  Deno.exit(2);
}
await initBackend();
const range = nums(a.range);
const t = await resolveTeacher(a.teacher, {
  input: {
    layout: a.layout as Layout | undefined,
    range: range ? [range[0], range[1]] : undefined,
    mean: nums(a.mean),
    std: nums(a.std),
  },
  output: a.output as "logits" | "probs" | undefined,
});
const workers = settings.workers;
let pool: TeacherPredictor | undefined;
if (workers > 0) {
  if (!t.spec) throw new Error("--workers needs a kit teacher (a TF.js folder runs in-process)");
  pool = await teacherPredictor(t.model, t.spec, { workers, engine: settings.engine });
}
const server = await startServer({
  teacher: pool ?? t.model,
  inputShape: t.inputShape,
  numClasses: t.numClasses,
  fingerprint: modelFingerprint(t.model),
  model: a.model ?? "teacher",
  protocol: settings.protocol,
  port: settings.port,
  auth: settings.auth,
  maxBatch: settings.maxBatch,
  maxBodyBytes: settings.maxBodyBytes,
  logFile: a.log,
});
console.log(`serving ${server.model} at ${server.url}`);
for (const p of server.protocols) {
  console.log(`  ${p}: POST ${server.url}${inferPath({ model: server.model, protocol: p })}`);
}
console.log(
  `  teacher: ${t.source}; input [${t.inputShape}] NHWC in [0,1]; ${t.numClasses} classes; labels only`,
);
console.log(`  engine: ${pool ? engineInfo(pool).label : "in-process tfjs model"}`);
const stop = async () => {
  await server.close();
  pool?.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
