"""Benchmark: the action's step against plain parallel GETs and ``wandb artifact get``.

    python bench/download.py [--size-mib 1024] [--large 3] [--small 400] [--concurrency 8]
                             [--first-byte-ms 30] [--stream-mb-s 40] [--rounds 2]
                             [--sdk-venv DIR | --no-sdk] [--old-action DIR] [--json FILE]

Writes an artifact (a few large files, hundreds of small ones) to a tmpfs, serves it
from the fake W&B (``harness.fake_wandb``) in its own process, its storage paced
like a cloud bucket seen from a runner, and times, in turn, each round:

- gets:   plain parallel GETs of the same pre-signed URLs, same concurrency, same order;
- action: the action's step, ``python -m action`` with its inputs in the environment,
          every file verified with hashlib;
- sdk:    ``wandb artifact get`` of the official ``wandb`` SDK, installed from PyPI
          into its own virtualenv (``--sdk-venv``) on first use;
- before: with ``--old-action DIR``, the action package in DIR (another commit's, from
          ``git archive <commit> action | tar -x -C DIR``), run the same way.

Each is one process, timed from start to exit, its peak RSS read with ``os.wait4``;
ratios are of wall times in the same round. ``bench/README.md`` has the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEY = "local-bench000000000000000000000000000000000000"
REF = "acme/bench/bench-model:latest"
MIB = 1 << 20


def make_artifact(root: Path, size_mib: int, large: int, small: int) -> int:
    """``large`` big files and ``small`` ones of 4 KiB - 1 MiB, ``size_mib`` in all."""
    rng = random.Random(1234)
    small_sizes = [rng.randint(4 << 10, MIB) for _ in range(small)]
    large_total = size_mib * MIB - sum(small_sizes)
    block = os.urandom(MIB)
    for n in range(large):
        size = large_total // large + (large_total % large if n == 0 else 0)
        _write(root / f"model/shard-{n:02d}.bin", size, block, n)
    for n, size in enumerate(small_sizes):
        _write(root / f"assets/{n % 20:02d}/file-{n:04d}.dat", size, block, 1000 + n)
    return size_mib * MIB


def _write(path: Path, size: int, block: bytes, salt: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        written, n = 0, 0
        while written < size:
            piece = (hashlib.sha256(f"{salt}:{n}".encode()).digest() + block[32:])[: size - written]
            fh.write(piece)
            written, n = written + len(piece), n + 1


def start_standin(
    data: Path, tmp: Path, opts: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], str]:
    ready = tmp / "ready"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness.fake_wandb", "--serve-dir", str(data)),
            *("--api-key", KEY, "--page-size", "5000", "--ready-file", str(ready)),
            *("--first-byte-ms", str(opts.first_byte_ms), "--stream-mb-s", str(opts.stream_mb_s)),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (ready.exists() and ready.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the W&B stand-in did not start")
        time.sleep(0.1)
    return process, ready.read_text().strip()


def direct_urls(base: str, data: Path) -> list[tuple[str, str]]:
    """The pre-signed URLs the action is given, largest file first (as the action goes)."""
    import requests

    sys.path.insert(0, str(REPO))
    from action import queries

    variables = {"entityName": "acme", "projectName": "bench", "collectionName": "bench-model"}
    body = {
        "operationName": "MembershipFileUrls",
        "query": queries.MEMBERSHIP_FILES,
        "variables": {**variables, "alias": "v0", "cursor": None, "perPage": 5000},
    }
    answer = requests.post(f"{base}/graphql", json=body, auth=("api", KEY), timeout=60).json()
    files = answer["data"]["project"]["artifactCollection"]["artifactMembership"]["files"]
    assert not files["pageInfo"]["hasNextPage"]
    urls = [(e["node"]["name"], e["node"]["directUrl"]) for e in files["edges"]]
    return sorted(urls, key=lambda item: -(data / item[0]).stat().st_size)


def sdk_wandb(venv: Path) -> Path | None:
    """``wandb`` of the SDK's virtualenv, created and installed from PyPI if need be."""
    wandb = venv / "bin" / "wandb"
    if not wandb.exists():
        print(f"installing the wandb SDK into {venv} (once) ...", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "wandb"]
        if made.returncode or subprocess.run(pip, check=False).returncode:
            print("cannot install the wandb SDK: its figures are left out")
            return None
    return wandb


