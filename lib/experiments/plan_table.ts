/**
 * The cost of every notebook's experiment at a scale, from the plans' per-unit estimates (measured
 * rates; see each level's `estimate.source`): units, teacher queries, core-hours, and wall time on
 * 2, 64 and 512 cores (levels in order, units of a level in parallel waves). Printed by
 * `deno task bkd plan --all` and kept in README.md ("Reproduce a table on your cluster").
 *
 * @module
 */
import { planCost, planWallSeconds } from "../runner/cost.ts";
import type { Scale } from "../scale.ts";
import { NOT_PLANNED, NOTEBOOKS } from "./notebooks.ts";

/** One notebook's row. */
export interface PlanTableRow {
  notebook: string;
  units: number | null;
  queries: number | null;
  coreHours: number | null;
  /** Levels without an estimate (their cost is missing from the row). */
  unestimated: string[];
  /** Wall seconds on 2, 64 and 512 cores. */
  wall: [number, number, number] | null;
  /** Why a notebook has no plan of its own. */
  note?: string;
}

/** Rows for every registered notebook at `scale` (teachers are not opened), then the unplanned ones. */
export async function planTableRows(scale: Scale): Promise<PlanTableRow[]> {
  const rows: PlanTableRow[] = [];
  for (const id of Object.keys(NOTEBOOKS).sort()) {
    const plan = await NOTEBOOKS[id].plan({ scale }, false);
    const c = planCost(plan);
    rows.push({
      notebook: id,
      units: c.units,
      queries: c.queries,
      coreHours: c.cpuSeconds / 3600,
      unestimated: c.unestimated,
      wall: [planWallSeconds(plan, 2), planWallSeconds(plan, 64), planWallSeconds(plan, 512)],
    });
  }
  for (const [id, why] of Object.entries(NOT_PLANNED)) {
    rows.push({
      notebook: id,
      units: null,
      queries: null,
      coreHours: null,
      unestimated: [],
      wall: null,
      note: why,
    });
  }
  return rows;
}

/** `12.3 h`, or minutes under two hours. */
export function formatWall(sec: number): string {
  return sec < 7200 ? `${(sec / 60).toFixed(1)} min` : `${(sec / 3600).toFixed(1)} h`;
}

/** The rows as a markdown table. */
export function planTableMarkdown(rows: PlanTableRow[]): string {
  const n = (v: number) => Math.round(v).toLocaleString("en-US");
  const lines = [
    "| notebook | units | teacher queries | core-hours | wall, 2 cores | wall, 64 cores | wall, 512 cores |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    if (r.units === null) {
      lines.push(`| ${r.notebook} | — | — | — | — | — | ${r.note?.replaceAll("|", "\\|")} |`);
      continue;
    }
    const missing = r.unestimated.length ? ` (without ${r.unestimated.join(", ")})` : "";
    lines.push(
      `| ${r.notebook} | ${n(r.units)} | ${n(r.queries!)} | ${r.coreHours!.toFixed(1)}${missing} | ` +
        `${r.wall!.map(formatWall).join(" | ")} |`,
    );
  }
  return lines.join("\n");
}
