//! Focus configuration: built-in defaults, overridden by a TOML file, overridden by
//! `TUTTI_FOCUS_*` environment variables. Every field and its default is listed in
//! docs/focus.md.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use jid::{BareJid, FullJid, Jid};
use tutti_config_env::{apply_env, file_or_default, Field};
use tutti_focus::room::RoomLimits;

/// The resource the focus binds. A server answers IQs to an account's bare JID itself, so
/// clients address conference requests to this full JID (`hosts.focus = user@domain/focus`).
pub const RESOURCE: &str = "focus";
use serde::Deserialize;

/// How the XMPP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XmppSecurity {
    /// STARTTLS, required: a server that does not offer it is refused.
    Starttls,
    /// No TLS at all; only accepted for a loopback `xmpp_server`.
    Plaintext,
}

impl std::str::FromStr for XmppSecurity {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "starttls" => Ok(XmppSecurity::Starttls),
            "plaintext" => Ok(XmppSecurity::Plaintext),
            other => Err(format!("'{other}' is not starttls or plaintext")),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The focus's account, e.g. `focus@meet.example`; it is also the address clients send
    /// conference requests to.
    pub jid: String,
    pub password: String,
    /// `host:port` of the XMPP server's client port (an IP address). Empty: the `jid`'s domain,
    /// port 5222.
    pub xmpp_server: String,
    pub xmpp_security: XmppSecurity,
    /// The MUC service rooms live on, e.g. `conference.meet.example`; requests for rooms
    /// elsewhere are refused.
    pub muc_domain: String,
    /// Rooms (`room@muc_domain`) the focus joins at start and stays in.
    pub rooms: Vec<String>,
    /// The bridge's gRPC API: `https://bridge.example:10090` (mutual TLS, with the
    /// `bridge_tls_*` files), or `http://` for a loopback bridge only. Used when neither
    /// `bridge_urls` nor `bridge_dns` is set (a pool of one).
    pub bridge_url: String,
    /// The bridges' gRPC APIs, each as `bridge_url`.
    pub bridge_urls: Vec<String>,
    /// A URL whose host name resolves to one A/AAAA record per bridge (a Kubernetes headless
    /// service, a compose service scaled to N): `https://bridges.example:10090`. Resolved at
    /// start and every `bridge_dns_interval_secs`.
    pub bridge_dns: String,
    pub bridge_dns_interval_secs: u64,
    /// PEM file of the CA the bridge's certificate must chain to.
    pub bridge_tls_ca: String,
    /// PEM file of the focus's client certificate chain (its own certificate first).
    pub bridge_tls_cert: String,
    /// PEM file of the private key of `bridge_tls_cert`.
    pub bridge_tls_key: String,
    /// The name the bridge's certificate must carry. Empty: the host of `bridge_url`.
    pub bridge_tls_domain: String,
    /// /metrics and /health.
    pub http_address: SocketAddr,
    /// Login must complete within this long, or the focus exits with the cause.
    pub login_timeout_secs: u64,
    /// Each bridge call must answer within this long.
    pub bridge_timeout_secs: u64,
    /// Jingle requests a second one participant may send (a second's worth at once); beyond,
    /// each is refused with `resource-constraint` (0: no limit).
    pub jingle_request_rate: u32,
    /// Participants of a conference on one bridge; one more goes to another bridge of the
    /// pool, linked by relays (0: no cap; docs/focus.md, Cascading).
    pub participants_per_bridge: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            jid: String::new(),
            password: String::new(),
            xmpp_server: String::new(),
            xmpp_security: XmppSecurity::Starttls,
            muc_domain: String::new(),
            rooms: Vec::new(),
            bridge_url: "http://127.0.0.1:10090".to_owned(),
            bridge_urls: Vec::new(),
            bridge_dns: String::new(),
            bridge_dns_interval_secs: 10,
            bridge_tls_ca: String::new(),
            bridge_tls_cert: String::new(),
            bridge_tls_key: String::new(),
            bridge_tls_domain: String::new(),
            http_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8888),
            login_timeout_secs: 5,
            bridge_timeout_secs: 5,
            jingle_request_rate: RoomLimits::default().jingle_request_rate,
            participants_per_bridge: RoomLimits::default().participants_per_bridge,
        }
    }
}

