/**
 * Serve a kit teacher as a label-only prediction endpoint on loopback, in KServe v2 and/or TF
 * Serving REST — for demos, tests and benchmarks of the remote oracle.
 *
 * Routes (`{name}` is the model name):
 * - `POST /v2/models/{name}[/versions/{v}]/infer` → `{"outputs": [{"name": "label", "datatype": "INT64",
 *   "shape": [n], "data": [...]}]}`
 * - `POST /v1/models/{name}[/versions/{v}]:predict` → `{"predictions": [label, ...]}`
 * - `GET /v2/health/ready`, `GET /v2/models/{name}` (metadata), `GET /v1/models/{name}` (status)
 *
 * Answers carry labels only. Malformed requests (bad JSON, bad %-encoding in the path, non-integer
 * or ragged shapes) get 400 with a reason, a wrong model name 404, a missing or wrong auth header 401
 * (compared in constant time), too many images or a body past `maxBodyBytes` 413 — the body is read
 * as a stream with a running count and reading stops at the limit, so an oversized request never
 * sits in memory. Every inference request is recorded in
 * `requestLog` (and, with `logFile`, appended to a JSON-lines file) with its outcome, so a client's
 * accounting can be checked against what the server actually answered. `faults` injects failures for
 * tests: an HTTP status, a delay, a malformed or wrongly shaped answer, or a connection cut mid-answer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LabelPredictor } from "../oracle/oracle.ts";
import { findNonFinitePixel, nonFiniteMessage } from "../oracle/admission.ts";
import { modelFingerprint } from "../models/fingerprint.ts";
import { createHash, timingSafeEqual } from "node:crypto";
import { decodeRequest, encodeLabels, type Protocol, ProtocolError, PROTOCOLS } from "./protocols.ts";

/** Which protocols to answer. */
export type ServeProtocols = Protocol | "both";

/** A failure to inject into one request. */
export type Fault =
  | { status: number; body?: string }
  | { delayMs: number }
  | { malformed: true }
  | { wrongShape: true }
  | { cut: true };

/** What a fault hook sees. */
export interface FaultContext {
  /** 0-based index of the inference request (all protocols). */
  index: number;
  protocol: Protocol;
  images: number;
}

/** Options of {@link startServer}. */
export interface ServeOptions {
  /** The teacher: an in-process model (argmax of its output) or any label predictor. */
  teacher: tfl.LayersModel | LabelPredictor;
  /** Image shape (NHWC, no batch axis); default: the model's or the predictor's spec. */
  inputShape?: number[];
  /** Number of classes; default: the model's or the predictor's spec. */
  numClasses?: number;
  /** Model name in the paths (default "teacher"). */
  model?: string;
  /** Protocols (default "both"). */
  protocol?: ServeProtocols;
  /** Port (default 0: any free port). */
  port?: number;
  /** Loopback address (default 127.0.0.1; only loopback addresses are accepted). */
  hostname?: string;
  /** Required `Authorization` header value (default: none). */
  auth?: string;
  /**
   * Fingerprint of the teacher's weights, published in the model metadata (KServe v2) and status
   * (TF Serving) so that clients' caches keep two teachers served under one name apart. Default: the
   * in-process model's {@link modelFingerprint}; none for a bare predictor (pass it).
   */
  fingerprint?: string;
  /** Most images per request (default 8192); a positive integer. */
  maxBatch?: number;
  /** Most bytes in one request body (default {@link DEFAULT_MAX_BODY_BYTES}); a positive integer. */
  maxBodyBytes?: number;
  /** Append every log entry to this JSON-lines file. */
  logFile?: string;
  /** Fault injection (tests). */
  faults?: (ctx: FaultContext) => Fault | undefined;
}

/** One inference request as the server saw it. */
export interface RequestLogEntry {
  index: number;
  protocol: Protocol;
  /** Images in the request (0 if it could not be parsed). */
  images: number;
  status: number;
  /**
   * answered = labels delivered; rejected = 4xx; fault = injected failure; aborted = the client went
   * away before the answer was delivered; error = the teacher threw (500).
   */
  outcome: "answered" | "rejected" | "fault" | "aborted" | "error";
  /** Milliseconds from the server's start. */
  at: number;
  ms: number;
}

