# syntax=docker/dockerfile:1
# Production image: gunicorn (config/gunicorn.conf.py) serving wsgi:app as uid 10001 on port 8080.
# Build stage compiles wheels; the runtime stage gets only the virtualenv and the source tree.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt ./
# requirements.txt holds the runtime closure only; test tools live in requirements-dev.txt.
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml alembic.ini wsgi.py ./
COPY alembic ./alembic
COPY app ./app
COPY config ./config
# Editable install: console scripts (stateset-sequencer-admin, ves-verify) resolve to /app/app, where
# app.db.migrations expects alembic.ini and alembic/ next to the package.
RUN pip install --no-deps -e . \
 && python -m compileall -q /app/app /app/alembic /app/config

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 sequencer \
 && useradd --system --uid 10001 --gid sequencer --home-dir /app --no-create-home --shell /usr/sbin/nologin sequencer \
 && install -d -o sequencer -g sequencer -m 0750 /run/stateset-sequencer
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    PROMETHEUS_MULTIPROC_DIR=/run/stateset-sequencer
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=2)"]
ENTRYPOINT ["gunicorn", "-c", "config/gunicorn.conf.py"]
CMD ["wsgi:app"]
