#!/usr/bin/env python3
"""attnc's benchmark and device-check harness (docs/bench.md): one entry
point over the scripts of bench/, whose cases bench/cases.py registers.

  python3 bench/harness.py list [--markdown]
  python3 bench/harness.py SUBCOMMAND [CASE ...] [--dry-run] [--out DIR]
                           [--fail-fast] [--force] [--timeout S]

SUBCOMMAND: prepare (here, the build machine: kernels and tools into
devcarry/), check, bench, sanitize, profile (mostly on the GPU machine,
with devcarry carried). Without a CASE, every case that has SUBCOMMAND.
Each step runs from the repository root with PYTHONPATH=python and, on the
device, ATTNC_LIB_DIR at the carried launch library; its output is shown and
kept in OUT/logs/. A step fails on a non-zero exit, its timeout, or a missing
precondition (host steps: build/bin/attn-opt; device steps: a CUDA device
and the carried paths they need; --force skips these checks). At the end
OUT/harness-SUBCOMMAND.{json,md} (bench/results.py: device, date, versions)
and the line "harness: N steps, P passed, F failed"; the exit code is 1 if
a step failed, 2 for a usage error. OUT: --out, else $OUT, else
/tmp/attnc-bench. --dry-run prints the commands and runs nothing.
"""
import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import cases  # noqa: E402
import results  # noqa: E402

USAGE = __doc__.split("\n\n")[1]


class UsageError(Exception):
    pass


