# The conference focus: the release binary (staged by deploy/docker/prepare) on a slim Debian.
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W ca-certificates >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends ca-certificates \
        && rm -rf /var/lib/apt/lists/*)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/docker/focus-entrypoint /usr/local/bin/focus-entrypoint
COPY target/docker/bin/focus /usr/local/bin/focus
USER tutti
ENV TUTTI_FOCUS_HTTP_ADDRESS=0.0.0.0:8888
EXPOSE 8888/tcp
HEALTHCHECK --interval=3s --timeout=3s --start-period=10s --retries=3 CMD ["health", "8888", "/health"]
ENTRYPOINT ["focus-entrypoint"]
