#!/usr/bin/python3
"""Execute one notebook headlessly with the repo's Deno kernel (deno-bkd).

Run with Debian's /usr/bin/python3: nbclient/nbformat are Debian packages that a pyenv python
earlier on PATH cannot import.

  /usr/bin/python3 tools/run_notebook.py IN.ipynb OUT.ipynb [-p name=value ...] [--timeout S]

Why not `jupyter nbconvert --execute`: Deno 2.9 often reports the kernel `idle` before a cell's
outputs, and nbclient stops reading iopub at idle, silently dropping outputs. This runner keeps
reading after idle until the cell's iopub channel has been quiet for a grace window.

Errors a cell's own completion does not show also fail the run: before the first cell the runner
installs (invisibly, no cell is added) listeners for uncaught exceptions (e.g. thrown in a timer) and
unhandled promise rejections, and after every cell it asks the kernel whether any were recorded. One
was: the cell that was running (or had just finished) fails, with the error in its outputs.

A parameter the notebook's `parameters` cell does not declare is an error (exit 2) that lists the
declared ones: a typo must not run a notebook with its default value.

Progress goes to stderr while the notebook runs: the notebook, the cell being executed (n/N and its
first line), its elapsed time and the latest progress-bar text the cell drew (the kit's bars update a
Jupyter display; the runner reads those messages). On a terminal it is one line redrawn with a
carriage return; otherwise (CI logs, pipes) a plain line at most every 10 s. `--progress off` or
BKD_PROGRESS=0 turns it off.

Exit codes: 0 ok, 1 a cell failed (or the kernel died / timed out), 2 bad usage or input.
The executed copy is written to OUT even when a cell fails, so the failure can be inspected; the
source notebook is never modified.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from queue import Empty

# Make the repo's kernelspec visible before jupyter_core computes its search path.
_KERNELS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter")
os.environ["JUPYTER_PATH"] = os.pathsep.join(
    p for p in [_KERNELS_ROOT, os.environ.get("JUPYTER_PATH", "")] if p
)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import (  # noqa: E402
    CellExecutionComplete,
    CellExecutionError,
    CellTimeoutError,
    DeadKernelError,
)
from nbclient.util import ensure_async, run_sync  # noqa: E402

# CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks).
ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
IDENT_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def strip_ansi(text):
    return ANSI_RE.sub("", text)


# Installed in the kernel before the first cell: records errors that no cell's execution reports.
GUARD_JS = r"""
if (!globalThis.__bkdStrayErrors) {
  const errors = [];
  const text = (v) => v instanceof Error ? (v.stack || `${v.name}: ${v.message}`) : String(v);
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    errors.push({ kind: "uncaught exception (thrown in a timer or callback)", text: text(e.error ?? e.message) });
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    errors.push({ kind: "unhandled promise rejection", text: text(e.reason) });
  });
  globalThis.__bkdStrayErrors = {
    check() {
      if (errors.length === 0) return;
      const all = errors.splice(0);
      const err = new Error(
        `${all.length} error(s) outside the cell's own execution:\n` +
          all.map((x) => `${x.kind}: ${x.text}`).join("\n"),
      );
      err.name = all[0].kind.startsWith("unhandled") ? "UnhandledRejection" : "UncaughtException";
      err.stack = `${err.name}: ${err.message}`;
      throw err;
    },
  };
}
void 0;
"""
CHECK_JS = "globalThis.__bkdStrayErrors?.check(); void 0;"


class Progress:
    """The runner's status line on stderr: notebook, cell n/N, its first line, elapsed, progress text."""

    def __init__(self, name, mode, total_cells):
        self.name = name
        self.mode = mode  # "tty", "plain" or "off"
        self.total = total_cells
        self.number = 0
        self.head = ""
        self.cell_t0 = None
        self.bar = ""
        self.last_plain = time.monotonic()
        self.drawn = False

    def cell(self, number, source):
        self.number = number
        lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
        self.head = lines[0] if lines else ""
        self.cell_t0 = time.monotonic()
        self.bar = ""
        self.draw()

    def progress_text(self, text):
        self.bar = " ".join(strip_ansi(text).split())
        self.draw()

    def line(self):
        elapsed = 0 if self.cell_t0 is None else time.monotonic() - self.cell_t0
        m, sec = divmod(int(elapsed), 60)
        parts = [self.name, f"cell {self.number}/{self.total}", f"{m}:{sec:02d}", self.head[:60]]
        if self.bar:
            parts.append("| " + self.bar)
        return "  ".join(parts)

    def draw(self, tick=False):
        if self.mode == "tty":
            line = self.line()
            if sys.stderr.isatty():  # fit the terminal, or the line wraps and \r cannot redraw it
                line = line[: max(10, shutil.get_terminal_size((120, 24)).columns - 1)]
            sys.stderr.write("\r" + line + "\x1b[K")
            sys.stderr.flush()
            self.drawn = True
        elif self.mode == "plain" and tick and time.monotonic() - self.last_plain >= 10:
            self.last_plain = time.monotonic()
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()

    def clear(self):
        if self.mode == "tty" and self.drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.drawn = False

    async def tick(self):
        while True:
            await asyncio.sleep(1.0)
            self.draw(tick=True)


