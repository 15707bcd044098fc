"""The one results writer of bench/ (docs/bench.md): a list of row dicts plus
metadata -> a JSON file and a markdown table beside it.

Metadata (`metadata()`), the same in every result file:
  device     torch.cuda.get_device_name() when torch imports and sees a CUDA
             device, else "cpu"
  date       the UTC date, ISO 8601 (YYYY-MM-DD)
  timestamp  the UTC time, ISO 8601 (YYYY-MM-DDTHH:MM:SSZ)
  versions   attnc (project(attnc ... VERSION x.y.z) of the top-level
             CMakeLists.txt), torch, triton, CUDA (the toolkit torch was
             built with) and the driver (nvidia-smi); None where absent

  write(path, rows, title=..., columns=..., fields=..., notes=...)
writes `path` (JSON: the metadata, `fields`, and `rows` under "rows") and
`path` with .md for .json (a title line, a line with device, date and
versions, the table, `notes`). Importing this module imports no torch; it is
imported only when the metadata is asked for.

From the shell (rows as a JSON list of objects, '-' for stdin):
  python3 bench/results.py --rows ROWS.json --out OUT.json [--title T]
"""
import datetime
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def attnc_version(root=ROOT):
    """x.y.z of project(attnc ... VERSION x.y.z) in root/CMakeLists.txt
    (None when the file or the line is missing)."""
    try:
        with open(os.path.join(root, "CMakeLists.txt")) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"project\(\s*attnc\b[^)]*?\bVERSION\s+([0-9]+(?:\.[0-9]+)*)", text)
    return m.group(1) if m else None


def _torch():
    """The torch module if it is installed (imported once), else None."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch
        return torch
    except Exception:  # noqa: BLE001 - a broken install counts as none
        return None


def _dist_version(name):
    """A package's installed version without importing it."""
    try:
        from importlib import metadata as md
        return md.version(name)
    except Exception:  # noqa: BLE001
        return None


def _driver_version():
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = r.stdout.split()
    return lines[0] if r.returncode == 0 and lines else None


def device_name(torch=None):
    """torch.cuda.get_device_name() where torch and a CUDA device exist, else
    "cpu"."""
    torch = torch or _torch()
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except Exception:  # noqa: BLE001
        pass
    return "cpu"


def metadata(device=None):
    """device, date, timestamp and versions (module docstring). `device`
    overrides the detected device name."""
    torch = _torch()
    now = datetime.datetime.now(datetime.timezone.utc)
    cuda = None
    if torch is not None:
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
    versions = {
        "attnc": attnc_version(),
        "torch": getattr(torch, "__version__", None) if torch is not None else None,
        "triton": _dist_version("triton"),
        "cuda": cuda,
        "driver": _driver_version(),
        "python": "%d.%d.%d" % sys.version_info[:3],
    }
    return {"device": device or device_name(torch),
            "date": now.strftime("%Y-%m-%d"),
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "versions": versions}


def header(meta):
    """One line: device, date and versions."""
    v = meta.get("versions", {})
    names = (("attnc", "attnc"), ("torch", "torch"), ("triton", "triton"),
             ("cuda", "CUDA"), ("driver", "driver"))
    vs = ", ".join(f"{label} {v[k]}" for k, label in names if v.get(k))
    return f"device: {meta['device']}; date: {meta['date']} (UTC); {vs or 'no versions'}"


def _cell(value, fmt="{}"):
    if value is None:
        return "-"
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, separators=(",", ":"))
        fmt = "{}"
    try:
        text = fmt.format(value)
    except (ValueError, TypeError):
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def columns_of(rows):
    """(header, key, "{}") for every key of `rows`, in first-seen order."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return [(k, k, "{}") for k in keys]


def table(rows, columns=None):
    """Markdown table lines; `columns`: (header, key, format) triples (all
    keys, "{}", by default); a missing or None value prints as "-"."""
    columns = columns or columns_of(rows)
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), f) for _, k, f in columns) + " |")
    return lines


def markdown(rows, title, meta, columns=None, notes=()):
    """The markdown file's text: title, the metadata line, the table, notes."""
    lines = [f"# {title}", "", header(meta), ""] + table(rows, columns)
    if notes:
        lines += [""] + list(notes)
    return "\n".join(lines) + "\n"


def md_path(path):
    return path[:-5] + ".md" if path.endswith(".json") else path + ".md"


def write(path, rows, title, columns=None, fields=None, notes=(), meta=None,
          rows_key="rows", device=None):
    """Writes the JSON `path` ({metadata, **fields, rows_key: rows}; a key of
    `fields` wins over the metadata's) and its markdown (md_path(path)).
    Returns (json path, markdown path)."""
    meta = meta or metadata(device)
    doc = dict(meta)
    doc.update(fields or {})
    doc[rows_key] = rows
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    md = md_path(path)
    with open(md, "w") as f:
        f.write(markdown(rows, title, meta, columns, notes))
    return path, md


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Writes rows as JSON and a markdown table "
                                 "with device, date and versions.")
    ap.add_argument("--rows", required=True, help="JSON list of objects ('-': stdin)")
    ap.add_argument("--out", required=True, help="the JSON file (the .md goes beside it)")
    ap.add_argument("--title", default="attnc results")
    a = ap.parse_args(argv)
    if a.rows == "-":
        rows = json.load(sys.stdin)
    else:
        with open(a.rows) as f:
            rows = json.load(f)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        print("results.py: --rows must hold a JSON list of objects", file=sys.stderr)
        return 2
    j, m = write(a.out, rows, a.title)
    print(f"results: {len(rows)} rows -> {j}, {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
