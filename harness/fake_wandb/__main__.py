"""Run the fake W&B as a process (the self-test workflow and the benchmark do).

    python -m harness.fake_wandb --port 8787 --api-key KEY --demo [--ready-file F]
    python -m harness.fake_wandb --serve-dir DIR --collection bench ...
        [--first-byte-ms 30 --stream-mb-s 40]   # storage paced like a cloud bucket

``--demo`` seeds ``acme/churn/churn-model`` (aliases ``production``, ``latest``), the
artifact ``tests/action/fixtures/dispatch-event.json`` names. ``--serve-dir`` makes every
file under DIR one artifact ``<entity>/<project>/<collection>:latest``. The base URL is
printed, and written to ``--ready-file`` once the server listens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from harness.fake_wandb.server import FakeWandb, demo_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fake_wandb")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=os.environ.get("FAKE_WANDB_API_KEY", ""))
    parser.add_argument("--legacy", action="store_true", help="no membership fields")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--serve-dir", type=Path)
    parser.add_argument("--entity", default="acme")
    parser.add_argument("--project", default="bench")
    parser.add_argument("--collection", default="bench-model")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--first-byte-ms", type=float, default=0.0, help="storage latency")
    parser.add_argument("--stream-mb-s", type=float, default=0.0, help="storage rate per GET")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key (or FAKE_WANDB_API_KEY) is required")
    fake = FakeWandb(
        args.api_key,
        legacy=args.legacy,
        page_size=args.page_size,
        port=args.port,
        first_byte=args.first_byte_ms / 1000,
        stream_rate=args.stream_mb_s * 1e6,
    )
    if args.demo:
        fake.store.add_artifact(
            "acme",
            "churn",
            "churn-model",
            dict(demo_files()),
            aliases=("production", "latest"),
            metadata={"accuracy": 0.93, "framework": "sklearn"},
            description="Churn classifier.\nTrained on the Q3 data.",
        )
    if args.serve_dir:
        root = args.serve_dir.resolve()
        files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
        fake.store.add_artifact(args.entity, args.project, args.collection, dict(files))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fake:
        print(fake.url, flush=True)
        if args.ready_file:
            args.ready_file.write_text(fake.url + "\n", encoding="utf-8")
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
