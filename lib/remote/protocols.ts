/**
 * Wire formats of the two prediction APIs in use, for label queries.
 *
 * - Open Inference Protocol / KServe v2 REST: `POST /v2/models/{name}[/versions/{v}]/infer` with
 *   `{"inputs": [{"name", "shape": [n, ...], "datatype": "FP32", "data": [flat, row-major]}]}`;
 *   answer `{"outputs": [{"name", "shape", "datatype", "data"}]}`.
 * - TensorFlow Serving REST: `POST /v1/models/{name}[/versions/{v}]:predict` with
 *   `{"instances": [nested image, ...]}`; answer `{"predictions": [...]}`.
 *
 * Client side, an answer is reduced to class ids at once: integer outputs of shape [n] or [n, 1] are
 * labels, float outputs of shape [n, K] are scores and only their argmax is kept. Anything else
 * (wrong batch size, wrong width, labels out of range, an `error` field) is a {@link ProtocolError}
 * that names the endpoint and what was wrong. Server side, requests are parsed and checked against the
 * model's input shape and answers carry labels only.
 *
 * @module
 */

/** The two REST protocols. */
export type Protocol = "kserve-v2" | "tf-serving";

/** All protocols. */
export const PROTOCOLS: readonly Protocol[] = ["kserve-v2", "tf-serving"];

/** Where and how to ask. */
export interface Endpoint {
  /** Base URL, e.g. `http://127.0.0.1:8500`. */
  url: string;
  /** Model name in the path. */
  model: string;
  /** Model version (optional path segment). */
  version?: string;
  protocol: Protocol;
  /** KServe input tensor name (default "input"). */
  inputName?: string;
  /** Output to read when the answer has several (default: the only or first one). */
  outputName?: string;
}

/** An answer (or request) that does not follow the protocol. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The request path of an endpoint. */
export function inferPath(e: Pick<Endpoint, "model" | "version" | "protocol">): string {
  const m = encodeURIComponent(e.model);
  const v = e.version ? `/versions/${encodeURIComponent(e.version)}` : "";
  return e.protocol === "kserve-v2" ? `/v2/models/${m}${v}/infer` : `/v1/models/${m}${v}:predict`;
}

/** Full URL of an endpoint's infer/predict call. */
export function inferUrl(e: Endpoint): string {
  return e.url.replace(/\/+$/, "") + inferPath(e);
}

/** `[a,b,…]` of a float32 run (exact: each float32 prints as the double it equals). */
function flatJson(x: Float32Array): string {
  return "[" + x.join(",") + "]";
}

function nestedJson(x: Float32Array, shape: readonly number[], axis: number, off: number, parts: string[]) {
  if (axis === shape.length - 1) {
    parts.push(flatJson(x.subarray(off, off + shape[axis])));
    return;
  }
  let stride = 1;
  for (let a = axis + 1; a < shape.length; a++) stride *= shape[a];
  parts.push("[");
  for (let i = 0; i < shape[axis]; i++) {
    if (i > 0) parts.push(",");
    nestedJson(x, shape, axis + 1, off + i * stride, parts);
  }
  parts.push("]");
}

/** JSON body asking for `n` images of `shape` (no batch axis), flat float32 row-major in `x`. */
export function encodeRequest(e: Endpoint, x: Float32Array, n: number, shape: readonly number[]): string {
  const d = shape.reduce((a, b) => a * b, 1);
  const data = x.subarray(0, n * d);
  if (e.protocol === "kserve-v2") {
    const name = JSON.stringify(e.inputName ?? "input");
    return `{"inputs":[{"name":${name},"shape":${JSON.stringify([n, ...shape])},"datatype":"FP32","data":` +
      flatJson(data) + "}]}";
  }
  const parts: string[] = ['{"instances":['];
  for (let i = 0; i < n; i++) {
    if (i > 0) parts.push(",");
    nestedJson(data, shape, 0, i * d, parts);
  }
  parts.push("]}");
  return parts.join("");
}

function isNumberArray(a: unknown): a is number[] {
  return Array.isArray(a) && a.every((v) => typeof v === "number" && Number.isFinite(v));
}

function checkLabel(v: number, k: number, where: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= k) {
    throw new ProtocolError(`${where}: label ${v} is not a class id in [0, ${k})`);
  }
  return v;
}

function argmax(a: ArrayLike<number>, off: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (a[off + j] > a[off + best]) best = j;
  return best;
}

function describe(e: Endpoint): string {
  return `${e.protocol} endpoint ${inferUrl(e)}`;
}

