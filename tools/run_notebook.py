#!/usr/bin/python3
"""Execute one notebook headlessly with the repo's Deno kernel (deno-bkd).

Run with Debian's /usr/bin/python3: nbclient/nbformat are Debian packages that a pyenv python
earlier on PATH cannot import.

  /usr/bin/python3 tools/run_notebook.py IN.ipynb OUT.ipynb [-p name=value ...] [--timeout S]

Why not `jupyter nbconvert --execute`: Deno 2.9 often reports the kernel `idle` before a cell's
outputs, and nbclient stops reading iopub at idle, silently dropping outputs. This runner keeps
reading after idle until the cell's iopub channel has been quiet for a grace window.

Exit codes: 0 ok, 1 a cell failed (or the kernel died / timed out), 2 bad usage or input.
The executed copy is written to OUT even when a cell fails, so the failure can be inspected; the
source notebook is never modified.
"""

import argparse
import asyncio
import json
import os
import re
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
from nbclient.util import ensure_async  # noqa: E402

# CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks).
ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
IDENT_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def strip_ansi(text):
    return ANSI_RE.sub("", text)


class GraceClient(NotebookClient):
    """NotebookClient that keeps reading a cell's iopub messages after the kernel says idle."""

    # Seconds of silence (for this cell's messages) after idle before the cell counts as done.
    grace = 0.25
    late_messages = 0

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        # Remember which cell is running so a failure can name it.
        self.current_index = cell_index
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            # On a timeout nbclient leaves the iopub reader pending; stop it so asyncio does not
            # complain about a destroyed pending task at exit.
            task = getattr(self, "poll_task", None)
            if task is not None and not task.done():
                task.cancel()

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
    if index is None:
        print("run_notebook: no cell tagged 'parameters'; injecting at the top", file=sys.stderr)
    lines = ["// Parameters injected by tools/run_notebook.py"]
    for name, value in params.items():
        literal = json.dumps(value)  # JSON literals are valid TypeScript expressions
        kind = declared.get(name)
        if kind == "const":
            raise ValueError(f"parameter {name!r} is declared with const; declare it with let")
        if kind is None:
            # Not a declared parameter: declare it so the cell still runs, but say so.
            print(f"run_notebook: parameter {name!r} is not declared in the parameters cell",
                  file=sys.stderr)
            lines.append(f"var {name} = {literal};")
        else:
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
            if not traceback or headline not in traceback[0]:
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