def progress_mode(choice):
    if choice == "auto":
        if os.environ.get("BKD_PROGRESS", "").lower() in ("0", "off", "false"):
            return "off"
        return "tty" if sys.stderr.isatty() else "plain"
    return choice


class GraceClient(NotebookClient):
    """NotebookClient that keeps reading a cell's iopub messages after the kernel says idle."""

    # Seconds of silence (for this cell's messages) after idle before the cell counts as done.
    grace = 0.25
    late_messages = 0
    progress = None
    guard_installed = False
    code_cell_number = 0

    async def async_execute(self, *args, **kwargs):
        ticker = asyncio.ensure_future(self.progress.tick()) if self.progress else None
        try:
            return await super().async_execute(*args, **kwargs)
        finally:
            if ticker is not None:
                ticker.cancel()
            if self.progress:
                self.progress.clear()

    # nbclient binds `execute` to its own `async_execute`; bind it to the override above.
    execute = run_sync(async_execute)

    async def _hidden(self, code):
        """Run `code` in the kernel without a cell; the shell reply's content."""
        msg_id = await ensure_async(self.kc.execute(code, silent=True, store_history=False))
        reply = await self.async_wait_for_reply(msg_id)
        return {} if reply is None else reply["content"]

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        # Remember which cell is running so a failure can name it.
        self.current_index = cell_index
        runs = cell.cell_type == "code" and cell.source.strip() != ""
        if runs and not self.guard_installed:
            content = await self._hidden(GUARD_JS)
            if content.get("status") != "ok":
                raise RuntimeError(f"could not install the error listeners: {content.get('evalue')}")
            self.guard_installed = True
        if runs and self.progress:
            self.code_cell_number += 1
            self.progress.cell(self.code_cell_number, cell.source)
        try:
            result = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            # On a timeout nbclient leaves the iopub reader pending; stop it so asyncio does not
            # complain about a destroyed pending task at exit.
            task = getattr(self, "poll_task", None)
            if task is not None and not task.done():
                task.cancel()
        if runs:
            await self._check_stray_errors(cell)
        return result

    async def _check_stray_errors(self, cell):
        """Fail `cell` if an uncaught exception or unhandled rejection was recorded while it ran."""
        content = await self._hidden(CHECK_JS)
        if content.get("status") != "error":
            return
        traceback = content.get("traceback") or []
        cell.outputs.append(nbformat.v4.new_output(
            "error",
            ename=content.get("ename", "Error"),
            evalue=content.get("evalue", ""),
            traceback=traceback,
        ))
        raise CellExecutionError.from_cell_and_msg(cell, content)

    def process_message(self, msg, cell, cell_index):
        if self.progress and msg.get("msg_type") in ("display_data", "update_display_data"):
            content = msg.get("content", {})
            text = content.get("data", {}).get("text/plain")
            if content.get("transient", {}).get("display_id") and isinstance(text, str):
                self.progress.progress_text(text)
        return super().process_message(msg, cell, cell_index)

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        self.poll_task = asyncio.current_task()
        quiet_until = None  # set at idle; pushed back by every later message of this cell
        while True:
            # Before idle: wait as long as it takes (nbclient enforces the cell timeout on the
            # shell reply). After idle: stop once the cell has been silent for `grace` seconds.
            timeout = None if quiet_until is None else max(0.0, quiet_until - time.monotonic())
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                # The kernel says idle, but Deno may still send this cell's outputs: keep reading.
                quiet_until = time.monotonic() + self.grace
                continue
            if quiet_until is not None:
                quiet_until = time.monotonic() + self.grace  # a late output: extend the window
                self.late_messages += 1  # recorded in the notebook: evidence the race happened


def _reject_constant(name):
    # NaN/Infinity are not JSON (Python accepts them); treat such values as plain strings.
    raise ValueError(name)


def parse_params(items):
    """`name=value` pairs; value is JSON when it parses as JSON, else a plain string."""
    params = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not IDENT_RE.match(name):
            raise ValueError(f"bad parameter {item!r}: expected name=value with name an identifier")
        try:
            value = json.loads(raw, parse_constant=_reject_constant)
        except ValueError:
            value = raw
        params[name] = value
    return params


def declared_names(source):
    """Names the parameters cell declares with let/var/const (simple `name =` forms only)."""
    found = {}
    for kind, name in re.findall(r"\b(let|var|const)\s+([A-Za-z_$][A-Za-z0-9_$]*)", source):
        found[name] = kind
    return found


