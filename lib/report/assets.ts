/**
 * Content-addressed files of the report (`assets/<sha256 prefix>.<ext>`): embedded images are
 * written once however often they appear (an image grid's PNG shows up in several outputs and once
 * per labelled row), and the same bytes always get the same name, so rebuilding gives the same
 * folder.
 *
 * @module
 */
import { createHash } from "node:crypto";

const EXT: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/gif": "gif",
  "image/webp": "webp",
};

/** Collects the asset files of a site while pages render. */
export class AssetStore {
  /** Site-relative path → bytes. */
  readonly files: Map<string, Uint8Array> = new Map();

  /** Store bytes; returns the site-relative path (`assets/ab12….png`). */
  add(bytes: Uint8Array, ext: string): string {
    const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 20);
    const path = `assets/${hash}.${ext}`;
    if (!this.files.has(path)) this.files.set(path, bytes);
    return path;
  }

  /** Store base64 data of a MIME type (`image/png`, …); returns the site-relative path. */
  addBase64(mime: string, b64: string): string {
    const clean = b64.replace(/\s+/g, "");
    const bin = atob(clean);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return this.add(bytes, EXT[mime] ?? "bin");
  }

  /**
   * Replace every `data:image/…;base64,…` URI in markup by a link to its asset file.
   * `prefix` is the path from the page to the site root (`"../"` for notebook pages).
   */
  externalizeDataUris(markup: string, prefix: string): string {
    return markup.replace(
      /data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]+)/g,
      (_m, mime: string, b64: string) => prefix + this.addBase64(mime, b64),
    );
  }
}