/** Labels from a KServe v2 answer. */
function kserveLabels(e: Endpoint, body: Record<string, unknown>, n: number, k: number): Int32Array {
  const where = describe(e);
  if (typeof body.error === "string") {
    throw new ProtocolError(`${where} answered with an error: ${body.error}`);
  }
  const outputs = body.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) {
    throw new ProtocolError(`${where}: the answer has no "outputs" array`);
  }
  const out = (e.outputName ? outputs.find((o) => o?.name === e.outputName) : outputs[0]) as
    | Record<string, unknown>
    | undefined;
  if (!out) throw new ProtocolError(`${where}: no output named "${e.outputName}"`);
  const shape = out.shape, data = out.data, dt = String(out.datatype ?? "");
  if (!isNumberArray(shape)) throw new ProtocolError(`${where}: output "${out.name}" has no numeric shape`);
  const flat = Array.isArray(data) ? (data as unknown[]).flat(Infinity) : data;
  if (!isNumberArray(flat)) {
    throw new ProtocolError(`${where}: output "${out.name}" data is not a number array`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== size) {
    throw new ProtocolError(`${where}: output shape [${shape}] needs ${size} values, got ${flat.length}`);
  }
  if (shape[0] !== n) throw new ProtocolError(`${where}: asked ${n} images, output shape is [${shape}]`);
  const width = shape.length === 1 ? 1 : size / n;
  const isInt = /^U?INT/.test(dt);
  if (width === 1 && (isInt || shape.length === 1)) {
    return Int32Array.from(flat, (v) => checkLabel(v, k, where));
  }
  if (width !== k || isInt) {
    throw new ProtocolError(
      `${where}: output shape [${shape}] (${dt}) is neither labels [${n}] nor scores [${n}, ${k}]`,
    );
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = argmax(flat, i * k, k);
  return labels;
}

const LABEL_KEYS = ["label", "labels", "class", "classes", "class_ids", "predictions"];

/** One TF Serving prediction → label. */
function tfsLabel(e: Endpoint, p: unknown, k: number, where: string): number {
  if (typeof p === "number") return checkLabel(p, k, where);
  if (Array.isArray(p)) {
    const flat = p.flat(Infinity);
    if (!isNumberArray(flat)) throw new ProtocolError(`${where}: a prediction is not numeric`);
    if (flat.length === 1) return checkLabel(flat[0], k, where);
    if (flat.length !== k) {
      throw new ProtocolError(
        `${where}: a prediction has ${flat.length} scores, expected ${k} (or one label)`,
      );
    }
    return argmax(flat, 0, k);
  }
  if (p && typeof p === "object") {
    const o = p as Record<string, unknown>;
    const keys = Object.keys(o);
    const key = e.outputName ?? (keys.length === 1 ? keys[0] : LABEL_KEYS.find((c) => c in o));
    if (!key || !(key in o)) {
      throw new ProtocolError(`${where}: prediction has outputs {${keys.join(", ")}}; set outputName`);
    }
    return tfsLabel(e, o[key], k, where);
  }
  throw new ProtocolError(`${where}: a prediction is ${JSON.stringify(p)}`);
}

/** Labels from a TF Serving answer. */
function tfsLabels(e: Endpoint, body: Record<string, unknown>, n: number, k: number): Int32Array {
  const where = describe(e);
  if (typeof body.error === "string") {
    throw new ProtocolError(`${where} answered with an error: ${body.error}`);
  }
  const preds = body.predictions;
  if (!Array.isArray(preds)) throw new ProtocolError(`${where}: the answer has no "predictions" array`);
  if (preds.length !== n) {
    throw new ProtocolError(`${where}: asked ${n} images, got ${preds.length} predictions`);
  }
  return Int32Array.from(preds, (p) => tfsLabel(e, p, k, where));
}

/**
 * Class ids from a parsed answer to a request of `n` images (see the module doc). Scores are reduced
 * to their argmax here and not kept.
 */
export function decodeLabels(e: Endpoint, body: unknown, n: number, numClasses: number): Int32Array {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new ProtocolError(`${describe(e)}: the answer is not a JSON object`);
  }
  const b = body as Record<string, unknown>;
  return e.protocol === "kserve-v2" ? kserveLabels(e, b, n, numClasses) : tfsLabels(e, b, n, numClasses);
}

/** A parsed label request (server side). */
export interface ParsedRequest {
  x: Float32Array;
  n: number;
}

/** Parse and check a request body against one image's `shape`; throws ProtocolError (→ 400). */
export function decodeRequest(protocol: Protocol, body: unknown, shape: readonly number[]): ParsedRequest {
  const d = shape.reduce((a, b) => a * b, 1);
  if (!body || typeof body !== "object") throw new ProtocolError("the request is not a JSON object");
  const b = body as Record<string, unknown>;
  let values: unknown[];
  let n: number;
  if (protocol === "kserve-v2") {
    const inputs = b.inputs;
    if (!Array.isArray(inputs) || inputs.length !== 1) {
      throw new ProtocolError(`"inputs" must hold exactly one tensor`);
    }
    const t = inputs[0] as Record<string, unknown>;
    if (t.datatype !== "FP32") throw new ProtocolError(`input datatype ${t.datatype} is not FP32`);
    const s = t.shape;
    if (!isNumberArray(s) || s.length !== shape.length + 1 || s.slice(1).some((v, i) => v !== shape[i])) {
      throw new ProtocolError(`input shape ${JSON.stringify(s)} is not [n, ${shape.join(", ")}]`);
    }
    n = s[0];
    values = Array.isArray(t.data) ? (t.data as unknown[]) : [];
    if (values.length !== n * d) values = values.flat(Infinity);
  } else {
    const inst = b.instances;
    if (!Array.isArray(inst)) throw new ProtocolError(`the request has no "instances" array`);
    n = inst.length;
    values = inst.flat(Infinity);
  }
  if (values.length !== n * d) {
    throw new ProtocolError(`${values.length} values for ${n} images of shape [${shape.join(", ")}]`);
  }
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) {
    const v = values[i];
    if (typeof v !== "number") throw new ProtocolError(`value ${i} is not a number`);
    x[i] = v;
  }
  return { x, n };
}

/** A labels-only answer body. */
export function encodeLabels(protocol: Protocol, model: string, labels: Int32Array): string {
  if (protocol === "kserve-v2") {
    return JSON.stringify({
      model_name: model,
      outputs: [{ name: "label", shape: [labels.length], datatype: "INT64", data: Array.from(labels) }],
    });
  }
  return JSON.stringify({ predictions: Array.from(labels) });
}
