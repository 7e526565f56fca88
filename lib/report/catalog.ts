/**
 * What each notebook measures, for the report's summary table: the experiments (run-record
 * folders) a notebook writes, and one row spec per measured quantity — which records, which
 * metric, which paper number (from `lib/results/paper.ts`, never typed in here) and which section
 * of the notebook shows it. A notebook missing from the catalog still gets its page, just no rows.
 *
 * @module
 */
import type { RunRecord } from "../results/record.ts";
import { matrixCell, type PaperValue, TABLE_C_MNIST_TYPE, tableARow, tableBRows } from "../results/paper.ts";

/** A paper number a measured row is compared with. */
export interface PaperRef {
  /** The number (percent). */
  value: PaperValue;
  /** Where it comes from, e.g. `"CAKE paper, table A"`. */
  source: string;
  /** True for numbers from secondary sources (table B). */
  unverified?: boolean;
}

/** One kind of summary row; records with the same label (and dataset) are the seeds of one row. */
export interface RowSpec {
  /** Experiment (run-record folder) the records come from. */
  experiment: string;
  /** Which records of that experiment count for this spec (default: all). */
  match?: (r: RunRecord) => boolean;
  /** Row label shown in the table. */
  label: (r: RunRecord) => string;
  /** Metric key in `record.metrics` (a fraction, shown in percent). */
  metric: string;
  /** The paper number to compare with, if the papers give one. */
  paper?: (r: RunRecord) => PaperRef | undefined;
  /** Start of the heading text of the notebook section that shows it (case-insensitive). */
  section: string;
  /** True for ablation rows (the papers give no number; said so in the verdict column). */
  ablation?: boolean;
}

/** What one notebook covers. */
export interface NotebookSpec {
  /** Run-record folders the notebook writes. */
  experiments: string[];
  /** Summary rows, in display order. */
  rows: RowSpec[];
}

const DB3_LABELS: Record<string, string> = {
  "db3-ce": "label-only CE",
  "db3-kd": "standard KD (probs access)",
  "db3-sd": "DB3-SD",
  "db3-bd": "DB3-BD",
  "db3-mbd": "DB3-MBD",
};

function kdTeacherPaper(r: RunRecord): PaperRef | undefined {
  const row = tableARow("kd", r.dataset);
  return row ? { value: row.teacherAcc[0], source: "CAKE paper, table A (teacher)" } : undefined;
}

function db3Paper(r: RunRecord): PaperRef | undefined {
  const key = r.method === "db3-kd" ? "kd" : r.method === "db3-mbd" ? "db3-mbd" : undefined;
  if (!key) return undefined;
  const b = tableBRows(r.dataset).find((x) => x.key === key);
  if (b) {
    return { value: b.studentAcc, source: "ZSDB3KD paper, table 1 (secondary sources)", unverified: true };
  }
  if (key === "kd") {
    const a = tableARow("kd", r.dataset, "LeNet-5-half");
    if (a) return { value: a.studentAcc[0], source: "CAKE paper, table A (KD on real data)" };
  }
  return undefined;
}

function tableAStudent(method: string) {
  return (r: RunRecord): PaperRef | undefined => {
    const row = tableARow(method, r.dataset, r.dataset === "cifar10" ? undefined : "LeNet-5-half");
    return row ? { value: row.studentAcc[0], source: "CAKE paper, table A" } : undefined;
  };
}

/** Kit model name → model type of table C (`mlp100x4` → `MLP`). */
function modelType(model: string): string | undefined {
  if (model.startsWith("mlp")) return "MLP";
  if (model.includes("cnn")) return "CNN";
  if (model.startsWith("resnet")) return "ResNet";
  if (model.startsWith("vit")) return "ViT";
  return undefined;
}

function typePairPaper(r: RunRecord): PaperRef | undefined {
  const [t, s] = r.method.replace(/^cake:/, "").split("->").map(modelType);
  if (!t || !s || r.dataset !== "mnist") return undefined;
  const v = matrixCell(TABLE_C_MNIST_TYPE, t, s);
  return v
    ? { value: v, source: `CAKE paper, table C (${TABLE_C_MNIST_TYPE.name}, read off a bar chart)` }
    : undefined;
}

function db3Table(experiment: string): NotebookSpec {
  return {
    experiments: [experiment],
    rows: [{
      experiment,
      label: (r) => DB3_LABELS[r.method] ?? r.method,
      metric: "testAcc",
      paper: db3Paper,
      section: "Paper vs measured",
    }],
  };
}

function zeroShot(experiment: string): NotebookSpec {
  return {
    experiments: [experiment],
    rows: [{
      experiment,
      match: (r) => r.method === "zsdb3kd",
      label: () => "ZSDB3KD student",
      metric: "testAcc",
      paper: tableAStudent("zsdb3kd"),
      section: "Paper vs measured",
    }, {
      experiment,
      match: (r) => r.method === "zsdb3kd-noise",
      label: () => "student on iteration-0 noise (baseline)",
      metric: "testAcc",
      section: "Paper vs measured",
    }],
  };
}

