# syntax=docker/dockerfile:1
# The modelscale controller image (`modelscale controller`): ghcr.io/modelscale/controller.
# Build from the repository root: docker build -t ghcr.io/modelscale/controller:0.1.0 .
# The base is pinned by tag and digest; scripts/cluster-up.sh builds and loads it into kind.

FROM python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7 AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/modelscale
COPY pyproject.toml README.md ./
COPY autoscaler ./autoscaler
RUN /opt/modelscale/bin/pip install --no-cache-dir . \
 && /opt/modelscale/bin/modelscale --help >/dev/null

FROM python:3.12.11-slim-bookworm@sha256:519591d6871b7bc437060736b9f7456b8731f1499a57e22e6c285135ae657bf7
LABEL org.opencontainers.image.title="modelscale controller" \
      org.opencontainers.image.description="Per-model autoscaling targets for KServe on Knative" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/modelscale /opt/modelscale
# The root filesystem is read-only in the cluster: no byte code, caches under /tmp.
ENV PATH=/opt/modelscale/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /tmp
USER 65532:65532
EXPOSE 9095
ENTRYPOINT ["modelscale"]
CMD ["controller", "--metrics-bind=0.0.0.0:9095"]
