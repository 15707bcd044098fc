#!/usr/bin/python3
"""Robustness fuzzer for attnc (issue 13, "Fuzzing and sweeps that stay").

Inputs are mutants of the examples (bench/fuzz/mutate.py) and random
attention programs (bench/fuzz/programs.py). Each goes through the tools as
a user's spec does:

  parse    attn-opt --verify-roundtrip          parse, verify, print, reparse
  analyze  attn-opt --attn-analyze-masks
  cpu      attn-opt --attn-compile=target=cpu   FlashAttention loops -> LLVM
  cpu-ref  attn-opt --attn-lower-cpu-reference  the test oracle -> LLVM
  sm_80    attn-aot --target=sm_80              PTX, assembled by ptxas
  sm_90a   attn-aot --target=sm_90a             PTX, assembled by ptxas

(an input the parser or verifier refuses stops after the first stage). The
contract: every stage either succeeds or refuses the input with a diagnostic,
an `error:` line with a source location. Anything else is a violation:

  crash          a signal, an assertion, "PLEASE submit a bug report", LLVM ERROR
  hang           the stage ran past --timeout
  verifier       a pass produced IR that does not verify ("failed to verify",
                 "does not dominate", or an op error that disappears when the
                 stage is rerun with --verify-each=false)
  internal       "failed to legalize", a failed translation, or ptxas refusing
                 the PTX attnc generated
  roundtrip      the printed IR does not parse back to the same module
  unlocated      the stage failed and no error has a location
  no-diagnostic  the stage failed without any error line

Usage (from the project root, after a build):
  bench/fuzz/attn_fuzz.py --seed 1 --budget 150            # what CI runs
  bench/fuzz/attn_fuzz.py --seed $RANDOM --budget 14400 \\
      --out bench/results/fuzz-$(date +%F).json             # hours, new seed
  bench/fuzz/attn_fuzz.py --replay 1:37                     # input 37 of seed 1
  bench/fuzz/attn_fuzz.py --reduce crash.mlir --stage sm_80 # minimize
Inputs depend only on (seed, index), never on timing or the worker count.
Violations are saved with their logs under --save-dir; the JSON summary
counts outcomes per stage and the distinct diagnostics seen.
"""
import argparse
import glob
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mutate  # noqa: E402
import programs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
STAGES = ["parse", "analyze", "cpu", "cpu-ref", "sm_80", "sm_90a"]
VIOLATIONS = ["crash", "hang", "verifier", "internal", "roundtrip", "unlocated",
              "no-diagnostic"]

CRASH = re.compile(r"PLEASE submit a bug report|Stack dump:|Assertion .* failed|"
                   r"LLVM ERROR|UNREACHABLE executed|terminate called|"
                   r"Segmentation fault|AddressSanitizer|double free")
VERIFIER = re.compile(r"failed to verify|does not dominate|verification failed|"
                      r"operand #\d+ does not")
INTERNAL = re.compile(r"failed to legalize|failed to translate|"
                      r"failed to serialize|ptxas (fatal|error)|ptxas.*: error|"
                      r"LLVM Translation failed|unrealized_conversion_cast")
ROUNDTRIP = re.compile(r"roundtrip")
# A source location, or a tool's refusal naming the function it refuses.
LOCATED = re.compile(r"^((?!<unknown>)[^:\s][^:]*:\d+:\d+: error: |"
                     r"attn-\w+: error: '[\w$.-]+': )", re.M)
ERROR_LINE = re.compile(r"^(.*?)error: (.*)$", re.M)
ATTN_OP = re.compile(r"'(attn\.\w+|func\.func|builtin\.module)' op")


class Options:
    """What a worker needs (picklable)."""

    def __init__(self, a):
        self.bin = a.bin
        self.timeout = a.timeout
        self.ptxas = a.ptxas
        self.stages = a.stages
        self.save_dir = a.save_dir
        self.seed = a.seed
        self.mode = a.mode
        self.corpus = load_corpus(a.corpus)


def load_corpus(patterns):
    files = sorted(f for p in patterns for f in glob.glob(os.path.join(ROOT, p)))
    return [(os.path.relpath(f, ROOT), open(f).read()) for f in files]


