"""Benchmark: the action's downloader against plain parallel GETs (SPEC section 8).

    python bench/download.py [--size-mib 1024] [--large 3] [--small 400] [--concurrency 8]
                             [--rounds 3] [--json bench/results/download.json]

Generates an artifact (a few large files and hundreds of small ones, 1 GiB in all) in a
temp dir, serves it from the fake W&B (``tests.action.fake_wandb``, pre-signed URLs,
``sendfile``) on loopback in its own process, then alternates, at the same concurrency:

- baseline: plain parallel GETs of the same direct URLs, each body streamed to a file;
- action:   the action's downloader (pooled session, temp file + rename, MD5 of every
            file checked against the manifest) as the action runs it, hashing in the
            shared vector lanes of ``action/md5lanes.py`` (built here as action.yml
            builds it); then with hashlib instead (what runs where the library cannot be
            built), and once more with verify=false.

Each run is a fresh process; its peak RSS comes from ``os.wait4``. Files live on a tmpfs
(``/dev/shm``) unless ``--tmp-dir`` says otherwise, so that disk writeback does not blur
the comparison; loopback only, about a minute in all. The best of
``--rounds`` runs of each is reported, with the ratio of the action's MB/s to the
baseline's (bar: >= 0.8) and its peak RSS (bar: < 150 MB); so is each round's ratio
to the baseline run just before it, and their median, which a noisy neighbour moves less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "bench" / "download_worker.py"
KEY = "local-bench000000000000000000000000000000000000"
MIB = 1 << 20


def make_artifact(root: Path, size_mib: int, large: int, small: int) -> int:
    """Write ``large`` big files and ``small`` small ones (4 KiB - 1 MiB), size_mib in all."""
    rng = __import__("random").Random(1234)
    small_sizes = [rng.randint(4 * 1024, MIB) for _ in range(small)]
    large_total = size_mib * MIB - sum(small_sizes)
    block = os.urandom(MIB)
    for n in range(large):
        size = large_total // large + (large_total % large if n == 0 else 0)
        write_file(root / f"model/shard-{n:02d}.bin", size, block, n)
    for n, size in enumerate(small_sizes):
        write_file(root / f"assets/{n % 20:02d}/file-{n:04d}.dat", size, block, 1000 + n)
    return size_mib * MIB


def write_file(path: Path, size: int, block: bytes, salt: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        written, n = 0, 0
        while written < size:
            piece = hashlib.sha256(f"{salt}:{n}".encode()).digest() + block[32:]
            piece = piece[: size - written]
            fh.write(piece)
            written += len(piece)
            n += 1


def start_server(data: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = tmp / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.action.fake_wandb",
            "--serve-dir",
            str(data),
            "--api-key",
            KEY,
            "--page-size",
            "5000",
            "--ready-file",
            str(ready),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (ready.exists() and ready.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the fake W&B did not start")
        time.sleep(0.1)
    return process, ready.read_text().strip()


def direct_urls(base: str) -> dict[str, str]:
    """The same pre-signed URLs the action gets, for the baseline."""
    sys.path.insert(0, str(REPO))
    from action import queries

    urls: dict[str, str] = {}
    cursor = None
    with requests.Session() as session:
        while True:
            body = {
                "operationName": "MembershipFileUrls",
                "query": queries.MEMBERSHIP_FILES,
                "variables": {
                    "entityName": "acme",
                    "projectName": "bench",
                    "collectionName": "bench-model",
                    "alias": "v0",
                    "cursor": cursor,
                    "perPage": 5000,
                },
            }
            answer = session.post(f"{base}/graphql", json=body, auth=("api", KEY), timeout=60)
            conn = answer.json()["data"]["project"]["artifactCollection"]["artifactMembership"]
            for edge in conn["files"]["edges"]:
                urls[edge["node"]["name"]] = edge["node"]["directUrl"]
            cursor = conn["files"]["pageInfo"]["endCursor"]
            if not conn["files"]["pageInfo"]["hasNextPage"]:
                return urls


def measure(args: list[str], out: Path) -> dict[str, float]:
    """Run one worker process; its result plus its peak RSS in MB."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), *args], cwd=REPO, env=env, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    text = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"worker {args[0]} failed with {process.returncode}")
    result: dict[str, float] = json.loads(text)
    result["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    shutil.rmtree(out, ignore_errors=True)
    return result


def build_lanes(directory: Path) -> Path:
    """The multi-buffer MD5 library, built as action.yml's setup step builds it."""
    sys.path.insert(0, str(REPO))
    from action.md5build import build

    return build(directory)


def md5_speed() -> float:
    block = os.urandom(MIB)
    hasher = hashlib.md5(usedforsecurity=False)
    start = time.perf_counter()
    for _ in range(256):
        hasher.update(block)
    return 256 * MIB / (time.perf_counter() - start) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--tmp-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the artifact and the downloads go (default /dev/shm: a tmpfs keeps "
        "disk writeback, which is shared and noisy, out of the comparison)",
    )
    opts = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wandb-action-bench-", dir=opts.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        data, out = tmp / "artifact", tmp / "out"
        total = make_artifact(data, opts.size_mib, opts.large, opts.small)
        files = sum(1 for p in data.rglob("*") if p.is_file())
        print(
            f"artifact: {files} files, {total / MIB:.0f} MiB; concurrency {opts.concurrency}; "
            f"in {tmp}"
        )
        server, base = start_server(data, tmp)
        try:
            urls_file = tmp / "urls.json"
            urls_file.write_text(json.dumps(direct_urls(base)))
            c = str(opts.concurrency)
            library = str(build_lanes(tmp / "lib"))
            ref = "acme/bench/bench-model:latest"
            fetch = ["action", base, KEY, ref, str(out), c]
            commands = {
                "baseline": ["baseline", str(urls_file), str(out), c],
                "action": [*fetch, "true", library],
                "hashlib": [*fetch, "true"],
                "noverify": [*fetch, "false"],
            }
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
            for _ in range(opts.rounds):
                for name, command in commands.items():
                    runs[name].append(measure(command, out))
        finally:
            server.terminate()
            server.wait(timeout=30)
    best = {name: max(r, key=lambda x: x["mb_s"]) for name, r in runs.items()}
    report = {
        "files": files,
        "bytes": total,
        "concurrency": opts.concurrency,
        "baseline_mb_s": round(best["baseline"]["mb_s"], 1),
        "action_mb_s": round(best["action"]["mb_s"], 1),
        "ratio": round(best["action"]["mb_s"] / best["baseline"]["mb_s"], 3),
        "action_peak_rss_mb": round(max(r["rss_mb"] for r in runs["action"]), 1),
        "baseline_peak_rss_mb": round(max(r["rss_mb"] for r in runs["baseline"]), 1),
        "round_ratios": [
            round(a["mb_s"] / b["mb_s"], 3)
            for a, b in zip(runs["action"], runs["baseline"], strict=True)
        ],
        "hashlib_mb_s": round(best["hashlib"]["mb_s"], 1),
        "hashlib_ratio": round(best["hashlib"]["mb_s"] / best["baseline"]["mb_s"], 3),
        "noverify_mb_s": round(best["noverify"]["mb_s"], 1),
        "noverify_ratio": round(best["noverify"]["mb_s"] / best["baseline"]["mb_s"], 3),
        "md5_single_core_mb_s": round(md5_speed(), 1),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "all_runs_mb_s": {k: [round(r["mb_s"], 1) for r in v] for k, v in runs.items()},
        "cpu_seconds_per_run": {k: round(min(r["cpu_s"] for r in v), 2) for k, v in runs.items()},
    }
    print(f"baseline (plain parallel GETs): {report['baseline_mb_s']} MB/s")
    print(f"action downloader (MD5 verified, vector lanes): {report['action_mb_s']} MB/s")
    print(f"ratio: {report['ratio']} (bar >= 0.8)")
    rounds = report["round_ratios"]
    print(f"ratio in each round (its own baseline): {rounds}; median {statistics.median(rounds)}")
    print(f"action peak RSS: {report['action_peak_rss_mb']} MB (bar < 150 MB)")
    hashlib_mb_s = report["hashlib_mb_s"]
    print(f"action hashing with hashlib: {hashlib_mb_s} MB/s, ratio {report['hashlib_ratio']}")
    noverify = report["noverify_mb_s"]
    print(f"action with verify=false: {noverify} MB/s, ratio {report['noverify_ratio']}")
    print(f"MD5 on one core: {report['md5_single_core_mb_s']} MB/s; CPUs: {report['cpus']}")
    print(f"all runs: {report['all_runs_mb_s']}; load average before: {load_before:.2f}")
    print(f"CPU seconds of each process (least of the runs): {report['cpu_seconds_per_run']}")
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
