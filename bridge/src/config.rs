//! Bridge configuration: built-in defaults, overridden by a TOML file, overridden by
//! `TUTTI_BRIDGE_*` environment variables. Every field and its default is listed in
//! docs/bridge.md.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use tutti_config_env::{apply_env, file_or_default, Field};

use crate::media::limits::LimitSettings;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identifies this bridge in GetInfo and logs.
    pub bridge_id: String,
    /// Where the bridge is, for a focus that places conferences by region (empty: none).
    pub region: String,
    /// Endpoints at which stress reaches 1.0 by their count alone.
    pub endpoint_capacity: u32,
    /// After SIGTERM the bridge takes no new conference and exits once its last endpoint has
    /// left, or after this long (the focus moves what is left).
    pub drain_timeout_secs: u64,
    /// An endpoint without media (never connected, failed, or silent past the consent time-out)
    /// and without a control call for it for this long is expired by the bridge itself.
    pub endpoint_expiry_secs: u64,
    /// gRPC control API. Loopback by default; any other address needs the `grpc_tls_*` files.
    pub grpc_address: SocketAddr,
    /// PEM file of the CA that client (focus) certificates must chain to. With `grpc_tls_cert`
    /// and `grpc_tls_key`, the API speaks only mutual TLS; all three empty: plaintext, which is
    /// only accepted on a loopback `grpc_address`.
    pub grpc_tls_ca: String,
    /// PEM file of the bridge's certificate chain (its own certificate first).
    pub grpc_tls_cert: String,
    /// PEM file of the private key of `grpc_tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub grpc_tls_key: String,
    /// /metrics, /health and the bridge channels' WebSockets (/colibri-ws/...).
    pub http_address: SocketAddr,
    /// How clients reach `http_address` for their bridge channel, e.g. `wss://meet.example.com`
    /// behind a TLS proxy that passes /colibri-ws/ on. Empty: `ws://` and the bound address.
    pub bridge_channel_base_url: String,
    /// The one UDP socket all endpoints' media uses. Port 0 binds a free port.
    pub media_address: SocketAddr,
    /// Addresses put in ICE candidates (NAT / Kubernetes node address). Empty: the media
    /// address itself (which must then not be a wildcard).
    pub advertised_addresses: Vec<IpAddr>,
    /// Consent freshness: an endpoint silent this long is reported TIMED_OUT.
    pub consent_timeout_secs: u64,
    /// ICE must select a pair within this long after the remote transport is known.
    pub ice_timeout_secs: u64,
    /// DTLS must complete within this long after ICE selected a pair.
    pub dtls_timeout_secs: u64,
    /// Upper bound of signalled SSRCs per endpoint (SIM + FID groups count every SSRC).
    pub max_sources_per_endpoint: usize,
    /// Packet rate (in + out) at which stress reaches 1.0.
    pub max_packet_rate: f64,
    /// SRTP profiles the bridge accepts, in preference order: "gcm-then-aes-cm", "gcm", "aes-cm".
    pub srtp_profiles: String,
    /// Retransmission cache per video source, in packets (fixed memory per source).
    pub retransmission_cache_packets: usize,
    /// Each receiver's initial bandwidth estimate in bit/s, until its feedback says more; its
    /// allocator spreads the estimate over the video it forwards.
    pub receiver_bandwidth_bps: u64,
    /// Most videos any receiver is forwarded, whatever its lastN (-1: no limit).
    pub last_n: i32,
    /// From this many endpoints in a conference on (0: never), `large_room_last_n` applies.
    pub large_room_endpoints: usize,
    /// Most videos any receiver of a large conference is forwarded.
    pub large_room_last_n: i32,
    /// Forward each receiver only the loudest this many audio streams (0: all of them).
    pub loudest_audio_streams: usize,
    /// SRTP/SRTCP packets per second one endpoint may send; beyond, dropped before decryption
    /// (0: no limit).
    pub endpoint_packet_rate: u32,
    /// Key-frame requests (PLI, FIR entries) and NACKed sequence numbers per second one
    /// endpoint may send; beyond, its feedback is dropped (0: no limit).
    pub endpoint_feedback_rate: u32,
    /// SRTP/SRTCP packets per second the endpoints of one conference may send together (0: no
    /// limit).
    pub conference_packet_rate: u32,
    /// Bridge-channel messages per second one client may send (a second's worth at once);
    /// beyond, dropped unread (0: no limit).
    pub channel_message_rate: u32,
}

