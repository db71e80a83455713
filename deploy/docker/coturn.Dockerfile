# coturn from Debian's package: TURN over UDP and TCP with time-limited credentials.
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W coturn >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends coturn \
        && rm -rf /var/lib/apt/lists/*)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/docker/coturn-entrypoint /usr/local/bin/coturn-entrypoint
COPY deploy/coturn/turnserver.conf /etc/tutti/turnserver.conf
USER tutti
EXPOSE 3478/udp 3478/tcp 49160-49179/udp
HEALTHCHECK --interval=3s --timeout=3s --start-period=5s --retries=3 CMD ["health", "tcp", "3478"]
ENTRYPOINT ["coturn-entrypoint"]
