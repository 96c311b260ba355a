# One image for web, worker and beat (see docker-compose.yml and docs/deployment.md).

# redis-server loads every backup into a scratch server to prove it restores, and must read the
# RDB version the live Redis writes: take it from the same Redis 7 line as the compose service
# (Debian build, so it runs on the Debian-based Python image).
FROM redis:7-bookworm AS redis

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/var/lib/aws-masker \
    BACKUP_DIR=/backups

COPY --from=redis /usr/local/bin/redis-server /usr/local/bin/redis-server

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app /var/lib/aws-masker /backups \
    && chown app:app /var/lib/aws-masker /backups \
    && chmod 0700 /backups

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=root:root . .
# The C pass that restores JSON answers (masking/_restore.c); the compiler does not stay in the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && python scripts/build_speedups.py \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* var/build
# Fails the build if the settings module, the ASGI app or the C pass cannot be imported.
RUN DEBUG=1 SECRET_KEY=build-only python -c "import config.asgi, masking._restore" \
    && redis-server --version

USER app
EXPOSE 8000
CMD ["python", "-m", "config.server", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
