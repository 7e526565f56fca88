/**
 * A remote label-only teacher as a `LabelPredictor`: images go out in batches of `batchSize` over
 * KServe v2 or TF Serving REST (see `protocols.ts`), several batches in flight at once, through a
 * {@link Transport} (timeouts, retries with backoff, rate limit, auth header). Answers are reduced to
 * class ids as they arrive; scores never leave this module.
 *
 * Plain use: `labelOracle(remoteTeacher({...}))`. For a persistent cache and paid/cached/failed
 * accounting use `remoteLabelOracle` (oracle.ts), which drives {@link RemoteTeacher.predictBatches}.
 *
 * @module
 */
import type { LabelPredictor } from "../oracle/oracle.ts";
import {
  adaptArray,
  type InputAdapterOptions,
  isIdentityAdapter,
  modelShapeOf,
  resolveAdapter,
} from "../teachers/adapters.ts";
import type { ResolvedAdapter } from "../teachers/adapters.ts";
import { Transport, type TransportOptions, type TransportStats } from "./http.ts";
import { decodeResponse, encodeRequest, type Endpoint, inferUrl, type Protocol } from "./protocols.ts";

/** Options of {@link remoteTeacher}. */
export interface RemoteTeacherOptions extends TransportOptions {
  /** Base URL, e.g. `http://127.0.0.1:8500`. */
  url: string;
  /** Model name. */
  model: string;
  /** Model version (optional). */
  version?: string;
  /** Protocol (default "kserve-v2"). */
  protocol?: Protocol;
  /** Kit-side image shape (NHWC, no batch axis), e.g. [28, 28, 1]. */
  inputShape: number[];
  /** Number of classes K (checks labels, argmax width). */
  numClasses: number;
  /** Images per HTTP request (default 256). */
  batchSize?: number;
  /** How the remote model expects its input (layout, range, mean/std; default the kit's). */
  input?: InputAdapterOptions;
  /** KServe input name (default "input"). */
  inputName?: string;
  /** Output to read when there are several. */
  outputName?: string;
  /**
   * KServe v2: send tensors with the binary data extension (raw float32 after a JSON header) instead
   * of decimal JSON — several times cheaper to encode and parse. Default false (plain JSON, which
   * every v2 server accepts); the kit's server and Triton accept binary.
   */
  binary?: boolean;
}

/** A batch answered: images [start, end) of the call got `labels`. */
export type BatchCallback = (start: number, end: number, labels: Int32Array) => void;

/** A label predictor over HTTP (see the module doc). */
export class RemoteTeacher implements LabelPredictor {
  /** Kit-side input shape and number of classes (read by `labelOracle`). */
  readonly spec: { inputShape: number[]; numClasses: number };
  readonly endpoint: Endpoint;
  readonly batchSize: number;
  readonly adapter: ResolvedAdapter;
  readonly transport: Transport;
  readonly #url: string;
  readonly #dim: number;
  readonly #wireShape: number[];
  /** Images answered (paid) through this teacher. */
  answered = 0;

  constructor(opts: RemoteTeacherOptions) {
    this.endpoint = {
      url: opts.url,
      model: opts.model,
      version: opts.version,
      protocol: opts.protocol ?? "kserve-v2",
      inputName: opts.inputName,
      outputName: opts.outputName,
      binary: opts.binary === true && (opts.protocol ?? "kserve-v2") === "kserve-v2",
    };
    this.spec = { inputShape: [...opts.inputShape], numClasses: opts.numClasses };
    this.batchSize = Math.max(1, opts.batchSize ?? 256);
    const c = opts.inputShape.length === 3 ? opts.inputShape[2] : undefined;
    this.adapter = resolveAdapter(opts.input, c);
    this.transport = new Transport(opts);
    this.#url = inferUrl(this.endpoint);
    this.#dim = opts.inputShape.reduce((a, b) => a * b, 1);
    this.#wireShape = modelShapeOf(opts.inputShape, this.adapter);
  }

  /** Transport counters (requests, attempts, failures by cause). */
  get stats(): TransportStats {
    return this.transport.stats;
  }

  /** What identifies this teacher's answers (cache namespace): endpoint, shapes, adapter. No secrets. */
  describe(): Record<string, unknown> {
    const { url, model, version, protocol, inputName, outputName } = this.endpoint; // `binary`: same answers
    return {
      url: url.replace(/\/+$/, ""),
      model,
      version: version ?? null,
      protocol,
      inputName: inputName ?? null,
      outputName: outputName ?? null,
      inputShape: this.spec.inputShape,
      numClasses: this.spec.numClasses,
      adapter: this.adapter,
    };
  }

  async #batch(x: Float32Array, n: number): Promise<Int32Array> {
    const d = this.#dim;
    const wire = isIdentityAdapter(this.adapter) ? x : adaptArray(x, n, this.spec.inputShape, this.adapter);
    const req = encodeRequest(this.endpoint, wire.subarray(0, n * d), n, this.#wireShape);
    const k = this.spec.numClasses;
    const labels = await this.transport.post(
      this.#url,
      req,
      (bytes, headers) => decodeResponse(this.endpoint, bytes, headers, n, k),
    );
    this.answered += n;
    return labels;
  }

  /**
   * Labels of `n` images, sent as batches of `batchSize` with up to `concurrency` in flight.
   * `onBatch` is called as each batch is answered. After a batch fails for good no new batch starts;
   * the ones in flight finish (and are reported), then the first error is thrown.
   */
  async predictBatches(x: Float32Array, n: number, onBatch?: BatchCallback): Promise<Int32Array> {
    const d = this.#dim, bs = this.batchSize;
    const out = new Int32Array(n);
    const batches = Math.ceil(n / bs);
    let next = 0;
    let failed: unknown = undefined;
    // `concurrency` loops pull batches in order; the transport also caps requests across calls.
    const loop = async () => {
      while (failed === undefined && next < batches) {
        const s = bs * next++;
        const e = Math.min(n, s + bs);
        try {
          const l = await this.#batch(x.subarray(s * d, e * d), e - s);
          out.set(l, s);
          onBatch?.(s, e, l);
        } catch (err) {
          failed ??= err;
        }
      }
    };
    const width = Math.min(batches, this.transport.options.concurrency);
    await Promise.all(Array.from({ length: width }, loop));
    if (failed !== undefined) throw failed;
    return out;
  }

  /** Labels of `n` flat NHWC images (the `LabelPredictor` contract). */
  predictLabels(x: Float32Array, n: number): Promise<Int32Array> {
    return this.predictBatches(x, n);
  }
}

/** A remote label-only teacher (see {@link RemoteTeacher}). */
export function remoteTeacher(opts: RemoteTeacherOptions): RemoteTeacher {
  return new RemoteTeacher(opts);
}