/// The bridge connection's mutual-TLS files (PEM) and the name its certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub domain: String,
}

/// One bridge's gRPC URL and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeAddress {
    pub url: String,
    /// `None`: plaintext to a loopback bridge.
    pub tls: Option<BridgeTls>,
}

/// Bridges found by resolving a name: each address is `scheme://IP:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeDns {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Every bridge's certificate must carry `domain` (the name, unless `bridge_tls_domain`).
    pub tls: Option<BridgeTls>,
    pub interval: Duration,
}

impl BridgeDns {
    /// The URL of the bridge at `address`.
    pub fn url(&self, address: std::net::SocketAddr) -> String {
        format!("{}://{address}", self.scheme)
    }
}

/// The configuration, checked and parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    pub jid: BareJid,
    /// `jid` with the resource [`RESOURCE`]: the conference-request address.
    pub full_jid: FullJid,
    pub password: String,
    pub xmpp_server: SocketAddr,
    pub xmpp_security: XmppSecurity,
    pub muc_domain: String,
    pub rooms: Vec<BareJid>,
    /// The configured bridges (`bridge_urls`, or `bridge_url` alone).
    pub bridges: Vec<BridgeAddress>,
    /// Bridges found by DNS.
    pub bridge_dns: Option<BridgeDns>,
    pub http_address: SocketAddr,
    pub login_timeout: Duration,
    pub bridge_timeout: Duration,
    pub room_limits: RoomLimits,
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut config: Config = file_or_default(file)?;
        config.apply_env(|name| std::env::var(name).ok())?;
        config.settings()
    }

    /// Applies `TUTTI_FOCUS_<FIELD>` overrides (upper-case field names; lists comma-separated).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        apply_env(
            "TUTTI_FOCUS_",
            var,
            [
                ("jid", Field::text(&mut self.jid)),
                ("password", Field::text(&mut self.password)),
                ("xmpp_server", Field::text(&mut self.xmpp_server)),
                ("xmpp_security", Field::value(&mut self.xmpp_security)),
                ("muc_domain", Field::text(&mut self.muc_domain)),
                ("rooms", Field::list(&mut self.rooms)),
                ("bridge_url", Field::text(&mut self.bridge_url)),
                ("bridge_urls", Field::list(&mut self.bridge_urls)),
                ("bridge_dns", Field::text(&mut self.bridge_dns)),
                (
                    "bridge_dns_interval_secs",
                    Field::value(&mut self.bridge_dns_interval_secs),
                ),
                ("bridge_tls_ca", Field::text(&mut self.bridge_tls_ca)),
                ("bridge_tls_cert", Field::text(&mut self.bridge_tls_cert)),
                ("bridge_tls_key", Field::text(&mut self.bridge_tls_key)),
                (
                    "bridge_tls_domain",
                    Field::text(&mut self.bridge_tls_domain),
                ),
                ("http_address", Field::value(&mut self.http_address)),
                (
                    "login_timeout_secs",
                    Field::value(&mut self.login_timeout_secs),
                ),
                (
                    "bridge_timeout_secs",
                    Field::value(&mut self.bridge_timeout_secs),
                ),
                (
                    "jingle_request_rate",
                    Field::value(&mut self.jingle_request_rate),
                ),
                (
                    "participants_per_bridge",
                    Field::value(&mut self.participants_per_bridge),
                ),
            ],
        )?;
        Ok(())
    }

    /// Checks every field and parses the addresses.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let jid = BareJid::new(&self.jid)
            .map_err(|e| anyhow::anyhow!("jid {:?} is not a JID: {e}", self.jid))?;
        if jid.node().is_none() {
            bail!(
                "jid {:?} has no local part: the focus logs in to an account (user@domain)",
                self.jid
            );
        }
        let full_jid = jid
            .with_resource_str(RESOURCE)
            .map_err(|e| anyhow::anyhow!("jid {:?} with resource {RESOURCE}: {e}", self.jid))?;
        if self.password.is_empty() {
            bail!("password is empty (set it in the file or TUTTI_FOCUS_PASSWORD)");
        }
        let xmpp_server = if self.xmpp_server.is_empty() {
            let domain: IpAddr = jid.domain().as_str().parse().map_err(|_| {
                anyhow::anyhow!(
                    "xmpp_server is empty and the domain {} is not an IP address: set xmpp_server",
                    jid.domain()
                )
            })?;
            SocketAddr::new(domain, 5222)
        } else {
            self.xmpp_server.parse().map_err(|e| {
                anyhow::anyhow!("xmpp_server {:?} is not IP:port: {e}", self.xmpp_server)
            })?
        };
        if self.xmpp_security == XmppSecurity::Plaintext && !xmpp_server.ip().is_loopback() {
            bail!(
                "xmpp_security = \"plaintext\" is only allowed for a loopback xmpp_server, not {xmpp_server}"
            );
        }
        if self.muc_domain.is_empty() || self.muc_domain.contains(['@', '/']) {
            bail!("muc_domain {:?} is not a domain", self.muc_domain);
        }
        let rooms = self
            .rooms
            .iter()
            .map(|room| {
                let jid = BareJid::new(room)
                    .map_err(|e| anyhow::anyhow!("room {room:?} is not a JID: {e}"))?;
                if jid.node().is_none() || jid.domain().as_str() != self.muc_domain {
                    bail!("room {room:?} is not room@{}", self.muc_domain);
                }
                Ok(jid)
            })
            .collect::<anyhow::Result<_>>()?;
        let urls = if self.bridge_urls.is_empty() && self.bridge_dns.is_empty() {
            std::slice::from_ref(&self.bridge_url)
        } else {
            &self.bridge_urls[..]
        };
        let bridges = urls
            .iter()
            .map(|url| {
                Ok(BridgeAddress {
                    url: url.clone(),
                    tls: self.bridge_tls(url)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bridge_dns = if self.bridge_dns.is_empty() {
            None
        } else {
            let url = &self.bridge_dns;
            let uri: tonic::codegen::http::Uri = url
                .parse()
                .map_err(|e| anyhow::anyhow!("bridge_dns {url:?} is not a URL: {e}"))?;
            let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
                bail!("bridge_dns {url:?} needs a host name and a port");
            };
            if self.bridge_dns_interval_secs == 0 {
                bail!("bridge_dns_interval_secs must be at least one second");
            }
            Some(BridgeDns {
                scheme: uri.scheme_str().unwrap_or_default().to_owned(),
                host: host.to_owned(),
                port,
                tls: self.bridge_tls(url)?,
                interval: Duration::from_secs(self.bridge_dns_interval_secs),
            })
        };
        if self.login_timeout_secs == 0 || self.bridge_timeout_secs == 0 {
            bail!("timeouts must be at least one second");
        }
        Ok(Settings {
            jid,
            full_jid,
            password: self.password.clone(),
            xmpp_server,
            xmpp_security: self.xmpp_security,
            muc_domain: self.muc_domain.clone(),
            rooms,
            bridges,
            bridge_dns,
            http_address: self.http_address,
            login_timeout: Duration::from_secs(self.login_timeout_secs),
            bridge_timeout: Duration::from_secs(self.bridge_timeout_secs),
            room_limits: RoomLimits {
                jingle_request_rate: self.jingle_request_rate,
                participants_per_bridge: self.participants_per_bridge,
            },
        })
    }
}

impl Config {
    /// Checks a bridge URL with the `bridge_tls_*` fields: https with all three files, or
    /// http (no files) to a loopback host.
    fn bridge_tls(&self, url: &str) -> anyhow::Result<Option<BridgeTls>> {
        let uri: tonic::codegen::http::Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("bridge_url {url:?} is not a URL: {e}"))?;
        let Some(host) = uri.host() else {
            bail!("bridge_url {url:?} has no host");
        };
        let files = [
            &self.bridge_tls_ca,
            &self.bridge_tls_cert,
            &self.bridge_tls_key,
        ];
        match uri.scheme_str() {
            Some("https") => {
                if files.iter().any(|f| f.is_empty()) {
                    bail!(
                        "bridge_url {url:?} needs bridge_tls_ca, bridge_tls_cert and \
                         bridge_tls_key (mutual TLS)"
                    );
                }
                let domain = if self.bridge_tls_domain.is_empty() {
                    host.trim_start_matches('[').trim_end_matches(']')
                } else {
                    &self.bridge_tls_domain
                };
                Ok(Some(BridgeTls {
                    ca: PathBuf::from(&self.bridge_tls_ca),
                    cert: PathBuf::from(&self.bridge_tls_cert),
                    key: PathBuf::from(&self.bridge_tls_key),
                    domain: domain.to_owned(),
                }))
            }
            Some("http") => {
                if files.iter().any(|f| !f.is_empty()) || !self.bridge_tls_domain.is_empty() {
                    bail!("bridge_tls_* are set but bridge_url {url:?} is http://: use https://");
                }
                let ip = host.trim_start_matches('[').trim_end_matches(']');
                let loopback =
                    host == "localhost" || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    bail!(
                        "plaintext bridge_url {url:?} is only allowed for a loopback bridge: \
                         use https:// with bridge_tls_ca, bridge_tls_cert and bridge_tls_key"
                    );
                }
                Ok(None)
            }
            _ => bail!("bridge_url {url:?} is not an http(s) URL"),
        }
    }
}

