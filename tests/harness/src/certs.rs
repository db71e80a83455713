//! Certificates for the control plane's mutual-TLS tests: a CA with a bridge (server) and a
//! focus (client) certificate, as `scripts/certs` makes them for local runs, plus what the
//! tests must see refused: an expired client certificate from the same CA, and a second CA with
//! a client and a server certificate of its own. Made with rcgen: an expired certificate needs
//! validity dates in the past, which `openssl x509 -req -days` cannot give.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The files `TestPki::write` made (PEM). Keys are `<name>-key.pem` next to `<name>.pem`.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    /// Writes into `dir` (created): `ca.pem`; `bridge.pem` (server, for `localhost` and
    /// 127.0.0.1) and `focus.pem` (client), both issued by `ca`; `expired-focus.pem` (client, by
    /// `ca`, valid only in 2020); `other-ca.pem` with `other-focus.pem` (client) and
    /// `other-bridge.pem` (server, `localhost` and 127.0.0.1) issued by it.
    pub fn write(dir: &Path) -> anyhow::Result<TestPki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = TestPki {
            dir: dir.to_owned(),
        };
        let server_names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let ca = pki.ca("ca", "Tutti test CA")?;
        pki.leaf(
            "bridge",
            "tutti bridge",
            &server_names,
            Usage::Server,
            &ca,
            false,
        )?;
        pki.leaf("focus", "tutti focus", &[], Usage::Client, &ca, false)?;
        pki.leaf(
            "expired-focus",
            "tutti focus",
            &[],
            Usage::Client,
            &ca,
            true,
        )?;
        let other = pki.ca("other-ca", "Another CA")?;
        pki.leaf(
            "other-focus",
            "tutti focus",
            &[],
            Usage::Client,
            &other,
            false,
        )?;
        pki.leaf(
            "other-bridge",
            "tutti bridge",
            &server_names,
            Usage::Server,
            &other,
            false,
        )?;
        Ok(pki)
    }

    /// The certificate file of `name` (e.g. "focus").
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// The private key file of `name`.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    fn ca(&self, name: &str, common_name: &str) -> anyhow::Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        self.save(name, &cert.pem(), &key)?;
        Ok(Issuer::new(params, key))
    }

    fn leaf(
        &self,
        name: &str,
        common_name: &str,
        alt_names: &[String],
        usage: Usage,
        issuer: &Issuer<'static, KeyPair>,
        expired: bool,
    ) -> anyhow::Result<()> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(alt_names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2020, 12, 31);
        }
        let cert = params.signed_by(&key, issuer)?;
        self.save(name, &cert.pem(), &key)
    }

    fn save(&self, name: &str, cert: &str, key: &KeyPair) -> anyhow::Result<()> {
        std::fs::write(self.cert(name), cert)?;
        std::fs::write(self.key(name), key.serialize_pem())?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Usage {
    Server,
    Client,
}