def usage_error(msg):
    print(f"harness: error: {msg}", file=sys.stderr)
    print(USAGE, file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------
# list

def case_rows():
    rows = []
    for c in cases.CASES:
        row = {"case": c.name}
        for sub in cases.SUBCOMMANDS:
            row[sub] = c.where(sub) or "-"
        row["carry"] = " ".join(c.carry) or "-"
        row["description"] = c.description
        rows.append(row)
    return rows


def cmd_list(markdown):
    rows = case_rows()
    if markdown:
        print("\n".join(results.table(rows)))
        return 0
    keys = ["case"] + list(cases.SUBCOMMANDS)
    width = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    print("  ".join(k.ljust(width[k]) for k in keys) + "  carry / description")
    for r in rows:
        print("  ".join(r[k].ljust(width[k]) for k in keys) + "  " + r["carry"])
        print(" " * (sum(width.values()) + 2 * len(keys)) + r["description"])
    print(f"{len(rows)} cases; subcommands: {', '.join(cases.SUBCOMMANDS)} "
          "(host: the build machine; device: the GPU machine)")
    return 0


# ----------------------------------------------------------------------------
# Steps

def sanitizer():
    exe = shutil.which("compute-sanitizer")
    if exe:
        return exe
    found = sorted(glob.glob("/usr/local/cuda*/bin/compute-sanitizer"))
    return found[0] if found else "compute-sanitizer"


def expand(step, out, dry):
    """The step's argv, env and stdout with placeholders filled; tokens with
    "*" expanded against the root (not in a dry run)."""
    values = {"py": sys.executable or "python3", "out": out, "root": ROOT,
              "sanitizer": sanitizer() if "{sanitizer}" in step.argv else "compute-sanitizer"}
    argv = []
    for tok in step.argv:
        tok = tok.format(**values)
        matches = sorted(glob.glob(os.path.join(ROOT, tok))) if "*" in tok and not dry else []
        argv += [os.path.relpath(m, ROOT) for m in matches] or [tok]
    env = {k: v.format(**values) for k, v in step.env}
    stdout = step.stdout.format(**values) if step.stdout else None
    return argv, env, stdout


def show(argv, env, stdout):
    text = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    text += (" " if text else "") + shlex.join(argv)
    return text + (f" > {shlex.quote(stdout)}" if stdout else "")


_cuda = None


def have_cuda():
    global _cuda
    if _cuda is None:
        exe = shutil.which("nvidia-smi")
        try:
            _cuda = bool(exe) and subprocess.run([exe, "-L"], capture_output=True,
                                                 timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            _cuda = False
    return _cuda


def precondition(case, sub, step):
    """Why the step cannot run on this machine, or None."""
    if step.where == cases.HOST:
        if not os.path.exists(os.path.join(ROOT, "build", "bin", "attn-opt")):
            return ("a host step needs the MLIR build (build/bin/attn-opt is missing): run it "
                    "on the build machine")
        return None
    if not have_cuda():
        return ("a device step needs a CUDA device (nvidia-smi -L failed here): run it on "
                "the GPU machine, carrying devcarry")
    missing = [p for p in step.needs if not os.path.exists(os.path.join(ROOT, p))]
    if missing:
        return (f"missing {', '.join(missing)}: run `python3 bench/harness.py prepare "
                f"{case.name}` on the build machine and carry devcarry")
    if step.argv[0] == "{sanitizer}" and not os.path.exists(sanitizer()) \
            and not shutil.which(sanitizer()):
        return "compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
    return None


def default_env(where):
    env = dict(os.environ)
    py = os.path.join(ROOT, "python")
    env["PYTHONPATH"] = py + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if where == cases.DEVICE and not env.get("ATTNC_LIB_DIR"):
        for d in ("devcarry/tools/lib", "devcarry/lib"):
            if os.path.exists(os.path.join(ROOT, d, "libattnc_runtime.so")):
                env["ATTNC_LIB_DIR"] = os.path.join(ROOT, d)
                break
    return env


def run_step(argv, env, stdout, timeout, log_path):
    """Runs one command, showing its output and keeping it in log_path
    (stdout goes to the file `stdout` instead when given). Returns (rc,
    note)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    out_file = None
    if stdout:
        os.makedirs(os.path.dirname(os.path.abspath(stdout)) or ".", exist_ok=True)
        out_file = open(stdout, "w")
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True,
                                stdout=out_file or subprocess.PIPE,
                                stderr=subprocess.PIPE if out_file else subprocess.STDOUT,
                                text=True, errors="replace")
    except OSError as e:
        if out_file:
            out_file.close()
        return 127, f"cannot start: {e}"
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(proc.pid, 9)  # the step's own process group
        except OSError:
            pass

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    with open(log_path, "w") as log:
        stream = proc.stderr if out_file else proc.stdout
        try:
            for line in stream:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
            rc = proc.wait()
        except KeyboardInterrupt:  # take the step's processes down with us
            if timer:
                timer.cancel()
            kill()
            raise
    if timer:
        timer.cancel()
    if out_file:
        out_file.close()
    if timed_out:
        return rc if rc else 124, f"timed out after {timeout} s"
    return rc, ""


def plan(sub, names):
    """(case, step) pairs of `sub` for the named cases (all that have it)."""
    if names:
        unknown = [n for n in names if n not in cases.BY_NAME]
        if unknown:
            raise UsageError(f"unknown case {', '.join(map(repr, unknown))} (known: "
                             f"{', '.join(cases.BY_NAME)})")
        chosen = [cases.BY_NAME[n] for n in names]
        lacking = [c for c in chosen if sub not in c.steps]
        if lacking:
            c = lacking[0]
            raise UsageError(f"case '{c.name}' has no '{sub}' step (it has: "
                             f"{', '.join(s for s in cases.SUBCOMMANDS if s in c.steps)})")
    else:
        chosen = [c for c in cases.CASES if sub in c.steps]
    return [(c, s) for c in chosen for s in c.steps[sub]]


def cmd_run(sub, names, a):
    steps = plan(sub, names)
    out = os.path.abspath(a.out or os.environ.get("OUT") or "/tmp/attnc-bench")
    if a.dry_run:
        last = None
        for case, step in steps:
            if case is not last:
                print(f"# {case.name}: {case.description}")
                if case.carry and step.where == cases.DEVICE:
                    print(f"#   carry: {' '.join(case.carry)}")
                last = case
            argv, env, stdout = expand(step, out, dry=True)
            print(f"[{sub} {case.name}] {step.where}: {show(argv, env, stdout)}")
        print(f"harness: {len(steps)} steps, 0 passed, 0 failed (dry run: nothing ran)")
        return 0
    os.makedirs(out, exist_ok=True)
    done = {}   # (where, argv, env, stdout) -> status of a step already run
    rows = []
    counts = {"PASS": 0, "FAIL": 0}
    stop = False
    for i, (case, step) in enumerate(steps, 1):
        argv, env_extra, stdout = expand(step, out, dry=False)
        text = show(argv, env_extra, stdout)
        row = {"case": case.name, "subcommand": sub, "where": step.where, "command": text,
               "status": None, "rc": None, "seconds": None, "note": ""}
        rows.append(row)
        key = (step.where, tuple(argv), tuple(sorted(env_extra.items())), stdout)
        if stop:
            row["status"], row["note"] = "NOT RUN", "after an earlier failure (--fail-fast)"
            continue
        print(f"== [{i}/{len(steps)}] {sub} {case.name} ({step.where}): {text}", flush=True)
        if key in done:
            row.update(status=done[key]["status"], rc=done[key]["rc"], seconds=0.0,
                       note="the same command ran earlier in this call")
            print(f"-- {row['status']}: {row['note']}", flush=True)
            counts[row["status"]] += 1
            continue
        why = None if a.force else precondition(case, sub, step)
        if why:
            row.update(status="FAIL", note=why)
            print(f"-- FAIL: {why}", flush=True)
        else:
            env = default_env(step.where)
            env.update(env_extra)
            log = os.path.join(out, "logs", f"{sub}.{case.name}.{i}.log")
            timeout = a.timeout or step.timeout
            t0 = time.time()
            rc, note = run_step(argv, env, stdout, timeout, log)
            row.update(status="PASS" if rc == 0 and not note else "FAIL", rc=rc,
                       seconds=round(time.time() - t0, 1), note=note)
            print(f"-- {row['status']} rc={rc} {row['seconds']} s{(': ' + note) if note else ''}"
                  f" (log: {os.path.relpath(log, out)} in {out})", flush=True)
        done[key] = row
        counts[row["status"]] += 1
        if row["status"] == "FAIL" and a.fail_fast:
            stop = True
    not_run = len(steps) - counts["PASS"] - counts["FAIL"]
    summary = (f"harness: {len(steps)} steps, {counts['PASS']} passed, {counts['FAIL']} failed"
               + (f", {not_run} not run" if not_run else ""))
    try:
        j, m = results.write(os.path.join(out, f"harness-{sub}.json"), rows,
                             title=f"attnc harness: {sub} {' '.join(names) or '(all cases)'}",
                             columns=[("case", "case", "{}"), ("where", "where", "{}"),
                                      ("status", "status", "{}"), ("rc", "rc", "{}"),
                                      ("s", "seconds", "{}"), ("command", "command", "`{}`"),
                                      ("note", "note", "{}")],
                             fields={"subcommand": sub, "cases": names, "summary": summary})
        print(f"results: {j}, {m}")
    except Exception as e:  # noqa: BLE001 - the steps' outcome stands
        print(f"harness: could not write the summary files: {type(e).__name__}: {e}")
    print(summary)
    return 1 if counts["FAIL"] or not_run else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="harness.py", add_help=True,
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("subcommand", nargs="?", help="list, " + ", ".join(cases.SUBCOMMANDS))
    ap.add_argument("cases", nargs="*", help="case names (bench/cases.py); none: all")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument("--out", help="output directory (default $OUT, else /tmp/attnc-bench)")
    ap.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    ap.add_argument("--force", action="store_true",
                    help="skip the host/device/carry precondition checks")
    ap.add_argument("--timeout", type=int, help="seconds per step (overrides the registry's)")
    ap.add_argument("--markdown", action="store_true", help="list: a markdown table")
    a = ap.parse_args(argv)
    sub = a.subcommand
    if not sub:
        return usage_error("no subcommand (list, " + ", ".join(cases.SUBCOMMANDS) + ")")
    if sub == "list":
        if a.cases:
            return usage_error("list takes no case")
        return cmd_list(a.markdown)
    if sub not in cases.SUBCOMMANDS:
        return usage_error(f"unknown subcommand '{sub}' (known: list, "
                           f"{', '.join(cases.SUBCOMMANDS)})")
    try:
        return cmd_run(sub, a.cases, a)
    except UsageError as e:
        return usage_error(str(e))


if __name__ == "__main__":
    sys.exit(main())
