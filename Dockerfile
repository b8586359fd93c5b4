# The bridge: gunicorn with the app and its delivery workers, as a non-root user.
#   docker build -t wandb-github-bridge .
#   docker run -p 127.0.0.1:8080:8080 -v /srv/bridge:/data -e GITHUB_TOKEN=... \
#       -v /srv/bridge/config.yaml:/etc/wandb-bridge.yaml:ro wandb-github-bridge
# Inside the container serve binds 0.0.0.0:8080 (the only way to be reached from
# outside it); publish that port on the host's loopback only, for the reverse proxy in
# front (docs/operations.md). /srv/bridge must be writable by uid 10001: SQLite keeps
# its -wal and -shm files beside the database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WANDB_BRIDGE_CONFIG=/etc/wandb-bridge.yaml

RUN useradd --system --uid 10001 --home-dir /data --create-home bridge
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY action ./action
RUN pip install . && rm -rf /src

USER bridge
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4).status != 200)"
# SQLite (the default store URL is relative) lands in /data; mount a volume there.
ENTRYPOINT ["wandb-bridge"]
CMD ["serve", "--bind", "0.0.0.0:8080", "--workers", "2"]
