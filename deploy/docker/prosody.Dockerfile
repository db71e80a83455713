# Prosody (XMPP, WebSocket, BOSH, XEP-0215 TURN credentials) from Debian's package, and the
# deployment's one-shot key maker (`pki`: openssl). Runs as the user tutti (uid 10001).
# BASE: debian:bookworm-slim, or a base made by deploy/docker/bases (packages already there).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN dpkg-query -W prosody lua-unbound openssl ca-certificates >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends prosody lua-unbound openssl ca-certificates \
        && rm -rf /var/lib/apt/lists/*)
RUN id -u tutti >/dev/null 2>&1 \
    || useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tutti
RUN mkdir -p /var/lib/prosody /etc/tutti/pki /etc/tutti/secrets /etc/tutti/tls \
    && chown -R tutti:tutti /var/lib/prosody /etc/tutti
COPY deploy/docker/health /usr/local/bin/health
COPY deploy/docker/prosody-entrypoint /usr/local/bin/prosody-entrypoint
COPY deploy/docker/pki /usr/local/bin/pki
COPY deploy/prosody/prosody.cfg.lua /etc/prosody/prosody.cfg.lua
USER tutti
EXPOSE 5222/tcp 5280/tcp
HEALTHCHECK --interval=3s --timeout=3s --start-period=5s --retries=3 CMD ["health", "5280", "/http-bind"]
ENTRYPOINT ["prosody-entrypoint"]
