"""Plain parallel GETs, the baseline of ``bench/download.py``, in a process of its own.

    python bench/download_worker.py URLS_JSON OUT CONCURRENCY

URLS_JSON lists ``[name, url]`` pairs, largest file first (the order the action uses).
Streams each body into its file with a pool of CONCURRENCY threads and one pooled
``requests`` session: no digest, no staging, no retries. Prints the bytes.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

CHUNK = 1 << 20


def main(urls_json: str, out: str, concurrency: int) -> int:
    urls: list[tuple[str, str]] = json.loads(Path(urls_json).read_text())
    root = Path(out)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency, max_retries=0))

    def get(item: tuple[str, str] | list[str]) -> int:
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

    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(get, urls))
    session.close()
    return total


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