def measure(command: list[str], env: dict[str, str], out: Path, cwd: Path) -> dict[str, float]:
    """Run one contender to completion: wall seconds, peak RSS (MB), CPU seconds."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    text = process.stdout.read().decode(errors="replace")
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[0]} failed:\n{text[-3000:]}")
    return {
        "seconds": seconds,
        "rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def same_files(data: Path, out: Path) -> bool:
    """Every file of the artifact is under ``out`` with its size (the SDK's check)."""
    files = [p for p in data.rglob("*") if p.is_file()]
    return all((out / p.relative_to(data)).stat().st_size == p.stat().st_size for p in files)


def setup_seconds(tmp: Path) -> float:
    """What the action's first run adds: a venv and its hash-pinned requirements."""
    venv = tmp / "action-venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            *(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"),
            *("--disable-pip-version-check", "--no-input", "--require-hashes"),
            *("--only-binary", ":all:", "-r", str(REPO / "action" / "requirements.txt")),
        ],
        check=True,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--first-byte-ms", type=float, default=30)
    parser.add_argument("--stream-mb-s", type=float, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--sdk-venv", type=Path, default=Path(tempfile.gettempdir()) / "wandb-sdk-venv"
    )
    parser.add_argument("--no-sdk", action="store_true")
    parser.add_argument("--old-action", type=Path, help="a directory holding another `action`")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tmp-dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    opts = parser.parse_args()
    wandb = None if opts.no_sdk else sdk_wandb(opts.sdk_venv)
    with tempfile.TemporaryDirectory(prefix="wandb-action-bench-", dir=opts.tmp_dir) as name:
        tmp = Path(name)
        data, out = tmp / "artifact", tmp / "out"
        total = make_artifact(data, opts.size_mib, opts.large, opts.small)
        files = sum(1 for p in data.rglob("*") if p.is_file())
        print(
            f"artifact: {files} files, {total / MIB:.0f} MiB; concurrency {opts.concurrency}; "
            f"storage {opts.first_byte_ms:g} ms to first byte, {opts.stream_mb_s:g} MB/s per GET"
        )
        standin, base = start_standin(data, tmp, opts)
        try:
            urls_file = tmp / "urls.json"
            urls_file.write_text(json.dumps(direct_urls(base, data)))
            clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env = {**clean, "PYTHONPATH": str(REPO)}
            action_env = {
                **env,
                "WANDB_ACTION_API_KEY": KEY,
                "WANDB_ACTION_BASE_URL": base,
                "WANDB_ACTION_ARTIFACT": REF,
                "WANDB_ACTION_PATH": str(out),
                "WANDB_ACTION_CONCURRENCY": str(opts.concurrency),
                "GITHUB_WORKSPACE": str(tmp),
            }
            sdk_env = {
                **clean,
                "WANDB_BASE_URL": base,
                "WANDB_API_KEY": KEY,
                "WANDB_SILENT": "true",
                "WANDB_CACHE_DIR": str(tmp / "sdk-cache"),
                "WANDB_DATA_DIR": str(tmp / "sdk-data"),
                "WANDB_CONFIG_DIR": str(tmp / "sdk-config"),
            }
            worker = [sys.executable, str(REPO / "bench/download_worker.py"), str(urls_file)]
            commands = {
                "gets": ([*worker, str(out), str(opts.concurrency)], env, REPO),
                "action": ([sys.executable, "-m", "action"], action_env, REPO),
            }
            if opts.old_action:
                old = opts.old_action.resolve()
                old_env = {**action_env, "PYTHONPATH": str(old)}
                commands["before"] = ([sys.executable, "-m", "action"], old_env, old)
            if wandb:
                sdk = [str(wandb), "artifact", "get", REF, "--root", str(out)]
                commands["sdk"] = (sdk, sdk_env, REPO)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
            for _ in range(opts.rounds):
                for name, (command, command_env, cwd) in commands.items():
                    shutil.rmtree(tmp / "sdk-cache", ignore_errors=True)  # no reuse across runs
                    runs[name].append(measure(command, command_env, out, cwd))
                    if not same_files(data, out):
                        raise SystemExit(f"{name} did not put every file in place")
            setup = setup_seconds(tmp)
        finally:
            standin.terminate()
            standin.wait(timeout=30)
    report = summarise(runs, files, total, opts, setup)
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def summarise(
    runs: dict[str, list[dict[str, float]]],
    files: int,
    total: int,
    opts: argparse.Namespace,
    setup: float,
) -> dict[str, object]:
    """Print and return the figures: per round and the median of the rounds."""

    def ratio(other: str, of: str = "action") -> list[float]:
        return [o["seconds"] / a["seconds"] for a, o in zip(runs[of], runs[other], strict=True)]

    report: dict[str, object] = {
        "files": files,
        "mib": total // MIB,
        "concurrency": opts.concurrency,
        "first_byte_ms": opts.first_byte_ms,
        "stream_mb_s": opts.stream_mb_s,
        "seconds": {k: [round(r["seconds"], 2) for r in v] for k, v in runs.items()},
        "mb_s": {
            k: round(total / 1e6 / statistics.median(r["seconds"] for r in v), 1)
            for k, v in runs.items()
        },
        "cpu_s": {k: round(statistics.median(r["cpu_s"] for r in v), 2) for k, v in runs.items()},
        "peak_rss_mb": {k: round(max(r["rss_mb"] for r in v), 1) for k, v in runs.items()},
        "action_vs_gets": [round(x, 3) for x in ratio("gets")],
        "first_run_setup_s": round(setup, 1),
    }
    print(f"wall seconds per round: {report['seconds']}")
    print(f"MB/s (median round): {report['mb_s']}; CPU-s: {report['cpu_s']}")
    gets = report["action_vs_gets"]
    print(f"action vs plain GETs: {gets} (x of the GETs' speed; bar >= 0.9)")
    if "sdk" in runs:
        report["action_vs_sdk"] = [round(x, 3) for x in ratio("sdk")]
        print(f"action vs wandb artifact get: {report['action_vs_sdk']} (bar >= 1.5)")
    if "before" in runs:
        report["before_vs_gets"] = [round(x, 3) for x in ratio("gets", "before")]
        print(f"before vs plain GETs: {report['before_vs_gets']}")
        if "sdk" in runs:
            report["before_vs_sdk"] = [round(x, 3) for x in ratio("sdk", "before")]
            print(f"before vs wandb artifact get: {report['before_vs_sdk']}")
    print(f"peak RSS, MB: {report['peak_rss_mb']} (action's bar < 150)")
    print(f"first run's set-up (venv + hash-pinned requirements): {setup:.1f} s (bar <= 30)")
    return report


if __name__ == "__main__":
    sys.exit(main())
