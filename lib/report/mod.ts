/**
 * The static report: executed notebooks + run records → a folder of HTML pages with a
 * paper-vs-measured summary (`deno task report`).
 *
 * @module
 */
export * from "./assets.ts";
export * from "./catalog.ts";
export * from "./html.ts";
export * from "./index_page.ts";
export * from "./markdown.ts";
export * from "./notebook.ts";
export * from "./outputs.ts";
export * from "./page.ts";
export * from "./raster.ts";
export * from "./readme_table.ts";
export * from "./records.ts";
export * from "./site.ts";
export * from "./summary.ts";
