# syntax=docker/dockerfile:1
# fangxin image: `fangxin` on PATH, running as an unprivileged user. Used by every fangxin service
# of docker-compose.yml (migrate, mosquitto-auth, web, ingest, webhooks).
#   docker build -t fangxin .
#   docker run --rm fangxin fangxin --help

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the project and its dependencies in a virtualenv ---------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml: a code change then reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY fangxin ./fangxin
# A regular (not editable) install: the venv holds the code, migrations, templates and static files.
RUN pip install --no-deps . \
    && fangxin --help > /dev/null

# --- runtime: the venv, no build tools, no root --------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="fangxin" \
      org.opencontainers.image.description="Food-safety service: rapid tests, 合格证 traceability, 明厨亮灶 uptime"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FANGXIN_DATA_DIR=/var/lib/fangxin \
    FANGXIN_ENV=production
# Numeric ids, so orchestrators can verify runAsNonRoot. The second directory is where the
# mosquitto-auth job writes the broker's password and ACL files: it runs as uid 1883 (the user of
# the eclipse-mosquitto image, which must read those 0600 files), and a new named volume takes
# this directory's owner.
RUN groupadd --system --gid 10001 fangxin \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/fangxin --no-create-home \
        --shell /usr/sbin/nologin fangxin \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fangxin \
    && install -d -o 1883 -g 1883 -m 0700 /var/lib/fangxin-mosquitto-auth
COPY --from=builder /opt/venv /opt/venv
COPY deploy/docker/entrypoint.sh /usr/local/bin/fangxin-entrypoint
COPY deploy/docker/healthcheck.py /usr/local/bin/fangxin-healthcheck
RUN chmod 0755 /usr/local/bin/fangxin-entrypoint /usr/local/bin/fangxin-healthcheck
USER 10001:10001
WORKDIR /var/lib/fangxin
EXPOSE 8000
ENTRYPOINT ["fangxin-entrypoint"]
CMD ["fangxin", "serve", "--host", "0.0.0.0", "--port", "8000"]
