# The jobtask image: the worker (celery) and the read API (uvicorn) share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
# The flower extra: the same image runs Flower (docker compose --profile flower).
RUN pip install '.[flower]' \
    && useradd --create-home --uid 10001 jobtask

# Celery refuses to be comfortable as root, and neither process needs it.
USER jobtask
CMD ["celery", "-A", "worker", "worker", "-Q", "job_task_events", "-c", "2", "-l", "INFO"]
