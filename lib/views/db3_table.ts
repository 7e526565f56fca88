/**
 * Views of a DB3 table run (notebooks 10–13): printed names, paper vs measured (table B marked
 * unverified, the teacher number from table A's ZSDB3KD row, standard KD also from table A where the
 * student matches), bars, ledger totals against per-sample sums, ledger phases and the settings.
 *
 * @module
 */
import type { ModelName } from "../models/registry.ts";
import { type LedgerSnapshot, sumBySample } from "../oracle/ledger.ts";
import { tableARow } from "../results/paper.ts";
import type { PaperVsMeasuredRow } from "../results/table.ts";
import type { Db3Row, Db3TableResult } from "../experiments/db3.ts";

const pct = (v: number) => 100 * v;

const MODEL_TITLES: Partial<Record<ModelName, string>> = {
  "db3-lenet5": "LeNet-5",
  "db3-lenet5-half": "LeNet-5-half",
  "db3-lenet5-fifth": "LeNet-5-fifth",
  "db3-alexnet": "AlexNet",
  "db3-alexnet-half": "AlexNet-half",
  "db3-alexnet-quarter": "AlexNet-quarter",
};

/** A network's printed name (`db3-lenet5-half` → `LeNet-5-half`). */
export function modelTitle(name: ModelName | string): string {
  return MODEL_TITLES[name as ModelName] ?? name;
}

/** `"LeNet-5 → LeNet-5-half"` for a table run. */
export function db3PairTitle(r: Db3TableResult): string {
  return `${modelTitle(r.teacher.name)} → ${modelTitle(r.settings.student.model)}`;
}

/** Printed name of a table row. */
export const DB3_METHOD_TITLES: Record<Db3Row["method"], string> = {
  teacher: "teacher",
  ce: "CE (labels only)",
  kd: "standard KD (probs)",
  sd: "DB3-SD",
  bd: "DB3-BD",
  mbd: "DB3-MBD",
};

/**
 * Paper vs measured, one row per table row (for `paperVsMeasured`). Student paper numbers are table
 * B's (unverified); the teacher's is table A's ZSDB3KD teacher; a second KD row carries table A's
 * "KD (real data)" number when its student matches this run's.
 */
export function db3PaperRows(r: Db3TableResult): PaperVsMeasuredRow[] {
  const pair = db3PairTitle(r);
  const out: PaperVsMeasuredRow[] = [];
  for (const row of r.rows) {
    const base = {
      method: DB3_METHOD_TITLES[row.method],
      dataset: r.dataset,
      pair,
      measured: row.seeds && row.seeds.length > 1
        ? {
          mean: pct(row.testAcc),
          ...(row.testAccSpread !== undefined ? { std: pct(row.testAccSpread) } : {}),
          n: row.seeds.length,
        }
        : pct(row.testAcc),
      scale: r.scale,
    };
    const spend = row.method === "teacher"
      ? (row.access === "train"
        ? `trained on ${row.trainedOn.toLocaleString("en-US")} images`
        : `your teacher (${r.teacher.source}), accuracy measured through labels`)
      : `${row.trainedOn} images, ${Math.round(row.queriesPerSample).toLocaleString("en-US")} queries/image` +
        (row.flagged ? `, ${row.flagged} flagged` : "");
    if (row.method === "teacher") {
      const a = tableARow("zsdb3kd", r.dataset);
      out.push({
        ...base,
        pair: modelTitle(r.teacher.name),
        paper: a?.teacherAcc[0],
        note: `${spend}; paper: the ZSDB3KD paper's teacher (table A)`,
      });
      continue;
    }
    out.push({
      ...base,
      paper: row.paperAcc ?? undefined,
      unverified: row.paperAcc !== null,
      note: row.paperAcc !== null ? `${spend}; paper: table B` : spend,
    });
    if (row.method === "kd") {
      const a = tableARow("kd", r.dataset, modelTitle(r.settings.student.model));
      if (a) {
        out.push({
          ...base,
          method: "standard KD (probs), table A",
          paper: a.studentAcc[0],
          note: `same measured student; paper: CAKE paper's KD (real data) row, teacher ${
            a.teacherAcc[0].mean
          }%`,
        });
      }
    }
  }
  return out;
}

/**
 * Bars: measured accuracy per row, and the paper's number beside it where one exists. The series
 * names carry the scale and the transfer-set size, so a laptop student trained on a few images is
 * never read as comparable to the paper's student trained on the full training set.
 */
