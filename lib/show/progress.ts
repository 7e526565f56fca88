/**
 * Live progress reporting for long work (training epochs, query loops).
 *
 * One call site, three renderings chosen automatically:
 * - **jupyter**: inside `deno jupyter --kernel`, one display that is updated in place through
 *   `Deno.jupyter.display(bundle, {display_id, update: true})`;
 * - **tty**: stderr is a terminal, one line redrawn with `\r` (bar, %, rate, ETA, info);
 * - **plain**: anything else (CI logs, pipes), sparse lines on stderr, one per 10 % step;
 * - **off**: `BKD_PROGRESS=0`, nothing at all.
 *
 * Redraws are throttled (at most ten per second) so that calling `update` once per batch is cheap.
 *
 * @module
 */

/** How a progress bar is rendered. */
export type ProgressMode = "jupyter" | "tty" | "plain" | "off";

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  /** Short name shown before the bar, e.g. `"teacher epoch 3"`. */
  label: string;
  /** Number of units of work; `0` or less means unknown (no bar, no ETA). */
  total: number;
  /** Unit name for the rate, e.g. `"img"`, `"batch"`, `"query"` (default `"it"`). */
  unit?: string;
  /** Force a rendering; default is detected from the environment (see {@link detectProgressMode}). */
  mode?: ProgressMode;
  /** Where tty/plain text goes (default: stderr). For tests. */
  write?: (text: string) => void;
  /** Clock in milliseconds (default `performance.now()`). For tests. */
  now?: () => number;
  /** Minimum milliseconds between two redraws (default 100, i.e. ≤ 10 redraws per second). */
  minIntervalMs?: number;
  /** Plain mode: also print a line when this many seconds passed since the last one (default 60). */
  heartbeatSec?: number;
  /**
   * Jupyter mode: reuse this display id, so successive bars (e.g. one per epoch) replace each other
   * in a single output instead of adding one output each. Default: a fresh id per bar.
   */
  displayId?: string;
}

/** A running progress bar. */
export interface Progress {
  /** Report that `done` units (cumulative, not an increment) are finished; `info` is shown after the bar. */
  update(done: number, info?: string): void;
  /** Finish: draw the final state with an optional summary. Later calls are ignored. */
  done(summary?: string): void;
  /**
   * Resolve once the last drawn state has reached the notebook. Only matters in Jupyter, where a
   * display message is sent when the event loop runs: code that computes synchronously between
   * updates should `await p.flush()` now and then (cheap: resolves at once when nothing is pending).
   */
  flush(): Promise<void>;
}

/** A snapshot of progress as used by {@link formatProgressLine}. */
export interface ProgressState {
  /** Label of the bar. */
  label: string;
  /** Units finished. */
  done: number;
  /** Units in total (≤ 0: unknown). */
  total: number;
  /** Unit name. */
  unit: string;
  /** Seconds since the bar was created. */
  elapsedSec: number;
  /** Free text after the bar. */
  info?: string;
}

const BAR_WIDTH = 24;