impl Settings {
    /// The focus's own address as a JID, with its resource.
    pub fn jid(&self) -> Jid {
        Jid::from(self.full_jid.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            jid: "focus@localhost".into(),
            password: "pw".into(),
            xmpp_server: "127.0.0.1:5222".into(),
            muc_domain: "conference.localhost".into(),
            ..Config::default()
        }
    }

    #[test]
    fn env_overrides_file_values() {
        let mut config = base();
        config
            .apply_env(|name| match name {
                "TUTTI_FOCUS_ROOMS" => {
                    Some("a@conference.localhost, b@conference.localhost".into())
                }
                "TUTTI_FOCUS_XMPP_SECURITY" => Some("plaintext".into()),
                "TUTTI_FOCUS_PARTICIPANTS_PER_BRIDGE" => Some(" 2 ".into()),
                _ => None,
            })
            .unwrap();
        let settings = config.settings().unwrap();
        assert_eq!(settings.rooms.len(), 2);
        assert_eq!(settings.xmpp_security, XmppSecurity::Plaintext);
        assert_eq!(settings.room_limits.participants_per_bridge, 2);
        assert_eq!(
            base()
                .settings()
                .unwrap()
                .room_limits
                .participants_per_bridge,
            0
        );
    }

    #[test]
    fn plaintext_is_refused_off_loopback() {
        let config = Config {
            xmpp_server: "192.0.2.1:5222".into(),
            xmpp_security: XmppSecurity::Plaintext,
            ..base()
        };
        let error = config.settings().unwrap_err().to_string();
        assert!(error.contains("loopback"), "{error}");
    }

