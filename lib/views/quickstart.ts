/**
 * Views of the quickstart (notebook 00): the two-moons models with their names and accuracies, the
 * MNIST teacher's row, the throughput bars and the run records.
 *
 * @module
 */
import type { QuickstartResult } from "../experiments/quickstart.ts";
import type { MoonsModel } from "../experiments/quickstart_units.ts";

/** The three two-moons models with their printed names, teacher first. */
export function moonsModels(r: QuickstartResult): (MoonsModel & { name: string })[] {
  const m = r.moons;
  return [
    { name: "teacher (real points)", ...m.teacher },
    { name: "student: hard labels", ...m.hardStudent },
    { name: "student: soft labels", ...m.softStudent },
  ];
}

/** Accuracy (%) of each two-moons model. */
export function moonsRows(r: QuickstartResult): { model: string; "accuracy (%)": number }[] {
  return moonsModels(r).map((x) => ({ model: x.name, "accuracy (%)": 100 * x.accuracy }));
}

/** The MNIST teacher: accuracy, epochs, training and inference throughput. */
export function mnistTeacherRow(r: QuickstartResult): Record<string, number | boolean> {
  const t = r.mnist;
  return {
    "test accuracy (%)": 100 * t.teacherAcc,
    epochs: t.teacherEpochs,
    "train img/s": t.trainImagesPerSec,
    "train workers": t.trainWorkers,
    "infer img/s (1 thread)": t.inferImagesPerSecInProcess,
    "infer img/s (pool)": t.inferImagesPerSecPool,
    "loaded from cache": t.fromCache,
  };
}

/** Throughput bars: training (when the teacher was trained) and inference (one thread, the pool). */
export function throughputBars(r: QuickstartResult): { what: string; "images/s": number }[] {
  const t = r.mnist;
  return [
    { what: "train (teacher run)", "images/s": t.trainImagesPerSec },
    { what: "infer, 1 thread", "images/s": t.inferImagesPerSecInProcess },
    { what: "infer, pool", "images/s": t.inferImagesPerSecPool },
  ];
}

/** The run records: id → method and wall time. */
export function quickstartRecordsView(r: QuickstartResult): Record<string, string> {
  return Object.fromEntries(
    r.records.map((rec) => [rec.id, `${rec.method}: ${rec.wallTimeSec.toFixed(1)} s`]),
  );
}
