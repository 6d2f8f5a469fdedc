"""Peak memory of a search does not grow with the dataset: ``folder:`` data at two sizes.

Writes Fashion-MNIST images as PNG class folders (``train/`` of N images, ``val/`` of 1,000
and ``test/`` of 1,000), then in a fresh process each: ``autoprune train`` (1 epoch) and
``autoprune search`` on the same command line, N = 5,000 and 50,000. Peak RSS is each
process's ``ru_maxrss``. Nothing is held in memory but a batch at a time and the fixed
validation subset (``--val-samples``), so both sizes should peak alike.

    python benchmarks/folder_rss.py --sizes 5000,50000 --out /tmp/folder_rss
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from autoprune.data._idx import read_idx_dataset

CLI = [str(Path(sys.executable).with_name("autoprune"))]


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """One split as ``folder/<class>/<index>.png``."""
    for label in np.unique(labels):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image, mode="L").save(folder / f"class{label}" / f"{index}.png")


def make_folder(root: Path, size: int) -> Path:
    """A folder dataset of ``size`` training images (made once, reused)."""
    done = root / ".complete"
    if done.is_file():
        return root
    x_train, y_train, x_test, y_test = read_idx_dataset("fashion-mnist", None)
    x_train = np.asarray(x_train).reshape(-1, 28, 28)
    x_test = np.asarray(x_test).reshape(-1, 28, 28)
    write_split(root / "train", x_train[:size].astype(np.uint8), y_train[:size])
    write_split(root / "val", x_train[-1000:].astype(np.uint8), y_train[-1000:])
    write_split(root / "test", x_test[:1000].astype(np.uint8), y_test[:1000])
    done.write_text("ok")
    return root


def measured(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` in a fresh process; (peak RSS MiB, seconds, stdout)."""
    started = time.perf_counter()
    code = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'rc': p.returncode, 'rss_kib': r, 'out': p.stdout,"
        " 'err': p.stderr[-2000:]}))"
    )
    done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result['err']}")
    return result["rss_kib"] / 1024, seconds, result["out"]


def run_size(root: Path, size: int, args: argparse.Namespace) -> dict:
    folder = make_folder(root / f"fmnist_{size}", size)
    runs = root / f"runs_{size}"
    dataset = f"folder:{folder}"
    common = ["--model", args.model, "--dataset", dataset, "--runs-dir", str(runs)]
    train_rss, train_s, out = measured(
        [*CLI, "--quiet", "train", *common, "--epochs", "1", "--json"]
    )
    weights = json.loads(out)["weights"]
    config = root / f"search_{size}.yaml"
    config.write_text(f"val_samples: {args.val_samples}\n")
    search_rss, search_s, _ = measured(
        [*CLI, "--quiet", "search", *common, "--weights", weights, "--agent", args.agent,
         "--episodes", str(args.episodes), "--target", "flops=0.5", "--config", str(config),
         "--json"]
    )  # fmt: skip
    return {
        "train_images": size,
        "train_peak_rss_mib": round(train_rss, 1),
        "train_seconds": round(train_s, 1),
        "search_peak_rss_mib": round(search_rss, 1),
        "search_seconds": round(search_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--out", type=Path, default=Path("/tmp/folder_rss"))
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--agent", default="tpe")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--val-samples", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    rows = [run_size(args.out, int(s), args) for s in args.sizes.split(",")]
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"cpus": os.cpu_count(), "rows": rows, "driver_peak_rss_mib": peak_self}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