def make_input(opts, index):
    """The input `index` of the run: (origin, text)."""
    r = random.Random(f"{opts.seed}:{index}")
    mode = opts.mode if opts.mode != "both" else ("mutate", "generate")[index % 2]
    if mode == "generate":
        return "generated", programs.program(r, f"f{index}")
    name, text = r.choice(opts.corpus)
    others = [t for _, t in opts.corpus]
    return name, mutate.mutate(r, text, others)


def stage_command(opts, stage, path, outdir):
    opt = [os.path.join(opts.bin, "attn-opt"), path, "--mlir-print-op-on-diagnostic=false",
           "-o", os.devnull]
    if stage == "parse":
        return opt + ["--verify-roundtrip"]
    if stage == "analyze":
        return opt + ["--attn-analyze-masks"]
    if stage == "cpu":
        return opt + ["--attn-compile=target=cpu"]
    if stage == "cpu-ref":
        return opt + ["--attn-lower-cpu-reference"]
    aot = [os.path.join(opts.bin, "attn-aot"), path, f"--target={stage}", "-o",
           os.path.join(outdir, stage)]
    return aot + ([f"--ptxas={opts.ptxas}"] if opts.ptxas else [])


def run_tool(cmd, timeout):
    """(returncode or None on timeout, combined output). A tool that cannot
    be started (being relinked by a build) is retried for a while."""
    for attempt in range(10):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, errors="replace")
            return p.returncode, p.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
            return None, out or ""
        except OSError:
            if attempt == 9:
                raise
            time.sleep(3)


def first_error(out):
    for m in ERROR_LINE.finditer(out):
        if LOCATED.match(m.group(0)) or not m.group(1).strip():
            return m.group(0)
    m = ERROR_LINE.search(out)
    return m.group(0) if m else ""


def signature(line):
    """A diagnostic without its location, numbers and value names: inputs
    refused for the same reason share a signature."""
    line = re.sub(r"^.*?error: ", "", line)
    line = re.sub(r"%[\w.]+", "%v", line)
    line = re.sub(r"'tensor<[^']*>'|'vector<[^']*>'", "'T'", line)
    return re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "N", line)[:200]


def classify(stage, rc, out):
    """The outcome of one stage: ok, rejected or a violation."""
    if rc is None:
        return "hang"
    if rc < 0 or CRASH.search(out):
        return "crash"
    # The parser's own dominance and verifier errors are diagnostics of the
    # input; after a pass they are the pass's fault.
    if stage != "parse" and VERIFIER.search(out):
        return "verifier"
    if INTERNAL.search(out):
        return "internal"
    if rc == 0:
        return "ok"
    if ROUNDTRIP.search(out) and not LOCATED.search(out):
        return "roundtrip"
    if "error:" not in out:
        return "no-diagnostic"
    if not LOCATED.search(out):
        return "unlocated"
    return "rejected"


def verifier_check(opts, stage, path, out):
    """A lowering stage refused the input with an error on an op the user
    did not write in that form (not an attn op): if the error goes away with
    --verify-each=false, it came from the verifier after a pass."""
    err = first_error(out)
    if not err or ATTN_OP.search(err) or not re.search(r"'\w+\.\w+' op", err):
        return False
    target = {"cpu": "--attn-compile=target=cpu", "cpu-ref": "--attn-lower-cpu-reference"}.get(
        stage, f"--attn-compile=target={stage} format=isa")
    cmd = [os.path.join(opts.bin, "attn-opt"), path, "--mlir-print-op-on-diagnostic=false",
           "-o", os.devnull, target, "--verify-each=false"]
    rc, out2 = run_tool(cmd, opts.timeout)
    return err not in out2


def run_stages(opts, path, outdir):
    """{stage: (outcome, first error line, output)} for one input."""
    res = {}
    for stage in opts.stages:
        start = time.monotonic()
        rc, out = run_tool(stage_command(opts, stage, path, outdir), opts.timeout)
        outcome = classify(stage, rc, out)
        if outcome == "rejected" and stage not in ("parse", "analyze") and \
                verifier_check(opts, stage, path, out):
            outcome = "verifier"
        res[stage] = (outcome, first_error(out), out, time.monotonic() - start)
        if stage == "parse" and outcome != "ok":
            break  # the parser or verifier refused it: nothing to lower
    return res


