# The kube-etl image: the operator (`etl-operator`) and the job runtime (`etl-runtime`) on PATH.
#
# The Helm chart runs the operator from it, and job images are built FROM it (see examples/Dockerfile).
# Build it from the repository root:
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t kube-etl:0.1.0 .
#
# The image runs as the numeric user 10001 and writes nothing at run time: Python writes no bytecode
# (the wheel's modules are compiled at build time), so a read-only root filesystem works. Mount an
# emptyDir at /tmp if a job needs scratch space.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY etl_runtime/ etl_runtime/
COPY operator/ operator/
COPY localcluster/ localcluster/

# The project goes into its own virtualenv as a wheel, so the final stage copies one folder and no
# build tools or sources.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/kube-etl \
    && /opt/kube-etl/bin/python -m pip install --no-cache-dir /wheels/kube_etl-*.whl


FROM python:3.11.14-slim-bookworm

ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="kube-etl" \
      org.opencontainers.image.description="Kubernetes operator and runtime for Python ETL jobs; build job images FROM it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

# checkov:skip=CKV_DOCKER_2:Kubernetes ignores HEALTHCHECK; the chart probes the operator's liveness endpoint, and job pods run to completion.

RUN groupadd --system --gid 10001 etl \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/etl --create-home --shell /usr/sbin/nologin etl

COPY --from=build /opt/kube-etl /opt/kube-etl

ENV PATH=/opt/kube-etl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/etl

WORKDIR /home/etl
USER 10001:10001

# No ENTRYPOINT: the operator's Deployment and the job pods each name their command.
CMD ["etl-operator"]
