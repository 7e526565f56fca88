/**
 * Wire formats of the two prediction APIs in use, for label queries.
 *
 * - Open Inference Protocol / KServe v2 REST: `POST /v2/models/{name}[/versions/{v}]/infer` with
 *   `{"inputs": [{"name", "shape": [n, ...], "datatype": "FP32", "data": [flat, row-major]}]}`;
 *   answer `{"outputs": [{"name", "shape", "datatype", "data"}]}`.
 * - TensorFlow Serving REST: `POST /v1/models/{name}[/versions/{v}]:predict` with
 *   `{"instances": [nested image, ...]}`; answer `{"predictions": [...]}`.
 *
 * KServe v2 also has a binary tensor extension (Triton's, also served by KServe): the request body is
 * the JSON header followed by the raw little-endian tensor bytes, the header's length in the
 * `Inference-Header-Content-Length` HTTP header, and the input's `parameters.binary_data_size` set. It
 * skips printing and parsing ~16 bytes of decimal text per pixel; `binary: true` uses it (the kit's
 * server and Triton accept it). Binary answers are understood too.
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
  /** KServe v2 only: send the tensor with the binary data extension (default false). */
  binary?: boolean;
}

/** HTTP header carrying the JSON part's length under the KServe v2 binary extension. */
export const BINARY_HEADER = "inference-header-content-length";

/** A request ready to POST. */
export interface EncodedRequest {
  body: string | Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
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

/**
 * Precomputed text between consecutive values of one instance of `shape` in nested-list JSON
 * (closing brackets, a comma, opening brackets), so encoding is one concatenation per value.
 */
const separators = new Map<string, { open: string; sep: string[]; close: string }>();
function nestedSeparators(shape: readonly number[]) {
  const key = shape.join(",");
  let s = separators.get(key);
  if (s) return s;
  const d = shape.reduce((a, b) => a * b, 1);
  // The list at nesting level L (0 = the instance) spans prod(shape[L..]) values and starts where
  // k is a multiple of that span.
  const spans = shape.map((_, a) => shape.slice(a).reduce((p, q) => p * q, 1));
  const opens = (k: number) => spans.filter((sp) => k % sp === 0).length;
  const sep: string[] = [];
  for (let k = 0; k < d - 1; k++) {
    const closes = spans.filter((sp) => (k + 1) % sp === 0).length; // lists ending after value k
    sep.push("]".repeat(closes) + "," + "[".repeat(opens(k + 1)));
  }
  s = { open: "[".repeat(opens(0)), sep, close: "]".repeat(shape.length) };
  separators.set(key, s);
  return s;
}

/**
 * The request for `n` images of `shape` (no batch axis), flat float32 row-major in `x`: JSON text, or
 * JSON header + raw bytes for KServe v2 with `binary`.
 */
export function encodeRequest(
  e: Endpoint,
  x: Float32Array,
  n: number,
  shape: readonly number[],
): EncodedRequest {
  const d = shape.reduce((a, b) => a * b, 1);
  const data = x.subarray(0, n * d);
  const json = { "content-type": "application/json" };
  if (e.protocol === "kserve-v2") {
    const name = JSON.stringify(e.inputName ?? "input");
    const head = `{"inputs":[{"name":${name},"shape":${JSON.stringify([n, ...shape])},"datatype":"FP32",`;
    if (!e.binary) return { body: head + '"data":' + flatJson(data) + "}]}", headers: json };
    const header = new TextEncoder().encode(
      head +
        `"parameters":{"binary_data_size":${
          n * d * 4
        }}}],"outputs":[{"name":"label","parameters":{"binary_data":false}}]}`,
    );
    const body = new Uint8Array(header.length + n * d * 4);
    body.set(header, 0);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (LITTLE_ENDIAN) body.set(raw, header.length);
    else {
      const v = new DataView(body.buffer, header.length);
      for (let i = 0; i < data.length; i++) v.setFloat32(4 * i, data[i], true);
    }
    return {
      body,
      headers: { "content-type": "application/octet-stream", [BINARY_HEADER]: String(header.length) },
    };
  }
  const { open, sep, close } = nestedSeparators(shape);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    let t = open;
    const o = i * d;
    for (let k = 0; k < d - 1; k++) t += data[o + k] + sep[k];
    parts.push(t + data[o + d - 1] + close);
  }
  return { body: '{"instances":[' + parts.join(",") + "]}", headers: json };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Split a body under the binary extension: the parsed JSON header and the bytes after it. */
function splitBinary(bytes: Uint8Array, headerLength: string | null): { json: unknown; rest: Uint8Array } {
  if (headerLength === null) {
    return { json: JSON.parse(new TextDecoder().decode(bytes)), rest: new Uint8Array(0) };
  }
  const len = Number(headerLength);
  if (!Number.isInteger(len) || len < 0 || len > bytes.length) {
    throw new ProtocolError(`${BINARY_HEADER} ${headerLength} does not fit a body of ${bytes.length} bytes`);
  }
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(0, len))), rest: bytes.subarray(len) };
}

const BINARY_TYPES: Record<string, (b: Uint8Array) => ArrayLike<number>> = {
  FP32: (b) => new Float32Array(b.slice().buffer),
  FP64: (b) => new Float64Array(b.slice().buffer),
  INT32: (b) => new Int32Array(b.slice().buffer),
  INT64: (b) => Array.from(new BigInt64Array(b.slice().buffer), Number),
  UINT8: (b) => b,
  INT8: (b) => new Int8Array(b.slice().buffer),
};