/** True when running inside the Deno Jupyter kernel with a working `Deno.jupyter.display`. */
export function inJupyter(): boolean {
  if (!("jupyter" in Deno)) return false;
  try {
    // Outside `deno jupyter` the property exists but throws on access.
    return typeof (Deno as unknown as { jupyter: { display?: unknown } }).jupyter.display === "function";
  } catch {
    return false;
  }
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * The rendering that {@link createProgress} picks by default: `off` when `BKD_PROGRESS=0`, `jupyter`
 * inside the kernel, `tty` when stderr is a terminal, `plain` otherwise.
 */
export function detectProgressMode(): ProgressMode {
  const env = envGet("BKD_PROGRESS");
  if (env === "0" || env === "off" || env === "false") return "off";
  if (inJupyter()) return "jupyter";
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch {
    tty = false;
  }
  return tty ? "tty" : "plain";
}

/** Format seconds compactly: `42s`, `3m05s`, `1h02m`. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "?";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function formatRate(perSec: number, unit: string): string {
  if (!Number.isFinite(perSec) || perSec <= 0) return `? ${unit}/s`;
  if (perSec >= 100) return `${Math.round(perSec).toLocaleString("en-US")} ${unit}/s`;
  if (perSec >= 1) return `${perSec.toFixed(1)} ${unit}/s`;
  return `${(1 / perSec).toFixed(1)} s/${unit}`;
}

function fraction(s: ProgressState): number | undefined {
  if (!(s.total > 0)) return undefined;
  return Math.min(1, Math.max(0, s.done / s.total));
}

/**
 * One line of text for a progress state, e.g.
 * `train  [#########...............]  38%  380/1000 img  1,520 img/s  ETA 0s  loss 0.41`.
 * `bar: false` leaves out the bar (used for plain log lines).
 */
export function formatProgressLine(s: ProgressState, opts: { bar?: boolean } = {}): string {
  const f = fraction(s);
  const rate = s.elapsedSec > 0 ? s.done / s.elapsedSec : NaN;
  const parts = [s.label];
  if (f !== undefined) {
    if (opts.bar !== false) {
      const fill = Math.round(f * BAR_WIDTH);
      parts.push(`[${"#".repeat(fill)}${".".repeat(BAR_WIDTH - fill)}]`);
    }
    parts.push(`${Math.floor(f * 100).toString().padStart(3)}%`);
    parts.push(`${s.done}/${s.total} ${s.unit}`);
  } else {
    parts.push(`${s.done} ${s.unit}`);
  }
  parts.push(formatRate(rate, s.unit));
  if (f !== undefined && f < 1 && rate > 0) parts.push(`ETA ${formatDuration((s.total - s.done) / rate)}`);
  else parts.push(formatDuration(s.elapsedSec));
  if (s.info) parts.push(s.info);
  return parts.join("  ");
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The MIME bundle shown in Jupyter for a progress state (HTML `<progress>` + text fallback). */
export function progressBundle(s: ProgressState, final = false): Record<string, string> {
  const f = fraction(s);
  const text = formatProgressLine(s);
  const rest = escapeHtml(formatProgressLine(s, { bar: false }).slice(s.label.length).trim());
  const bar = f === undefined
    ? ""
    : `<progress value="${s.done}" max="${s.total}" style="width:16em"></progress> `;
  const mark = final ? "✔ " : "";
  const htmlText = `<div style="font-family:monospace;white-space:pre">${mark}<b>${
    escapeHtml(s.label)
  }</b> ${bar}${rest}</div>`;
  return { "text/plain": mark + text, "text/html": htmlText };
}

let displayCounter = 0;
/** Caller-chosen display ids already shown in this kernel (later bars update them). */
const shownIds = new Set<string>();

function stderrWriter(): (text: string) => void {
  const enc = new TextEncoder();
  return (text) => {
    try {
      Deno.stderr.writeSync(enc.encode(text));
    } catch {
      // stderr closed: progress is best effort
    }
  };
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 120;
  }
}

/**
 * Start a progress bar. `update(done, info)` is cheap to call per batch; `done(summary)` draws the
 * final state. See the module doc for how it renders.
 */
export function createProgress(opts: ProgressOptions): Progress {
  const mode = opts.mode ?? detectProgressMode();
  const now = opts.now ?? (() => performance.now());
  const minInterval = opts.minIntervalMs ?? 100;
  const heartbeatMs = (opts.heartbeatSec ?? 60) * 1000;
  const write = opts.write ?? stderrWriter();
  const start = now();
  const state: ProgressState = {
    label: opts.label,
    done: 0,
    total: opts.total,
    unit: opts.unit ?? "it",
    elapsedSec: 0,
  };
  let lastDraw = -Infinity;
  let finished = false;
  let lastDecile = 0;
  let lastLineAt = start;
  let pending: Promise<void> | undefined;
  const displayId = opts.displayId ?? `bkd-progress-${Date.now().toString(36)}-${displayCounter++}`;
  let displayed = opts.displayId !== undefined && shownIds.has(opts.displayId);

  const refresh = (done: number, info?: string) => {
    state.done = done;
    if (info !== undefined) state.info = info;
    state.elapsedSec = (now() - start) / 1000;
  };

  const jupyterShow = (final: boolean) => {
    const jup = (Deno as unknown as {
      jupyter: {
        display(b: unknown, o: { raw: boolean; display_id: string; update?: boolean }): Promise<void>;
      };
    }).jupyter;
    const bundle = progressBundle(state, final);
    // `raw: true` must be explicit once options are given, otherwise the bundle is shown as an object.
    const p = jup.display(bundle, { raw: true, display_id: displayId, update: displayed });
    displayed = true;
    shownIds.add(displayId);
    const sent: Promise<void> = p.catch(() => {});
    pending = sent;
    sent.then(() => {
      if (pending === sent) pending = undefined;
    });
  };

  const ttyShow = (final: boolean) => {
    const cols = terminalColumns();
    let line = formatProgressLine(state);
    if (!final && line.length > cols - 1) line = line.slice(0, cols - 1);
    write(`\r${line}\x1b[K${final ? "\n" : ""}`);
  };

  return {
    update(done: number, info?: string) {
      if (finished || mode === "off") return;
      const t = now();
      if (mode === "plain") {
        refresh(done, info);
        const f = fraction(state);
        const decile = f === undefined ? 0 : Math.floor(f * 10);
        const due = (f !== undefined && decile > lastDecile && decile < 10) || t - lastLineAt >= heartbeatMs;
        if (!due) return;
        lastDecile = Math.max(lastDecile, decile);
        lastLineAt = t;
        write(formatProgressLine(state, { bar: false }) + "\n");
        return;
      }
      if (t - lastDraw < minInterval) {
        // Keep the numbers current for the next redraw without drawing now.
        state.done = done;
        if (info !== undefined) state.info = info;
        return;
      }
      lastDraw = t;
      refresh(done, info);
      if (mode === "jupyter") jupyterShow(false);
      else ttyShow(false);
    },
    done(summary?: string) {
      if (finished) return;
      finished = true;
      if (mode === "off") return;
      refresh(state.done, summary ?? state.info);
      if (mode === "jupyter") jupyterShow(true);
      else if (mode === "tty") ttyShow(true);
      else write(formatProgressLine(state, { bar: false }) + "\n");
    },
    flush() {
      return pending ?? Promise.resolve();
    },
  };
}