/** A running server. */
export interface ServerHandle {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  port: number;
  model: string;
  protocols: Protocol[];
  /** Every inference request, in arrival order. */
  requestLog: RequestLogEntry[];
  /** Images answered (outcome "answered"). */
  answeredImages(): number;
  /** Resolves when every request received so far is in `requestLog` (entries are logged on delivery). */
  settled(): Promise<void>;
  /** Stop accepting, finish in-flight requests, release the port. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

/**
 * Default request body limit: 64 MiB — 256 CIFAR-10 images as JSON text (the client's default
 * batch) need about 16 MB, 8192 MNIST images in the binary extension about 26 MB.
 */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Accepted values of {@link ServeOptions.protocol}. */
export const SERVE_PROTOCOLS: readonly ServeProtocols[] = ["both", ...PROTOCOLS];

/** Whether `s` names a protocol choice of the server. */
export function isServeProtocol(s: string): s is ServeProtocols {
  return (SERVE_PROTOCOLS as readonly string[]).includes(s);
}

/** SHA-256 of a header value: equal-length digests for a constant-time comparison. */
function digest(s: string): Uint8Array {
  return createHash("sha256").update(s, "utf8").digest();
}

/**
 * A check of the `Authorization` header that takes the same time whatever the header holds: both
 * sides are hashed to 32 bytes and compared with `timingSafeEqual` (no early exit).
 */
function authCheck(expected: string): (got: string | null) => boolean {
  const want = digest(expected);
  return (got) => timingSafeEqual(digest(got ?? ""), want) && got !== null;
}

/** Read a request body with a running count; `undefined` once it passes `limit` (reading stops there). */
async function readBody(req: Request, limit: number): Promise<Uint8Array | undefined> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      chunks.length = 0;
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    body.set(c, off);
    off += c.length;
  }
  return body;
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new Error(`startServer: ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

function isModel(t: unknown): t is tfl.LayersModel {
  return typeof t === "object" && t !== null && "apply" in t && "inputs" in t && "outputs" in t;
}

function json(status: number, body: unknown): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function labelsOf(teacher: tfl.LayersModel | LabelPredictor, shape: number[]) {
  if (!isModel(teacher)) return (x: Float32Array, n: number) => teacher.predictLabels(x, n);
  return async (x: Float32Array, n: number) => {
    const t = tf.tidy(() =>
      tf.argMax(teacher.apply(tf.tensor(x, [n, ...shape]), { training: false }) as tf.Tensor, -1)
    );
    try {
      return Int32Array.from(await t.data());
    } finally {
      t.dispose();
    }
  };
}

function abortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/** Parse an inference path: protocol and model name, or null. */
function route(path: string): { protocol: Protocol; model: string } | null {
  let m = path.match(/^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?\/infer$/);
  if (m) return { protocol: "kserve-v2", model: m[1] };
  m = path.match(/^\/v1\/models\/([^/:]+)(?:\/versions\/[^/:]+)?:predict$/);
  if (m) return { protocol: "tf-serving", model: m[1] };
  return null;
}

/** Start a label-only server for `opts.teacher` (see the module doc). */
export async function startServer(opts: ServeOptions): Promise<ServerHandle> {
  const hostname = opts.hostname ?? "127.0.0.1";
  if (!LOOPBACK.has(hostname)) throw new Error(`startServer: ${hostname} is not a loopback address`);
  const t = opts.teacher;
  const inputShape = opts.inputShape ??
    (isModel(t) ? (t.inputs[0].shape.slice(1) as number[]) : t.spec?.inputShape);
  const numClasses = opts.numClasses ??
    (isModel(t) ? (t.outputs[0].shape[t.outputs[0].shape.length - 1] as number) : t.spec?.numClasses);
  if (!inputShape || !numClasses) throw new Error("startServer: needs inputShape and numClasses");
  const model = opts.model ?? "teacher";
  if (opts.protocol !== undefined && !isServeProtocol(opts.protocol)) {
    throw new Error(
      `startServer: unknown protocol ${opts.protocol}; use one of ${SERVE_PROTOCOLS.join(", ")}`,
    );
  }
  const protocols: Protocol[] = !opts.protocol || opts.protocol === "both"
    ? ["kserve-v2", "tf-serving"]
    : [opts.protocol];
  const maxBatch = positiveInt("maxBatch", opts.maxBatch, 8192);
  const maxBodyBytes = positiveInt("maxBodyBytes", opts.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);
  const authorized = opts.auth ? authCheck(opts.auth) : () => true;
  const predict = labelsOf(t, inputShape);
  const log: RequestLogEntry[] = [];
  const t0 = performance.now();
  let index = 0;
  let logWrites = Promise.resolve();
  const record = (e: RequestLogEntry) => {
    log.push(e);
    if (opts.logFile) {
      const line = JSON.stringify(e) + "\n";
      const file = opts.logFile;
      logWrites = logWrites.then(() => Deno.writeTextFile(file, line, { append: true }));
    }
  };
  const fingerprint = opts.fingerprint ?? (isModel(t) ? modelFingerprint(t) : undefined);
  const metadata = {
    name: model,
    platform: "boundary-kd",
    ...(fingerprint ? { fingerprint } : {}),
    inputs: [{ name: "input", datatype: "FP32", shape: [-1, ...inputShape] }],
    outputs: [{ name: "label", datatype: "INT64", shape: [-1] }],
  };

  const pending = new Set<Promise<void>>();
  const handler = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (!authorized(req.headers.get("authorization"))) {
      await req.body?.cancel();
      return json(401, { error: "missing or wrong Authorization header" });
    }
    if (req.method === "GET") {
      if (path === "/v2/health/ready" || path === "/v2/health/live") return json(200, { ready: true });
      if (path === `/v2/models/${model}` && protocols.includes("kserve-v2")) return json(200, metadata);
      if (path === `/v1/models/${model}` && protocols.includes("tf-serving")) {
        return json(200, {
          model_version_status: [{ version: "1", state: "AVAILABLE", status: { error_code: "OK" } }],
          ...(fingerprint ? { fingerprint } : {}),
        });
      }
      return json(404, { error: `no route GET ${path}` });
    }
    const r = route(path);
    if (req.method !== "POST" || !r || !protocols.includes(r.protocol)) {
      await req.body?.cancel();
      return json(404, { error: `no route ${req.method} ${path} (serving ${protocols.join(", ")})` });
    }
    const start = performance.now();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r)).finally(() => pending.delete(held));
    pending.add(held);
    const entry: RequestLogEntry = {
      index: index++,
      protocol: r.protocol,
      images: 0,
      status: 0,
      outcome: "answered",
      at: start - t0,
      ms: 0,
    };
    // Logged once the answer is delivered (or known lost: the client went away first).
    const finish = (status: number, outcome: RequestLogEntry["outcome"], res: Response) => {
      entry.status = status;
      entry.ms = performance.now() - start;
      info.completed.then(
        () => record({ ...entry, outcome }),
        () => record({ ...entry, outcome: outcome === "answered" ? "aborted" : outcome }),
      ).finally(release);
      return res;
    };
    let name: string;
    try {
      name = decodeURIComponent(r.model);
    } catch {
      await req.body?.cancel();
      return finish(400, "rejected", json(400, { error: `bad %-encoding in the model name ${r.model}` }));
    }
    if (name !== model) {
      await req.body?.cancel();
      return finish(404, "rejected", json(404, { error: `model ${name} not found (serving ${model})` }));
    }
    let parsed;
    try {
      const body = await readBody(req, maxBodyBytes);
      if (body === undefined) {
        return finish(
          413,
          "rejected",
          json(413, { error: `request body over ${maxBodyBytes} bytes; send fewer images per request` }),
        );
      }
      parsed = decodeRequest(r.protocol, body, req.headers, inputShape);
    } catch (e) {
      const msg = e instanceof ProtocolError ? e.message : `invalid JSON (${(e as Error).message})`;
      return finish(400, "rejected", json(400, { error: msg }));
    }
    entry.images = parsed.n;
    // One rule for non-finite pixels everywhere (lib/oracle/admission.ts): refuse the request.
    const nonFinite = findNonFinitePixel(parsed.x, parsed.n, inputShape.reduce((a, b) => a * b, 1));
    if (nonFinite) return finish(400, "rejected", json(400, { error: nonFiniteMessage(nonFinite) }));
    if (parsed.n > maxBatch) {
      return finish(413, "rejected", json(413, { error: `${parsed.n} images > ${maxBatch} per request` }));
    }
    const fault = opts.faults?.({ index: entry.index, protocol: r.protocol, images: parsed.n });
    if (fault && "status" in fault) {
      return finish(fault.status, "fault", json(fault.status, fault.body ?? { error: "injected failure" }));
    }
    if (fault && "delayMs" in fault) {
      // Only this path watches req.signal (aborted early = the client hung up while we waited).
      await abortable(fault.delayMs, req.signal);
      if (req.signal.aborted) return finish(499, "aborted", json(499, { error: "client went away" }));
    }
    let labels: Int32Array;
    try {
      labels = await predict(parsed.x, parsed.n);
    } catch (e) {
      return finish(500, "error", json(500, { error: `teacher failed: ${(e as Error).message}` }));
    }
    if (fault && "malformed" in fault) return finish(200, "fault", json(200, '{"outputs": [{"name": "la'));
    if (fault && "wrongShape" in fault) {
      return finish(
        200,
        "fault",
        json(200, encodeLabels(r.protocol, model, labels.subarray(0, Math.max(0, parsed.n - 1)))),
      );
    }
    if (fault && "cut" in fault) {
      // Headers, a few bytes, then the connection breaks: what a crashing server looks like.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('{"outputs": ['));
          c.error(new Error("injected connection cut"));
        },
      });
      return finish(
        200,
        "fault",
        new Response(body, { status: 200, headers: { "content-type": "application/json" } }),
      );
    }
    return finish(200, "answered", json(200, encodeLabels(r.protocol, model, labels)));
  };

  if (opts.logFile?.includes("/")) {
    await Deno.mkdir(opts.logFile.replace(/\/[^/]*$/, "") || "/", { recursive: true });
  }
  const server = Deno.serve({
    hostname,
    port: opts.port ?? 0,
    onListen: () => {},
    onError: (e) => json(500, { error: `server error: ${(e as Error).message}` }),
  }, handler);
  const port = server.addr.port;
  return {
    url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
    port,
    model,
    protocols,
    requestLog: log,
    answeredImages: () => log.reduce((a, e) => a + (e.outcome === "answered" ? e.images : 0), 0),
    settled: async () => {
      await Promise.allSettled([...pending]);
      await logWrites;
    },
    close: async () => {
      await server.shutdown();
      await Promise.allSettled([...pending]);
      await logWrites;
    },
  };
}
