/**
 * The one error type of `lib/data`: every problem with a dataset file names the file and says how to
 * fix it, so a user never has to read a stack trace to find out what to install or re-download.
 */

/** What went wrong with a dataset file. */
export type DatasetErrorKind =
  | "missing" // file or folder not found
  | "size" // byte length does not match the header or the record size
  | "magic" // not an idx file (bad magic number / unknown type / bad rank)
  | "checksum" // SHA-256 differs from the known one
  | "gzip" // gzip stream truncated or corrupt
  | "format" // anything else about the content (labels out of range, bad meta file, …)
  | "argument"; // the caller asked for something that does not exist

/** Fields of a {@link DatasetError}. */
export interface DatasetErrorOptions {
  /** Category of the problem. */
  kind: DatasetErrorKind;
  /** The file (or folder) the problem is about; included in the message. */
  file?: string;
  /** How to fix it; included in the message. */
  fix?: string;
  /** Underlying error, if any. */
  cause?: unknown;
}

/**
 * A dataset could not be loaded. The message has the form
 * `"<what>: <file>. Fix: <fix>"`; the parts are also available as fields.
 */
export class DatasetError extends Error {
  /** Category of the problem. */
  readonly kind: DatasetErrorKind;
  /** The file (or folder) concerned, if any. */
  readonly file?: string;
  /** How to fix it, if known. */
  readonly fix?: string;

  /** Build an error from a short description of the problem and its details. */
  constructor(what: string, opts: DatasetErrorOptions) {
    const parts = [opts.file ? `${what}: ${opts.file}` : what];
    if (opts.fix) parts.push(`Fix: ${opts.fix}`);
    super(parts.join(". "), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DatasetError";
    this.kind = opts.kind;
    this.file = opts.file;
    this.fix = opts.fix;
  }
}