export function db3BarRows(r: Db3TableResult): { method: string; source: string; value: number }[] {
  const out: { method: string; source: string; value: number }[] = [];
  const n = r.samples.y.length.toLocaleString("en-US");
  const measured = r.scale === "paper"
    ? "measured (paper scale, full training set)"
    : `measured (${r.scale}: ${n} transfer images)`;
  for (const row of r.rows) {
    const method = DB3_METHOD_TITLES[row.method];
    out.push({ method, source: measured, value: pct(row.testAcc) });
    if (row.paperAcc !== null) {
      out.push({ method, source: "paper (table B, unverified; full training set)", value: row.paperAcc });
    }
  }
  return out;
}

/** The ledgers of a table run: the probs ledger of standard KD and the label ledger of BD/MBD. */
export function db3Ledgers(r: Db3TableResult): { name: string; ledger: LedgerSnapshot }[] {
  const out: { name: string; ledger: LedgerSnapshot }[] = [];
  const kd = r.records.find((x) => x.method === "db3-kd")?.ledger as LedgerSnapshot | undefined;
  if (kd) out.push({ name: "standard KD (probs)", ledger: kd });
  const lab = r.distances.mbd?.ledger ?? r.distances.bd?.ledger;
  if (lab) {
    out.push({ name: r.distances.mbd ? "BD + MBD labeling (label)" : "BD labeling (label)", ledger: lab });
  }
  return out;
}

/** Ledger totals against the sums of their per-sample entries, and the largest per-sample spend. */
export function db3LedgerRows(r: Db3TableResult): Record<string, string | number | boolean>[] {
  return db3Ledgers(r).map(({ name, ledger }) => {
    const label = sumBySample(ledger, "label"), probs = sumBySample(ledger, "probs");
    const spends = Object.entries(ledger.bySample).filter(([id]) => id !== "-1").map(([, e]) => e.spent);
    const calls = ledger.totals.calls.label + ledger.totals.calls.probs;
    const images = ledger.totals.images.label + ledger.totals.images.probs;
    const budget = ledger.budget.perSample;
    return {
      ledger: name,
      "total images": images,
      "Σ per-sample images": label + probs,
      "total = Σ per-sample": ledger.totals.images.label === label && ledger.totals.images.probs === probs,
      "oracle calls": calls,
      "images per call": calls ? Math.round(images / calls) : 0,
      samples: spends.length,
      "largest per-sample spend": Math.max(0, ...spends),
      "per-sample budget": budget ?? "none",
      "refused images": ledger.totals.refused,
    };
  });
}

/** Label queries and calls per ledger phase (BD: `bd.*`, MBD: `mbd.*`). */
export function db3PhaseRows(r: Db3TableResult): Record<string, string | number>[] {
  const n = r.samples.y.length;
  return db3Ledgers(r).flatMap(({ name, ledger }) =>
    Object.entries(ledger.byPhase).map(([phase, e]) => ({
      ledger: name,
      phase,
      images: e.images.label + e.images.probs,
      calls: e.calls.label + e.calls.probs,
      "images per sample": (e.images.label + e.images.probs) / n,
    }))
  );
}

/**
 * Where the labels came from: the labeling units (or chunks) and the seconds they took when they ran.
 * They are kept in the run store, so a rerun reads them instead of paying again; the seconds are the
 * original cost either way.
 */
function labelingView(r: Db3TableResult): string {
  const d = r.distances.mbd ?? r.distances.bd;
  if (!d) return "none (SD asks the teacher nothing)";
  const resumed = d.chunks.resumed ? `, ${d.chunks.resumed} more resumed from an earlier run` : "";
  return `${d.method.toUpperCase()}: ${d.chunks.computed} unit(s) of ≤ ${d.chunks.size} samples, ` +
    `${
      d.seconds.toFixed(0)
    } s of labeling when they ran${resumed} (kept in the run store; a rerun reuses them)`;
}

/** Settings of a table run as key/values (for `keyValues`). */
export function db3SettingsView(r: Db3TableResult): Record<string, string | number> {
  const s = r.settings;
  return {
    scale: r.scale,
    seed: r.seed,
    "teacher → student": db3PairTitle(r),
    "teacher source": r.teacher.source,
    "teacher test accuracy (%)": pct(r.teacher.testAcc).toFixed(2),
    "transfer set": `${r.samples.y.length} training images (${s.samplesPerClass || "all"} per class)`,
    "test images": s.testLimit || "all",
    "BD": JSON.stringify(r.distances.mbd?.options.bd ?? r.distances.bd?.options ?? s.bd),
    "MBD": JSON.stringify(r.distances.mbd ? { ...r.distances.mbd.options, bd: "as above" } : s.mbd),
    labeling: labelingView(r),
    student:
      `${s.student.epochs} epochs, batch ${s.student.batchSize}, Adam ${s.student.lr}, τ ${s.student.temperature}`,
    "differs from the paper": s.note,
  };
}
