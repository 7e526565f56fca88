/**
 * Showing results: display helpers, live progress, plots (Observable Plot on linkedom) and image
 * grids (PNG), all rendering inline in the Deno Jupyter kernel.
 *
 * @module
 */
export * from "./display.ts";
export * from "./progress.ts";
export * from "./figure.ts";
export * from "./plots.ts";
export * from "./colors.ts";
export * from "./images.ts";
export { crc32, encodePng, PNG_SIGNATURE, toBase64 } from "./png.ts";
