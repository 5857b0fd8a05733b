# NetWatch — one image for the central instance.
# The install steps are the ones `make test` exercises (scripts/bootstrap.sh installs the same
# package into a venv); Docker cannot run on the development machines, so keep them in step.
# Base images by tag, not yet by digest: the digest cannot be learnt where this file is written
# (no registry access). To pin, on a machine with Docker:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   (the "Digest:" line, the index)
# and write both FROM lines as python:3.11-slim-bookworm@sha256:<that digest>; the tag then only
# documents it. Renew the digest when rebuilding for security updates (Debian point releases).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY netwatch ./netwatch
COPY probes ./probes
COPY alerts ./alerts
RUN python -m venv /opt/netwatch && /opt/netwatch/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 TZ=Asia/Ho_Chi_Minh
RUN useradd --system --home /var/lib/netwatch --create-home netwatch \
    && apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/netwatch /opt/netwatch
# Raw ICMP needs CAP_NET_RAW and nothing else; give it to the interpreter, not to root.
RUN setcap cap_net_raw+ep "$(readlink -f /opt/netwatch/bin/python)"
COPY config/examples /etc/netwatch/examples
# The config and its secrets come from outside: a file mounted at /etc/netwatch/netwatch.yaml and
# the environment (deploy/compose.yaml, docs/deployment.md).
USER netwatch
WORKDIR /var/lib/netwatch
VOLUME ["/var/lib/netwatch"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["/opt/netwatch/bin/python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"]
ENTRYPOINT ["/opt/netwatch/bin/netwatch"]
CMD ["run", "--config", "/etc/netwatch/netwatch.yaml", "--listen", "0.0.0.0:8080"]
