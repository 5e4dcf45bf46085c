# VetBook production image. Serves against the PostgreSQL named by DATABASE_URL (required in a container:
# the embedded server is for development) and applies pending migrations before serving.
# No Docker engine runs on the development machines; this file is kept plain and is not built in CI.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements-prod.lock /tmp/requirements-prod.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements-prod.lock

FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 vetbook \
    && useradd --system --uid 10001 --gid vetbook --home-dir /app --shell /usr/sbin/nologin vetbook
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The app runs from its source tree (templates, static files and migrations are found next to web/).
COPY web ./web
COPY templates ./templates
COPY static ./static
COPY piccolo_migrations ./piccolo_migrations
COPY piccolo_conf.py pyproject.toml ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    VETBOOK_SANDBOX_PAYMENTS=0
USER vetbook
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/api/v1/health', timeout=4)"
CMD ["sh", "-c", "test -n \"$DATABASE_URL\" || { echo 'DATABASE_URL is required' >&2; exit 64; }; python -m web.cli migrate && exec python -m web.cli serve --host \"$HOST\" --port \"$PORT\" --workers \"$WEB_CONCURRENCY\""]