    #[test]
    fn the_bridge_needs_mutual_tls_off_loopback() {
        for url in [
            "http://127.0.0.1:10090",
            "http://[::1]:10090",
            "http://localhost:1",
        ] {
            let config = Config {
                bridge_url: url.into(),
                ..base()
            };
            assert_eq!(config.settings().unwrap().bridges[0].tls, None, "{url}");
        }
        let exposed = Config {
            bridge_url: "http://10.0.0.2:10090".into(),
            ..base()
        };
        let error = exposed.settings().unwrap_err().to_string();
        assert!(
            error.contains("only allowed for a loopback bridge"),
            "{error}"
        );

        let mut tls = Config {
            bridge_url: "https://10.0.0.2:10090".into(),
            ..base()
        };
        let error = tls.settings().unwrap_err().to_string();
        assert!(error.contains("needs bridge_tls_ca"), "{error}");
        tls.apply_env(|name| {
            let file = name.strip_prefix("TUTTI_FOCUS_BRIDGE_TLS_")?;
            (file != "DOMAIN").then(|| format!("/etc/tutti/{}.pem", file.to_lowercase()))
        })
        .unwrap();
        let expected = BridgeTls {
            ca: "/etc/tutti/ca.pem".into(),
            cert: "/etc/tutti/cert.pem".into(),
            key: "/etc/tutti/key.pem".into(),
            domain: "10.0.0.2".into(),
        };
        assert_eq!(
            tls.settings().unwrap().bridges[0].tls,
            Some(expected.clone())
        );
        tls.bridge_tls_domain = "bridge-1.internal".into();
        assert_eq!(
            tls.settings().unwrap().bridges[0].tls,
            Some(BridgeTls {
                domain: "bridge-1.internal".into(),
                ..expected
            })
        );

        let mixed = Config {
            bridge_url: "http://127.0.0.1:10090".into(),
            ..tls
        };
        let error = mixed.settings().unwrap_err().to_string();
        assert!(error.contains("use https://"), "{error}");
        let not_a_url = Config {
            bridge_url: "grpc://127.0.0.1:10090".into(),
            ..base()
        };
        assert!(not_a_url.settings().is_err());
    }

