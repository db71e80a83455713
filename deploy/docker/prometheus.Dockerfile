# Prometheus from Debian's package, scraping the focus and every bridge
# (deploy/prometheus/prometheus.yml) with the chart's alert rules mounted by docker-compose.yml.
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W prometheus >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends prometheus \
        && rm -rf /var/lib/apt/lists/* /usr/share/javascript/moment-timezone/data)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
RUN mkdir -p /prometheus && chown tutti:tutti /prometheus
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/prometheus/prometheus.yml /etc/tutti/prometheus.yml
USER tutti
EXPOSE 9090/tcp
HEALTHCHECK --interval=3s --timeout=3s --start-period=5s --retries=3 CMD ["health", "9090", "/-/ready"]
ENTRYPOINT ["prometheus", "--config.file=/etc/tutti/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d"]
