-- Prosody of the compose deployment (docker-compose.yml, deploy/docker/prosody.Dockerfile).
-- ENV_NAME is the environment variable NAME, which the image's entrypoint sets:
--   TUTTI_XMPP_DOMAIN   the XMPP domain (guests log in at guest.DOMAIN, rooms are conference.DOMAIN)
--   TUTTI_PUBLIC_HOST   the name browsers reach the front at (TURN's host for them too)
--   TUTTI_TURN_PORT     coturn's port there (UDP and TCP)
--   TUTTI_TURN_SECRET   coturn's shared secret (read from the secrets volume)
daemonize = false
pidfile = "/var/lib/prosody/prosody.pid"
data_path = "/var/lib/prosody"
certificates = "/etc/tutti/pki"
interfaces = { "*" }
c2s_ports = { 5222 }
-- The focus logs in over STARTTLS with the deployment CA's certificate (pki volume).
c2s_require_encryption = true
authentication = "internal_hashed"
log = { info = "*stderr" }

-- Behind the HTTPS front (deploy/nginx): plain HTTP inside the compose network.
http_ports = { 5280 }
http_interfaces = { "*" }
https_ports = { }
http_default_host = ENV_TUTTI_XMPP_DOMAIN
http_external_url = "https://" .. ENV_TUTTI_PUBLIC_HOST .. "/"
http_paths = { websocket = "/xmpp-websocket"; bosh = "/http-bind" }
consider_websocket_secure = true
consider_bosh_secure = true
-- The front (any private address: the compose network's subnet is Docker's choice).
trusted_proxies = { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16" }

modules_enabled = {
    "roster", "saslauth", "tls", "disco", "ping", "presence", "message", "iq",
    "websocket", "bosh", "turn_external",
}
modules_disabled = { "s2s", "limits" }
network_settings = { nagle = false; opportunistic_writes = true }
gc = { mode = "incremental"; threshold = 200; speed = 200 }

-- XEP-0215 external services: time-limited TURN credentials from coturn's shared secret,
-- UDP and TCP on the same port (lib-jitsi-meet asks the domain, extdisco:2 then :1).
turn_external_secret = ENV_TUTTI_TURN_SECRET
turn_external_host = ENV_TUTTI_PUBLIC_HOST
turn_external_port = tonumber(ENV_TUTTI_TURN_PORT)
turn_external_tcp = true
turn_external_ttl = 86400

-- The focus's account (registered by the entrypoint).
VirtualHost (ENV_TUTTI_XMPP_DOMAIN)
    ssl = { certificate = "/etc/tutti/pki/xmpp.pem"; key = "/etc/tutti/pki/xmpp-key.pem" }

-- Browsers join as anonymous guests.
VirtualHost ("guest." .. ENV_TUTTI_XMPP_DOMAIN)
    authentication = "anonymous"
    ssl = { certificate = "/etc/tutti/pki/xmpp.pem"; key = "/etc/tutti/pki/xmpp-key.pem" }

-- Rooms: open at once, real JIDs visible (lib-jitsi-meet recognises the focus by its JID).
Component ("conference." .. ENV_TUTTI_XMPP_DOMAIN) "muc"
    muc_room_locking = false
    muc_room_default_public_jids = true
