# The jobtask image: the worker (celery) and the read API (uvicorn) share it.
# Pinned to an exact version; pin the digest where you build (docker-compose.yml says how).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The hashed lock: the runtime, the flower extra (the same image runs Flower, docker compose
# --profile flower) and the build backend, each version pinned and its hash checked.
COPY requirements/service.txt requirements/service.txt
RUN pip install --require-hashes -r requirements/service.txt
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
RUN pip install --no-deps --no-build-isolation . \
    && useradd --create-home --uid 10001 jobtask

# Celery refuses to be comfortable as root, and neither process needs it.
USER jobtask
CMD ["celery", "-A", "worker", "worker", "-Q", "job_task_events", "-c", "2", "-l", "INFO"]