def fuzz_one(args):
    opts, index, deadline = args
    if time.time() > deadline:
        return None
    origin, text = make_input(opts, index)
    work = tempfile.mkdtemp(prefix="attn-fuzz-")
    try:
        path = os.path.join(work, f"in{index}.mlir")
        with open(path, "w") as f:
            f.write(text)
        res = run_stages(opts, path, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rec = {"index": index, "origin": origin, "stages": {}, "runs": len(res)}
    for stage, (outcome, err, out, secs) in res.items():
        rec["stages"][stage] = [outcome, signature(err) if err else ""]
        if outcome in VIOLATIONS and opts.save_dir:
            base = os.path.join(opts.save_dir, f"s{opts.seed}-{index}-{stage}-{outcome}")
            with open(base + ".mlir", "w") as f:
                f.write(f"// attn_fuzz: seed {opts.seed} input {index} ({origin}), "
                        f"stage {stage}: {outcome}\n" + text)
            with open(base + ".log", "w") as f:
                f.write(" ".join(stage_command(opts, stage, base + ".mlir", "OUT")) +
                        "\n\n" + out)
            rec.setdefault("saved", []).append(base + ".mlir")
    return rec


def summarize(recs, opts, elapsed, budget):
    by_stage = {s: {} for s in opts.stages}
    sigs = {}
    violations = []
    for rec in recs:
        for stage, (outcome, sig) in rec["stages"].items():
            by_stage[stage][outcome] = by_stage[stage].get(outcome, 0) + 1
            if outcome != "ok":
                key = (stage, outcome, sig)
                sigs.setdefault(key, [0, rec["index"]])[0] += 1
            if outcome in VIOLATIONS:
                violations.append({"index": rec["index"], "origin": rec["origin"],
                                   "stage": stage, "outcome": outcome,
                                   "signature": sig})
    worst = {}
    for rec in recs:
        outs = [o for o, _ in rec["stages"].values()]
        w = next((v for v in VIOLATIONS if v in outs), None) or \
            ("compiled" if all(o == "ok" for o in outs) and len(outs) == len(opts.stages)
             else "rejected" if outs[0] != "ok" else "partly-compiled")
        worst[w] = worst.get(w, 0) + 1
    n = len(recs)
    return {
        "seed": opts.seed, "mode": opts.mode, "budget_s": budget,
        "elapsed_s": round(elapsed, 1), "inputs": n,
        "inputs_per_s": round(n / elapsed, 3) if elapsed else 0,
        "tool_runs": sum(r["runs"] for r in recs),
        "outcomes": worst, "by_stage": by_stage,
        "violations": violations,
        "diagnostics": [{"stage": s, "outcome": o, "signature": g, "count": c,
                         "first_index": i}
                        for (s, o, g), (c, i) in sorted(sigs.items(), key=lambda kv: -kv[1][0])],
    }


def fuzz(a):
    opts = Options(a)
    if opts.save_dir:
        os.makedirs(opts.save_dir, exist_ok=True)
    start = time.time()
    deadline = start + a.budget
    recs = []
    limit = a.max_inputs if a.max_inputs else 1 << 62
    with multiprocessing.Pool(a.workers) as pool:
        pending = []
        index = a.start
        while True:
            while len(pending) < 2 * a.workers and index < a.start + limit and \
                    time.time() < deadline:
                pending.append(pool.apply_async(fuzz_one, ((opts, index, deadline),)))
                index += 1
            if not pending:
                break
            rec = pending.pop(0).get()
            if rec is None:
                continue
            recs.append(rec)
            for stage, (outcome, sig) in rec["stages"].items():
                if outcome in VIOLATIONS:
                    print(f"VIOLATION {outcome} at {stage}: seed {a.seed} input "
                          f"{rec['index']} ({rec['origin']}): {sig}", flush=True)
    summary = summarize(recs, opts, time.time() - start, a.budget)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
    print(f"FUZZ seed {a.seed}: {summary['inputs']} inputs in {summary['elapsed_s']} s "
          f"({summary['inputs_per_s']}/s, {summary['tool_runs']} tool runs), "
          f"outcomes {json.dumps(summary['outcomes'], sort_keys=True)}, "
          f"{len(summary['violations'])} violations")
    return 1 if summary["violations"] else 0


DEF = re.compile(r"^\s*(%[\w.]+)\s*=")
YIELD = re.compile(r"^(\s*attn\.yield )(%[\w.]+)( : (\w+))")


def dead_code(lines):
    """Drops the lines that define a value nobody uses."""
    while True:
        text = "\n".join(lines)
        dead = [n for n, line in enumerate(lines) if DEF.match(line) and
                len(re.findall(re.escape(DEF.match(line).group(1)) + r"(?![\w.])", text)) == 1]
        if not dead:
            return lines
        lines = [line for n, line in enumerate(lines) if n != dead[0]]


def reduce(a):
    """Greedy minimization of an input that keeps the outcome and diagnostic
    of one stage: region results replaced by earlier values of their type
    (then dead code dropped), and chunks of lines deleted."""
    opts = Options(a)
    opts.stages = [a.stage]
    text = open(a.reduce).read()
    work = tempfile.mkdtemp(prefix="attn-reduce-")

    def outcome(lines):
        path = os.path.join(work, "in.mlir")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        o, err, _, _ = run_stages(opts, path, work)[a.stage]
        return o, signature(err)

    lines = text.split("\n")
    goal = outcome(lines)
    print(f"reducing for {a.stage}: {goal}", file=sys.stderr)
    progress = True
    while progress:
        progress = False
        for n, line in enumerate(lines):
            m = YIELD.match(line)
            if not m:
                continue
            for cand in re.findall(r"%[\w.]+(?=[ ,=:)])", "\n".join(lines[:n])):
                if cand == m.group(2) or not re.search(
                        re.escape(cand) + r"\s*(=.*: " + m.group(4) + r"$|: " +
                        m.group(4) + r"[,)])", "\n".join(lines[:n]), re.M):
                    continue
                trial = lines[:n] + [m.group(1) + cand + m.group(3)] + lines[n + 1:]
                trial = dead_code(trial)
                if outcome(trial) == goal:
                    lines, progress = trial, True
                    break
            if progress:
                break
        chunk = max(1, len(lines) // 2)
        while chunk >= 1:
            i = 0
            while i < len(lines):
                trial = dead_code(lines[:i] + lines[i + chunk:])
                if trial != lines and outcome(trial) == goal:
                    lines, progress = trial, True
                else:
                    i += chunk
            chunk //= 2
    shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("Usage"):])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="directory of attn-opt and attn-aot")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=150, help="seconds")
    ap.add_argument("--max-inputs", type=int, default=0, help="0: until the budget")
    ap.add_argument("--start", type=int, default=0, help="first input index")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--mode", choices=["both", "mutate", "generate"], default="both")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--timeout", type=float, default=60, help="seconds per tool run")
    ap.add_argument("--ptxas", default="",
                    help="ptxas for attn-aot (default: attn-aot's; 'none' skips it)")
    ap.add_argument("--corpus", nargs="*",
                    default=["examples/*.mlir", "examples/consumer/*.mlir"],
                    help="globs under the project root to mutate")
    ap.add_argument("--out", help="JSON summary")
    ap.add_argument("--save-dir", default="",
                    help="where violating inputs and their logs go")
    ap.add_argument("--replay", metavar="SEED:INDEX",
                    help="print one input instead of fuzzing")
    ap.add_argument("--reduce", metavar="FILE", help="minimize FILE for --stage")
    ap.add_argument("--stage", default="parse", help="with --reduce")
    a = ap.parse_args()
    a.stages = [s for s in a.stages.split(",") if s]
    if a.replay:
        a.seed, index = (int(x) for x in a.replay.split(":"))
        print(make_input(Options(a), index)[1], end="")
        return 0
    if a.reduce:
        return reduce(a)
    return fuzz(a)


if __name__ == "__main__":
    sys.exit(main())
