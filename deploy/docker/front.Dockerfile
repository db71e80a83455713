# The HTTPS front: Debian's nginx serving the demo page (web/dist, built by
# deploy/docker/prepare) and passing /xmpp-websocket, /http-bind and /colibri-ws/ on.
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W nginx-light >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends nginx-light \
        && rm -rf /var/lib/apt/lists/*)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/docker/front-entrypoint /usr/local/bin/front-entrypoint
COPY deploy/nginx/nginx.conf /etc/nginx/nginx.conf
COPY web/dist /srv/tutti/www
USER tutti
EXPOSE 8080/tcp 8443/tcp
HEALTHCHECK --interval=3s --timeout=3s --start-period=5s --retries=3 CMD ["health", "8080", "/healthz"]
ENTRYPOINT ["front-entrypoint"]