    #[test]
    fn a_pool_is_a_list_of_bridges_and_a_name_to_resolve() {
        let one = base().settings().unwrap();
        assert_eq!(one.bridges.len(), 1, "bridge_url alone: a pool of one");
        assert_eq!(one.bridges[0].url, "http://127.0.0.1:10090");
        assert_eq!(one.bridge_dns, None);

        let mut pool = base();
        pool.apply_env(|name| match name {
            "TUTTI_FOCUS_BRIDGE_URLS" => {
                Some("https://10.0.0.2:10090, https://10.0.0.3:10090".into())
            }
            "TUTTI_FOCUS_BRIDGE_DNS" => Some("https://bridges.internal:10090".into()),
            "TUTTI_FOCUS_BRIDGE_DNS_INTERVAL_SECS" => Some("3".into()),
            other => {
                let file = other.strip_prefix("TUTTI_FOCUS_BRIDGE_TLS_")?;
                (file != "DOMAIN").then(|| format!("/etc/tutti/{}.pem", file.to_lowercase()))
            }
        })
        .unwrap();
        let settings = pool.settings().unwrap();
        let urls: Vec<&str> = settings.bridges.iter().map(|b| b.url.as_str()).collect();
        assert_eq!(urls, ["https://10.0.0.2:10090", "https://10.0.0.3:10090"]);
        assert_eq!(
            settings.bridges[1].tls.as_ref().map(|t| t.domain.as_str()),
            Some("10.0.0.3")
        );
        let dns = settings.bridge_dns.expect("a name to resolve");
        assert_eq!((dns.host.as_str(), dns.port), ("bridges.internal", 10090));
        assert_eq!(dns.interval, Duration::from_secs(3));
        assert_eq!(
            dns.tls.as_ref().map(|t| t.domain.clone()),
            Some("bridges.internal".to_owned()),
            "every discovered bridge's certificate must carry the name"
        );
        assert_eq!(
            dns.url("10.0.0.9:10090".parse().unwrap()),
            "https://10.0.0.9:10090"
        );

        let plaintext_name = Config {
            bridge_dns: "http://bridges.internal:10090".into(),
            ..base()
        };
        assert!(plaintext_name.settings().is_err());
        let no_port = Config {
            bridge_dns: "https://bridges.internal".into(),
            ..pool.clone()
        };
        assert!(no_port.settings().is_err());
    }

    #[test]
    fn the_pool_example_file_is_valid() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/focus-pool.example.toml");
        let mut example: Config = file_or_default(Some(&file)).unwrap();
        example.password = "from the environment".into();
        let settings = example.settings().unwrap();
        assert_eq!(settings.bridges.len(), 2);
        assert!(settings.bridge_dns.is_some());
        assert!(settings.bridges.iter().all(|b| b.tls.is_some()));
        assert_eq!(settings.room_limits.participants_per_bridge, 50);
    }

    #[test]
    fn bad_values_are_named() {
        let bad_env = base().apply_env(|name| {
            (name == "TUTTI_FOCUS_LOGIN_TIMEOUT_SECS").then(|| "soon".to_owned())
        });
        assert!(bad_env
            .unwrap_err()
            .to_string()
            .contains("LOGIN_TIMEOUT_SECS"));
        let no_node = Config {
            jid: "localhost".into(),
            ..base()
        };
        assert!(no_node
            .settings()
            .unwrap_err()
            .to_string()
            .contains("local part"));
        let foreign_room = Config {
            rooms: vec!["r@elsewhere".into()],
            ..base()
        };
        assert!(foreign_room.settings().is_err());
        let no_password = Config {
            password: String::new(),
            ..base()
        };
        assert!(no_password.settings().is_err());
    }
}
