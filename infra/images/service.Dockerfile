# syntax=docker/dockerfile:1
# One image per service, built from the same dependency pins as `make test` (pyproject.toml):
#
#   make vendor   # Chart.js into services/intake/static/vendor/ (the dashboard's; not in git)
#   docker build -f infra/images/service.Dockerfile --build-arg SERVICE=intake \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE=https://git.example.com/complaint-platform -t complaint-platform/intake:0.1.0 .
#
# SERVICE names the final stage (one small stage per service at the end of this file). A stage is
# needed because Docker never expands a build argument inside CMD's exec form, and the exec form
# keeps Python as PID 1, so SIGTERM reaches the service's graceful stop directly (no shell).
# No HEALTHCHECK: Kubernetes probes /health/live and /health/ready; compose declares its own.

# Patch-level tag (bump deliberately); production builds may pin the digest as well (@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie
ARG SERVICE=intake
# OCI image labels (org.opencontainers.image.*): the release, the commit and the repository it was
# built from, so a running image answers "which code is this?" (CI passes all three).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown

# ---- build: resolve the pinned dependencies into a virtualenv -----------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The runtime pins alone first (not the test extras), so this layer is rebuilt only when they
# change. --only-binary: every pin ships wheels; a missing wheel fails here instead of pulling in
# a compiler.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --only-binary=:all: -r /tmp/requirements.txt
COPY contracts ./contracts
COPY services ./services
COPY tools ./tools
# The dashboard's Chart.js comes with services/ from `make vendor` (tools/vendor_charts.py, npm ci
# of tools/charts' lock) run before the build: the page loads it from us, never from a CDN.
RUN test -s services/intake/static/vendor/chart.umd.min.js \
 || { echo "services/intake/static/vendor/chart.umd.min.js is missing: run make vendor before building" >&2; exit 1; }
RUN pip install --no-deps . && pip check

# ---- runtime: the virtualenv and our code, nothing else ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# uid/gid 10001: numeric, so Kubernetes' runAsNonRoot can verify it; no home, no login shell.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]

# ---- one stage per deployable: the module `python -m` runs --------------------------------------
FROM runtime AS intake
LABEL org.opencontainers.image.title="complaint-platform intake"
EXPOSE 8001
CMD ["services.intake.app"]

FROM runtime AS routing
LABEL org.opencontainers.image.title="complaint-platform routing"
EXPOSE 8002
CMD ["services.routing.app"]

FROM runtime AS notify
LABEL org.opencontainers.image.title="complaint-platform notify"
EXPOSE 8004
CMD ["services.notify.app"]

FROM runtime AS carrier
LABEL org.opencontainers.image.title="complaint-platform carrier"
EXPOSE 8003
CMD ["services.carrier.app"]

# The stand-in order system (compose and local clusters only, never production).
FROM runtime AS order-simulator
COPY infra/__init__.py ./infra/__init__.py
COPY infra/simulators ./infra/simulators
EXPOSE 8090
CMD ["infra.simulators.orders", "--host", "0.0.0.0", "--port", "8090"]

# The stand-in telephony provider, Twilio-style (compose and local clusters only, never production).
FROM runtime AS telephony-simulator
COPY infra/__init__.py ./infra/__init__.py
COPY infra/simulators ./infra/simulators
EXPOSE 8092
CMD ["infra.simulators.telephony", "--host", "0.0.0.0", "--port", "8092"]

# The stand-in carriers: FedEx, UPS, USPS and Australia Post (compose and local clusters only).
FROM runtime AS carrier-simulator
COPY infra/__init__.py ./infra/__init__.py
COPY infra/simulators ./infra/simulators
EXPOSE 8091
CMD ["infra.simulators.carriers", "--host", "0.0.0.0", "--port", "8091"]

# ---- the image: the stage named by SERVICE --------------------------------------------------------
FROM ${SERVICE}