const ABLATION_SECTIONS: Record<string, string> = {
  "db3-ablation-budget": "2 · Accuracy vs query budget",
  "db3-ablation-tau": "4 · Temperature",
  "db3-ablation-size": "5 · Student size",
  "db3-ablation-remedies": "7 · The 1/d blow-up",
};

function db3Ablation(method: string): RowSpec {
  return {
    experiment: "db3-ablations",
    match: (r) => r.method === method,
    label: (r) => `${method.replace("db3-ablation-", "")}: ${String(r.config.variant ?? r.method)}`,
    metric: "testAcc",
    section: ABLATION_SECTIONS[method],
    ablation: true,
  };
}

/** Notebook name (file name without `.<scale>.ipynb`) → what it covers. */
export const CATALOG: Readonly<Record<string, NotebookSpec>> = {
  "00_quickstart": {
    experiments: ["quickstart"],
    rows: [
      ...([
        ["teacherAcc", "two-moons teacher (MLP)"],
        ["hardStudentAcc", "two-moons student, hard labels"],
        ["softStudentAcc", "two-moons student, soft labels"],
      ] as const).map(([metric, name]): RowSpec => ({
        experiment: "quickstart",
        match: (r) => r.method === "two-moons-kd",
        label: () => name,
        metric,
        section: "Two-moons",
      })),
      {
        experiment: "quickstart",
        match: (r) => r.method === "teacher",
        label: () => "DB3 LeNet-5 teacher",
        metric: "teacherAcc",
        paper: kdTeacherPaper,
        section: "MNIST teacher",
      },
    ],
  },
  "10_db3_mnist": db3Table("db3-mnist"),
  "11_db3_fmnist": db3Table("db3-fmnist"),
  "12_db3_cifar10": db3Table("db3-cifar10"),
  "13_db3_ablations": {
    experiments: ["db3-ablations"],
    rows: [
      {
        experiment: "db3-ablations",
        match: (r) => r.method in DB3_LABELS,
        label: (r) => DB3_LABELS[r.method],
        metric: "testAcc",
        paper: db3Paper,
        section: "1 · SD vs BD vs MBD",
      },
      ...Object.keys(ABLATION_SECTIONS).map(db3Ablation),
    ],
  },
  "20_cake_two_moons": {
    experiments: ["cake-two-moons"],
    rows: [{
      experiment: "cake-two-moons",
      label: (r) =>
        ({ cake: "CAKE", naive: "naive CE synthesis", generator: "conditional generator" })[r.method] ??
          r.method,
      metric: "studentAcc",
      section: "Paper vs measured",
    }],
  },
  "21_cake_mnist_fmnist": {
    experiments: ["cake-mnist"],
    rows: [{
      experiment: "cake-mnist",
      label: () => "CAKE student",
      metric: "studentAcc",
      paper: tableAStudent("cake"),
      section: "Paper vs measured",
    }],
  },
  "22_cake_cifar10": {
    experiments: ["cake-cifar10"],
    rows: [{
      experiment: "cake-cifar10",
      label: (r) => `CAKE ${r.method.replace(/^cake:/, "")}`,
      metric: "studentAcc",
      section: "Paper vs measured",
    }],
  },
  "24_cake_across_models": {
    experiments: ["cake-across-models"],
    rows: [{
      experiment: "cake-across-models",
      label: (r) => `CAKE ${r.method.replace(/^cake:/, "")}`,
      metric: "studentAcc",
      paper: typePairPaper,
      section: "Paper vs measured",
    }],
  },
  "23_cake_ablations": {
    experiments: ["cake-ablation"],
    rows: [{
      experiment: "cake-ablation",
      label: (r) => `CAKE variant: ${r.method.replace(/^cake:/, "")}`,
      metric: "studentAcc",
      paper: (r) => (r.method === "cake:full" ? tableAStudent("cake")(r) : undefined),
      section: "MNIST",
      ablation: true,
    }],
  },
  "30_zsdb3kd_mnist": zeroShot("zsdb3kd-mnist"),
  "31_zsdb3kd_fmnist": zeroShot("zsdb3kd-fmnist"),
  "32_zsdb3kd_cifar10": zeroShot("zsdb3kd-cifar10"),
  "33_zsdb3kd_ablations": {
    experiments: ["zsdb3kd-ablations"],
    rows: [{
      experiment: "zsdb3kd-ablations",
      label: (r) => `after ${String(r.config.iteration ?? "?").padStart(2, "0")} iterations`,
      metric: "testAcc",
      section: "Accuracy vs optimisation iterations",
      ablation: true,
    }],
  },
  "40_bring_your_own_teacher": {
    experiments: ["byot"],
    rows: [{
      experiment: "byot",
      label: (r) => `DB3-BD student through HTTP (${String(r.config.protocol ?? "remote")})`,
      metric: "testAcc",
      section: "4 · The student",
    }],
  },
};