/** Attach the raw data of outputs sent with `binary_data_size` as plain `data` arrays. */
function inlineBinaryOutputs(json: Record<string, unknown>, rest: Uint8Array) {
  let off = 0;
  for (const o of (Array.isArray(json.outputs) ? json.outputs : []) as Record<string, unknown>[]) {
    const size = (o.parameters as Record<string, unknown> | undefined)?.binary_data_size;
    if (typeof size !== "number") continue;
    const conv = BINARY_TYPES[String(o.datatype)];
    if (!conv) throw new ProtocolError(`binary output "${o.name}" has unsupported datatype ${o.datatype}`);
    if (off + size > rest.length) throw new ProtocolError(`binary output "${o.name}" runs past the body`);
    o.data = Array.from(conv(rest.subarray(off, off + size)));
    off += size;
  }
}

/**
 * Class ids from a raw answer (bytes and headers); JSON, or JSON + binary outputs under the KServe v2
 * binary extension. Throws ProtocolError for malformed answers (JSON syntax errors included).
 */
export function decodeResponse(
  e: Endpoint,
  bytes: Uint8Array,
  headers: Headers,
  n: number,
  numClasses: number,
): Int32Array {
  let parsed: { json: unknown; rest: Uint8Array };
  try {
    parsed = splitBinary(bytes, e.protocol === "kserve-v2" ? headers.get(BINARY_HEADER) : null);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    const text = new TextDecoder().decode(bytes.subarray(0, 80));
    throw new ProtocolError(`${describe(e)}: malformed JSON answer (${(err as Error).message}): ${text}`);
  }
  if (parsed.rest.length > 0 && parsed.json && typeof parsed.json === "object") {
    inlineBinaryOutputs(parsed.json as Record<string, unknown>, parsed.rest);
  }
  return decodeLabels(e, parsed.json, n, numClasses);
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

/**
 * Parse and check a raw request (bytes and headers, JSON or KServe v2 binary) against one image's
 * `shape`; throws ProtocolError (→ 400).
 */
export function decodeRequest(
  protocol: Protocol,
  bytes: Uint8Array,
  headers: Headers,
  shape: readonly number[],
): ParsedRequest {
  const d = shape.reduce((a, b) => a * b, 1);
  let parsed: { json: unknown; rest: Uint8Array };
  try {
    parsed = splitBinary(bytes, protocol === "kserve-v2" ? headers.get(BINARY_HEADER) : null);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`invalid JSON (${(e as Error).message})`);
  }
  const body = parsed.json;
  if (!body || typeof body !== "object") throw new ProtocolError("the request is not a JSON object");
  const b = body as Record<string, unknown>;
  let values: ArrayLike<unknown>;
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
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new ProtocolError(`input shape ${JSON.stringify(s)}: the batch size ${n} is not a whole number`);
    }
    const size = (t.parameters as Record<string, unknown> | undefined)?.binary_data_size;
    if (typeof size === "number") {
      if (size !== n * d * 4 || parsed.rest.length < size) {
        throw new ProtocolError(
          `binary_data_size ${size} does not match ${n} images (${parsed.rest.length} bytes sent)`,
        );
      }
      const raw = parsed.rest.slice(0, size);
      const x = new Float32Array(raw.buffer);
      if (!LITTLE_ENDIAN) {
        const v = new DataView(raw.buffer);
        for (let i = 0; i < x.length; i++) x[i] = v.getFloat32(4 * i, true);
      }
      return { x, n };
    }
    values = Array.isArray(t.data) ? (t.data as unknown[]) : [];
    if (values.length !== n * d) values = (values as unknown[]).flat(Infinity);
  } else {
    const inst = b.instances;
    if (!Array.isArray(inst)) throw new ProtocolError(`the request has no "instances" array`);
    n = inst.length;
    return { x: nestedInstances(inst, shape), n };
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

/**
 * TF Serving instances, each nested exactly like `shape` (or a flat list of its values), into one
 * flat float32 array; a ragged or wrongly nested instance is a ProtocolError that says where.
 */
function nestedInstances(inst: unknown[], shape: readonly number[]): Float32Array {
  const d = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(inst.length * d);
  let k = 0;
  const put = (v: unknown, where: string) => {
    if (typeof v !== "number") throw new ProtocolError(`${where} is ${JSON.stringify(v)}, not a number`);
    x[k++] = v;
  };
  const walk = (v: unknown, level: number, where: string) => {
    if (level === shape.length) return put(v, where);
    if (!Array.isArray(v) || v.length !== shape[level]) {
      const got = Array.isArray(v) ? `a list of ${v.length}` : JSON.stringify(v)?.slice(0, 40);
      throw new ProtocolError(
        `${where} is ${got}, expected a list of ${shape[level]} (instances must be nested as ` +
          `[${shape.join(", ")}], not ragged)`,
      );
    }
    for (let j = 0; j < v.length; j++) walk(v[j], level + 1, `${where}[${j}]`);
  };
  for (let i = 0; i < inst.length; i++) {
    const one = inst[i];
    const where = `instance ${i}`;
    if (shape.length > 1 && Array.isArray(one) && one.length === d && !one.some(Array.isArray)) {
      for (let j = 0; j < d; j++) put(one[j], `${where}[${j}]`); // flat: d values, no nesting
    } else walk(one, 0, where);
  }
  return x;
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
