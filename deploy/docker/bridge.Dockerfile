# The media bridge: the release binary (staged by deploy/docker/prepare) on a slim Debian.
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W libssl3 ca-certificates >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
        && rm -rf /var/lib/apt/lists/*)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/docker/bridge-entrypoint /usr/local/bin/bridge-entrypoint
COPY target/docker/bin/bridge /usr/local/bin/bridge
USER tutti
ENV TUTTI_BRIDGE_MEDIA_ADDRESS=0.0.0.0:10000 \
    TUTTI_BRIDGE_GRPC_ADDRESS=0.0.0.0:10090 \
    TUTTI_BRIDGE_HTTP_ADDRESS=0.0.0.0:10091
EXPOSE 10000/udp 10090/tcp 10091/tcp
HEALTHCHECK --interval=3s --timeout=3s --start-period=5s --retries=3 CMD ["health", "10091", "/health"]
ENTRYPOINT ["bridge-entrypoint"]
