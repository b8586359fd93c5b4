"""One measured download, in its own process (``bench/download.py`` runs it).

    python bench/download_worker.py baseline URLS_JSON OUT CONCURRENCY
    python bench/download_worker.py action BASE_URL KEY REF OUT CONCURRENCY VERIFY [MD5_LIBRARY]

Prints one JSON line: ``{"seconds": ..., "bytes": ...}`` for the download phase alone
(the action's GraphQL look-ups and manifest fetch happen before the clock starts).
"""

from __future__ import annotations

import io
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

CHUNK = 1 << 20


def baseline(urls_json: str, out: str, concurrency: int) -> dict[str, float]:
    """Plain parallel GETs: stream each body to its file, nothing else."""
    urls: dict[str, str] = json.loads(Path(urls_json).read_text())
    root = Path(out)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency, max_retries=0))

    def get(item: tuple[str, str]) -> int:
        name, url = item
        dest = root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with session.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            with dest.open("wb") as fh:
                for chunk in response.iter_content(CHUNK):
                    fh.write(chunk)
                    size += len(chunk)
        return size

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(get, sorted(urls.items())))
    seconds = time.perf_counter() - start
    session.close()
    return {"seconds": seconds, "bytes": total}


def action(
    base: str, key: str, ref: str, out: str, concurrency: int, verify: bool, md5_library: str
) -> dict[str, float]:
    """The action's downloader, set up as ``action.main`` sets it up.

    With ``md5_library`` (built by ``python -m action.md5build``) the threads hash in
    shared vector lanes, as in the action; without, each with hashlib.
    """
    from action.commands import Console
    from action.download import Downloader
    from action.graphql import GraphQLClient
    from action.http import RetryPolicy, make_session
    from action.manifest import parse_manifest
    from action.plan import plan
    from action.progress import Progress
    from action.refs import parse_ref
    from action.staging import install, make_staging
    from action.wandb_api import WandbApi

    policy = RetryPolicy()
    console = Console(io.StringIO())
    with make_session(concurrency + 2) as session:
        api = WandbApi(GraphQLClient(session, base, key, sleep=time.sleep, policy=policy))
        artifact = api.resolve(parse_ref(ref))
        manifest = parse_manifest(session.get(api.manifest_url(artifact), timeout=60).content)
        work = plan(
            manifest,
            api.file_urls(artifact),
            artifact,
            target=Path(out),
            base_url=base,
            verify=verify,
            skip_references=False,
        )
        total = sum(j.entry.size or 0 for j in work.jobs)
        progress = Progress(total, interval=3600, clock=time.monotonic, console=console)
        downloader = Downloader(
            session,
            key,
            concurrency=concurrency,
            policy=policy,
            sleep=time.sleep,
            console=console,
            progress=progress,
        )
        start = time.perf_counter()
        staging = make_staging(Path(out))
        outcomes = downloader.run(work.jobs, staging)
        install([(o.staged, o.job.dest) for o in outcomes if o.staged], Path(out), staging)
        seconds = time.perf_counter() - start
    assert all(o.fetched for o in outcomes)
    return {"seconds": seconds, "bytes": total}


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "baseline":
        result = baseline(args[0], args[1], int(args[2]))
    else:
        base, key, ref, out, concurrency, verify, *library = args
        result = action(base, key, ref, out, int(concurrency), verify == "true", "".join(library))
    print(json.dumps(result))
