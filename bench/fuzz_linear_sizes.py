"""Random sizes for the linear-attention / scan specs: copies the bf16 specs
of SPECDIR (bench/prepare_python_linear.sh or linear_gpu.py --write-specs)
into DIR and writes DIR/runs.txt, one attn-run flag set per line: sequence
lengths around chunk boundaries (1, 2, 3, 15-17, 31-33, 63-65, 127-129, 255-257,
...), batch 1 to 3. On the GPU machine: bench/fuzz_gpu.sh DIR.

  python3 bench/fuzz_linear_sizes.py SPECDIR DIR [--seed S]"""
import argparse
import os
import random
import shutil

SPECS = ["linear_elu", "retnet", "mamba2_scan", "bidirectional_mamba2", "gla", "relu_squared",
         "hedgehog", "performer", "cosformer", "lin128", "retnet128", "sgla128", "gla128",
         "elu128", "bimamba128"]
LENGTHS = [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 191, 255, 256, 257,
           500, 777]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("specdir")
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    runs = []
    for n in SPECS:
        shutil.copy(os.path.join(a.specdir, n + ".mlir"), os.path.join(a.dir, n + ".mlir"))
        big = n.endswith("128")  # 16 heads, d = 128: fewer, shorter runs
        for _ in range(4 if big else 8):
            t = rng.choice(LENGTHS + ([] if big else [1000, 2049]))
            runs.append(f"{n}.mlir --batch {rng.choice([1, 2, 3])} --nq {t} "
                        f"--seed {rng.randrange(1000)}")
    with open(os.path.join(a.dir, "runs.txt"), "w") as f:
        f.write("\n".join(runs) + "\n")
    print(f"{len(runs)} runs in {a.dir}")


if __name__ == "__main__":
    main()