def inject_parameters(nb, params):
    """Insert a cell tagged injected-parameters after the parameters cell (or first, if none)."""
    # A previously executed copy may already carry an injected cell: replace it, never stack them.
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if not params:
        return
    index = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None
    )
    declared = declared_names(nb.cells[index].source) if index is not None else {}
    undeclared = [name for name in params if name not in declared]
    if undeclared:
        where = ("the notebook has no cell tagged 'parameters'" if index is None else
                 "its parameters cell declares " + (", ".join(declared) or "nothing"))
        raise ValueError(
            f"parameter(s) {', '.join(undeclared)} not declared by the notebook ({where}); "
            "check the spelling, or declare it with let in the parameters cell")
    lines = ["// Parameters injected by tools/run_notebook.py"]
    for name, value in params.items():
        literal = json.dumps(value)  # JSON literals are valid TypeScript expressions
        if declared[name] == "const":
            raise ValueError(f"parameter {name!r} is declared with const; declare it with let")
        lines.append(f"{name} = {literal};")
    lines.append("void 0; // keep the cell from echoing the last assignment")
    cell = nbformat.v4.new_code_cell(source="\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(0 if index is None else index + 1, cell)


def clean_outputs(nb):
    """Strip ANSI escapes from textual outputs (NO_COLOR stops Deno's colours, not a cell's own)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = strip_ansi(out["text"])
            if "traceback" in out:
                out["traceback"] = [strip_ansi(t) for t in out["traceback"]]
            for key in ("ename", "evalue"):
                if key in out:
                    out[key] = strip_ansi(out[key])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    out["data"][mime] = strip_ansi(value)


def describe_failure(nb, index, exc):
    """A readable report: cell index, head of its source, error name/message/traceback."""
    lines = []
    cell = nb.cells[index] if index is not None and index < len(nb.cells) else None
    if cell is not None:
        head = cell.source.splitlines()[:5]
        lines.append(f"cell {index} failed (execution_count {cell.get('execution_count')}):")
        lines.extend("  | " + line for line in head)
        if len(cell.source.splitlines()) > 5:
            lines.append("  | ...")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        for err in errors:
            headline = f"{err.get('ename', 'Error')}: {err.get('evalue', '')}"
            traceback = [strip_ansi(t) for t in err.get("traceback", [])]
            # Deno's traceback usually starts with the headline already; don't print it twice.
            if not traceback or headline.splitlines()[0] not in traceback[0]:
                lines.append(headline)
            lines.extend(traceback)
        if errors:
            return "\n".join(lines)
    # No error output captured (kernel death, timeout): fall back to the exception text.
    lines.append(f"{type(exc).__name__}: {strip_ansi(str(exc))}")
    return "\n".join(lines)


def write_atomic(nb, path):
    """Write via a temp file + rename so a reader never sees half a notebook."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Execute a notebook with the deno-bkd kernel.")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="parameter to inject; VALUE is JSON, or a string if it is not JSON")
    ap.add_argument("--timeout", type=float, default=None,
                    help="per-cell timeout in seconds (default: none)")
    ap.add_argument("--startup-timeout", type=float, default=60, help="kernel start timeout (s)")
    ap.add_argument("--grace", type=float, default=GraceClient.grace,
                    help="seconds of iopub silence after idle before a cell is done (default 0.25)")
    ap.add_argument("--kernel", default="deno-bkd", help="kernelspec name (default deno-bkd)")
    ap.add_argument("--cwd", default=None, help="kernel working directory (default: notebook's dir)")
    ap.add_argument("--progress", choices=["auto", "tty", "plain", "off"], default="auto",
                    help="status line on stderr (default auto: tty on a terminal, else plain)")
    args = ap.parse_args(argv)

    try:
        params = parse_params(args.param)
        nb = nbformat.read(args.input, as_version=4)
        inject_parameters(nb, params)
    except (OSError, ValueError, nbformat.reader.NotJSONError) as e:
        print(f"run_notebook: {e}", file=sys.stderr)
        return 2
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        print("run_notebook: output must differ from input (the source is never modified)",
              file=sys.stderr)
        return 2

    cwd = args.cwd or os.path.dirname(os.path.abspath(args.input))
    client = GraceClient(
        nb,
        timeout=None if args.timeout is None or args.timeout <= 0 else int(max(1, args.timeout)),
        startup_timeout=int(args.startup_timeout),
        kernel_name=args.kernel,
        resources={"metadata": {"path": cwd}},
        record_timing=True,
    )
    client.grace = args.grace
    client.current_index = None
    mode = progress_mode(args.progress)
    if mode != "off":
        code_cells = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())
        client.progress = Progress(os.path.basename(args.input), mode, code_cells)

    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    status, error_text, rc = "ok", None, 0
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        status, rc = "failed", 1
        error_text = describe_failure(nb, client.current_index, e)
    except Exception as e:  # kernel failed to start (no deno on PATH, no kernelspec, ...)
        status, rc = "failed", 1
        error_text = describe_failure(nb, client.current_index, e)
    except KeyboardInterrupt:
        status, rc, error_text = "interrupted", 130, "interrupted"
    wall = time.monotonic() - t0

    clean_outputs(nb)
    nb.metadata["kernelspec"] = nb.metadata.get("kernelspec") or {}
    nb.metadata["kernelspec"]["name"] = args.kernel
    nb.metadata["bkd_execution"] = {
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "status": status,
        "parameters": params,
        "source": os.path.relpath(args.input),
        "failed_cell": client.current_index if status != "ok" else None,
        "late_messages_caught": client.late_messages,
    }
    write_atomic(nb, args.output)

    if error_text:
        print(f"run_notebook: {args.input}: {error_text}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