/// The gRPC API's mutual-TLS files (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTls {
    /// The CA client certificates must chain to.
    pub ca: PathBuf,
    /// The bridge's certificate chain.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Config {
            bridge_id: "bridge-1".to_string(),
            region: String::new(),
            endpoint_capacity: 1000,
            drain_timeout_secs: 300,
            endpoint_expiry_secs: 60,
            grpc_address: SocketAddr::new(loopback, 10090),
            grpc_tls_ca: String::new(),
            grpc_tls_cert: String::new(),
            grpc_tls_key: String::new(),
            http_address: SocketAddr::new(loopback, 10091),
            bridge_channel_base_url: String::new(),
            media_address: SocketAddr::new(loopback, 10000),
            advertised_addresses: Vec::new(),
            consent_timeout_secs: 30,
            ice_timeout_secs: 15,
            dtls_timeout_secs: 10,
            max_sources_per_endpoint: 20,
            max_packet_rate: 400_000.0,
            srtp_profiles: "gcm-then-aes-cm".to_string(),
            retransmission_cache_packets: 256,
            receiver_bandwidth_bps: 2_500_000,
            last_n: -1,
            large_room_endpoints: 0,
            large_room_last_n: -1,
            loudest_audio_streams: 0,
            endpoint_packet_rate: LimitSettings::default().endpoint_packet_rate,
            endpoint_feedback_rate: LimitSettings::default().endpoint_feedback_rate,
            conference_packet_rate: LimitSettings::default().conference_packet_rate,
            channel_message_rate: 50,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config: Config = file_or_default(file)?;
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `TUTTI_BRIDGE_<FIELD>` overrides (upper-case field names; lists comma-separated).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        apply_env(
            "TUTTI_BRIDGE_",
            var,
            [
                ("bridge_id", Field::text(&mut self.bridge_id)),
                ("region", Field::text(&mut self.region)),
                (
                    "endpoint_capacity",
                    Field::value(&mut self.endpoint_capacity),
                ),
                (
                    "drain_timeout_secs",
                    Field::value(&mut self.drain_timeout_secs),
                ),
                (
                    "endpoint_expiry_secs",
                    Field::value(&mut self.endpoint_expiry_secs),
                ),
                ("grpc_address", Field::value(&mut self.grpc_address)),
                ("grpc_tls_ca", Field::text(&mut self.grpc_tls_ca)),
                ("grpc_tls_cert", Field::text(&mut self.grpc_tls_cert)),
                ("grpc_tls_key", Field::text(&mut self.grpc_tls_key)),
                ("http_address", Field::value(&mut self.http_address)),
                (
                    "bridge_channel_base_url",
                    Field::text(&mut self.bridge_channel_base_url),
                ),
                ("media_address", Field::value(&mut self.media_address)),
                (
                    "advertised_addresses",
                    Field::list(&mut self.advertised_addresses),
                ),
                (
                    "consent_timeout_secs",
                    Field::value(&mut self.consent_timeout_secs),
                ),
                ("ice_timeout_secs", Field::value(&mut self.ice_timeout_secs)),
                (
                    "dtls_timeout_secs",
                    Field::value(&mut self.dtls_timeout_secs),
                ),
                (
                    "max_sources_per_endpoint",
                    Field::value(&mut self.max_sources_per_endpoint),
                ),
                ("max_packet_rate", Field::value(&mut self.max_packet_rate)),
                ("srtp_profiles", Field::text(&mut self.srtp_profiles)),
                (
                    "retransmission_cache_packets",
                    Field::value(&mut self.retransmission_cache_packets),
                ),
                (
                    "receiver_bandwidth_bps",
                    Field::value(&mut self.receiver_bandwidth_bps),
                ),
                ("last_n", Field::value(&mut self.last_n)),
                (
                    "large_room_endpoints",
                    Field::value(&mut self.large_room_endpoints),
                ),
                (
                    "large_room_last_n",
                    Field::value(&mut self.large_room_last_n),
                ),
                (
                    "loudest_audio_streams",
                    Field::value(&mut self.loudest_audio_streams),
                ),
                (
                    "endpoint_packet_rate",
                    Field::value(&mut self.endpoint_packet_rate),
                ),
                (
                    "endpoint_feedback_rate",
                    Field::value(&mut self.endpoint_feedback_rate),
                ),
                (
                    "conference_packet_rate",
                    Field::value(&mut self.conference_packet_rate),
                ),
                (
                    "channel_message_rate",
                    Field::value(&mut self.channel_message_rate),
                ),
            ],
        )?;
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.advertised_addresses.is_empty() && self.media_address.ip().is_unspecified() {
            bail!(
                "media_address {} is a wildcard: set advertised_addresses to the address clients reach",
                self.media_address
            );
        }
        self.srtp_profiles()?;
        self.grpc_tls()?;
        let base = &self.bridge_channel_base_url;
        if !(base.is_empty() || base.starts_with("ws://") || base.starts_with("wss://")) {
            bail!("bridge_channel_base_url {base:?} must start with ws:// or wss://");
        }
        if self.consent_timeout_secs == 0
            || self.ice_timeout_secs == 0
            || self.dtls_timeout_secs == 0
        {
            bail!("timeouts must be at least one second");
        }
        if !(1..=4096).contains(&self.retransmission_cache_packets) {
            bail!("retransmission_cache_packets must be in 1..=4096");
        }
        if self.endpoint_expiry_secs == 0 {
            bail!("endpoint_expiry_secs must be at least one second");
        }
        if self.endpoint_capacity == 0 {
            bail!("endpoint_capacity must be positive");
        }
        if self.max_sources_per_endpoint == 0 || self.max_packet_rate <= 0.0 {
            bail!("max_sources_per_endpoint and max_packet_rate must be positive");
        }
        Ok(())
    }

    pub fn srtp_profiles(&self) -> anyhow::Result<tutti_dtls::SrtpProfiles> {
        Ok(match self.srtp_profiles.as_str() {
            "gcm-then-aes-cm" => tutti_dtls::SrtpProfiles::GcmThenAesCm,
            "gcm" => tutti_dtls::SrtpProfiles::GcmOnly,
            "aes-cm" => tutti_dtls::SrtpProfiles::AesCmOnly,
            other => bail!("srtp_profiles {other:?}: expected gcm-then-aes-cm, gcm or aes-cm"),
        })
    }

    /// The gRPC API's TLS files: `None` for plaintext, which only a loopback address may use.
    pub fn grpc_tls(&self) -> anyhow::Result<Option<GrpcTls>> {
        let files = [&self.grpc_tls_ca, &self.grpc_tls_cert, &self.grpc_tls_key];
        if files.iter().all(|f| f.is_empty()) {
            if !self.grpc_address.ip().is_loopback() {
                bail!(
                    "gRPC on a non-loopback address needs grpc_tls_ca, grpc_tls_cert and \
                     grpc_tls_key (grpc_address is {}; plaintext is only allowed on loopback)",
                    self.grpc_address
                );
            }
            return Ok(None);
        }
        if files.iter().any(|f| f.is_empty()) {
            bail!("grpc_tls_ca, grpc_tls_cert and grpc_tls_key must be set together (mutual TLS)");
        }
        Ok(Some(GrpcTls {
            ca: PathBuf::from(&self.grpc_tls_ca),
            cert: PathBuf::from(&self.grpc_tls_cert),
            key: PathBuf::from(&self.grpc_tls_key),
        }))
    }

    pub fn consent_timeout(&self) -> Duration {
        Duration::from_secs(self.consent_timeout_secs)
    }
    pub fn ice_timeout(&self) -> Duration {
        Duration::from_secs(self.ice_timeout_secs)
    }
    pub fn dtls_timeout(&self) -> Duration {
        Duration::from_secs(self.dtls_timeout_secs)
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
    pub fn endpoint_expiry(&self) -> Duration {
        Duration::from_secs(self.endpoint_expiry_secs)
    }
    /// The last-N limits and loudest-audio setting (negative lastN and 0 mean none).
    pub fn speaker_settings(&self) -> crate::media::SpeakerSettings {
        let limit = |n: i32| usize::try_from(n).ok();
        crate::media::SpeakerSettings {
            last_n: limit(self.last_n),
            large_room: limit(self.large_room_last_n)
                .filter(|_| self.large_room_endpoints > 0)
                .map(|n| (self.large_room_endpoints, n)),
            loudest_audio: (self.loudest_audio_streams > 0).then_some(self.loudest_audio_streams),
        }
    }
    /// The per-endpoint and per-conference rate limits.
    pub fn limit_settings(&self) -> LimitSettings {
        LimitSettings {
            endpoint_packet_rate: self.endpoint_packet_rate,
            endpoint_feedback_rate: self.endpoint_feedback_rate,
            conference_packet_rate: self.conference_packet_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "TUTTI_BRIDGE_MEDIA_ADDRESS" => Some("127.0.0.1:0".into()),
                "TUTTI_BRIDGE_ADVERTISED_ADDRESSES" => Some("192.0.2.1, 192.0.2.2".into()),
                "TUTTI_BRIDGE_CONSENT_TIMEOUT_SECS" => Some("5".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.media_address.port(), 0);
        assert_eq!(config.advertised_addresses.len(), 2);
        assert_eq!(config.consent_timeout(), Duration::from_secs(5));
        assert_eq!(config.grpc_address.port(), 10090);
    }

    #[test]
    fn speaker_limits_come_from_the_environment_and_apply_from_their_room_size() {
        let default = Config::default().speaker_settings();
        assert_eq!(default, crate::media::SpeakerSettings::default());
        assert_eq!(default.last_n_limit(1000), None);
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "TUTTI_BRIDGE_LAST_N" => Some("25".into()),
                "TUTTI_BRIDGE_LARGE_ROOM_ENDPOINTS" => Some("50".into()),
                "TUTTI_BRIDGE_LARGE_ROOM_LAST_N" => Some("10".into()),
                "TUTTI_BRIDGE_LOUDEST_AUDIO_STREAMS" => Some("3".into()),
                _ => None,
            })
            .unwrap();
        let settings = config.speaker_settings();
        assert_eq!(settings.last_n_limit(49), Some(25));
        assert_eq!(settings.last_n_limit(50), Some(10));
        assert_eq!(settings.loudest_audio, Some(3));
        let large_only = Config {
            large_room_endpoints: 20,
            large_room_last_n: 5,
            ..Config::default()
        }
        .speaker_settings();
        assert_eq!(large_only.last_n_limit(19), None);
        assert_eq!(large_only.last_n_limit(20), Some(5));
    }

    #[test]
    fn bad_values_are_named() {
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "TUTTI_BRIDGE_ICE_TIMEOUT_SECS").then(|| "soon".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("TUTTI_BRIDGE_ICE_TIMEOUT_SECS"),
            "{err}"
        );
        let wildcard = Config {
            media_address: "0.0.0.0:10000".parse().unwrap(),
            ..Config::default()
        };
        assert!(wildcard
            .validate()
            .unwrap_err()
            .to_string()
            .contains("advertised_addresses"));
        let bad_profile = Config {
            srtp_profiles: "des".into(),
            ..Config::default()
        };
        assert!(bad_profile.validate().is_err());
        let http_base = Config {
            bridge_channel_base_url: "https://meet.example".into(),
            ..Config::default()
        };
        assert!(http_base
            .validate()
            .unwrap_err()
            .to_string()
            .contains("bridge_channel_base_url"));
        let proxied = Config {
            bridge_channel_base_url: "wss://meet.example".into(),
            ..Config::default()
        };
        assert!(proxied.validate().is_ok());
    }

    #[test]
    fn plaintext_grpc_only_on_loopback() {
        let exposed = Config {
            grpc_address: "10.1.2.3:10090".parse().unwrap(),
            ..Config::default()
        };
        let error = exposed.validate().unwrap_err().to_string();
        assert!(
            error.contains("gRPC on a non-loopback address needs grpc_tls_"),
            "{error}"
        );
        let wildcard = Config {
            grpc_address: "[::]:10090".parse().unwrap(),
            ..Config::default()
        };
        assert!(wildcard.validate().is_err());
        assert_eq!(Config::default().grpc_tls().unwrap(), None);

        let mut tls = exposed.clone();
        tls.apply_env(|name| {
            let file = name.strip_prefix("TUTTI_BRIDGE_GRPC_TLS_")?;
            Some(format!("/etc/tutti/{}.pem", file.to_lowercase()))
        })
        .unwrap();
        tls.validate().unwrap();
        assert_eq!(
            tls.grpc_tls().unwrap(),
            Some(GrpcTls {
                ca: "/etc/tutti/ca.pem".into(),
                cert: "/etc/tutti/cert.pem".into(),
                key: "/etc/tutti/key.pem".into(),
            })
        );

        let partial = Config {
            grpc_tls_key: String::new(),
            ..tls
        };
        let error = partial.validate().unwrap_err().to_string();
        assert!(error.contains("must be set together"), "{error}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let example: Config = toml::from_str(include_str!("../../config/bridge.example.toml"))
            .expect("config/bridge.example.toml");
        example.validate().unwrap();
        assert_eq!(example.region, "eu-west");
        assert!(example.grpc_tls().unwrap().is_some());
    }

    #[test]
    fn toml_file_fields() {
        let config: Config =
            toml::from_str("media_address = \"127.0.0.1:4000\"\nmax_packet_rate = 1000.0\n")
                .unwrap();
        assert_eq!(config.media_address.port(), 4000);
        assert_eq!(config.max_packet_rate, 1000.0);
        assert!(toml::from_str::<Config>("no_such_field = 1").is_err());
        let pooled: Config = toml::from_str(
            "region = \"eu-west\"\nendpoint_capacity = 200\ndrain_timeout_secs = 30\n",
        )
        .unwrap();
        assert_eq!(
            (pooled.region.as_str(), pooled.endpoint_capacity),
            ("eu-west", 200)
        );
        assert_eq!(pooled.drain_timeout(), Duration::from_secs(30));
        let no_capacity = Config {
            endpoint_capacity: 0,
            ..Config::default()
        };
        assert!(no_capacity.validate().is_err());
    }
}
