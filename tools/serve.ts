/**
 * Serve a kit teacher as a label-only endpoint on loopback (KServe v2 and/or TF Serving REST).
 *
 *   deno run -A tools/serve.ts --teacher <dir | dataset:model:scale[:seed]> [--port 0]
 *       [--protocol both|kserve-v2|tf-serving] [--model teacher] [--auth "Bearer …"] [--workers N]
 *       [--engine auto|native|pool] [--max-batch 8192] [--log requests.jsonl]
 *       [--layout NHWC|NCHW] [--range 0,255] [--mean a,b,c] [--std a,b,c] [--output logits|probs]
 *
 * `--teacher` takes a kit teacher (`mnist:db3-lenet5:laptop`, trained on first use and cached), a kit
 * checkpoint folder, or a TF.js model folder (the adapter flags say how that model expects its input).
 * `--workers N` (N > 0, kit teachers) answers on N cores: the native engine when it builds and the model
 * is a supported chain (`--engine auto`, the default), else a wasm worker pool (`--engine pool` forces it).
 * Prints one line `serving <model> at <url>` (then the routes) and runs until Ctrl-C / SIGTERM.
 */
import { initBackend } from "../lib/backend.ts";
import {
  engineInfo,
  parseEngine,
  type TeacherPredictor,
  teacherPredictor,
} from "../lib/native/teacher_predictor.ts";
import { type ServeProtocols, startServer } from "../lib/remote/serve.ts";
import { inferPath } from "../lib/remote/protocols.ts";
import { type Layout, resolveTeacher } from "../lib/teachers/mod.ts";

const USAGE = `usage: deno run -A tools/serve.ts --teacher <dir | dataset:model:scale[:seed]> [--port 0]
  [--protocol both|kserve-v2|tf-serving] [--model teacher] [--auth VALUE] [--workers N]
  [--engine auto|native|pool] [--max-batch N]
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

const a = parse(Deno.args);
if (!a.teacher) {
  console.error(USAGE);
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
const workers = Number(a.workers ?? 0);
let pool: TeacherPredictor | undefined;
if (workers > 0) {
  if (!t.spec) throw new Error("--workers needs a kit teacher (a TF.js folder runs in-process)");
  const engine = a.engine === undefined ? undefined : parseEngine(a.engine);
  if (a.engine !== undefined && !engine) {
    throw new Error(`--engine ${a.engine}: expected auto, native or pool`);
  }
  pool = await teacherPredictor(t.model, t.spec, { workers, engine });
}
const server = await startServer({
  teacher: pool ?? t.model,
  inputShape: t.inputShape,
  numClasses: t.numClasses,
  model: a.model ?? "teacher",
  protocol: (a.protocol ?? "both") as ServeProtocols,
  port: Number(a.port ?? 0),
  auth: a.auth,
  maxBatch: a["max-batch"] ? Number(a["max-batch"]) : undefined,
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
