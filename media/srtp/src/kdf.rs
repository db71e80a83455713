//! SRTP key derivation (RFC 3711 §4.3) with the AES-CM PRF, also used by AEAD_AES_128_GCM
//! (RFC 7714 §11). The key derivation rate is always 0, so every session key is derived once
//! when a context is created.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};

use crate::Error;

/// Key derivation labels of RFC 3711 §4.3.1 (and §4.3.2 for SRTCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// The length of the salt input of the PRF; shorter master salts (GCM's 96 bits) are padded
/// with zeros on the right, as libsrtp and RFC 7714 §11 do.
const PRF_SALT_LEN: usize = 14;

/// Both supported profiles use AES-128 master keys.
const MASTER_KEY_LEN: usize = 16;

/// AES-CM PRF keyed with one master key.
pub(crate) struct Kdf {
    key: EncryptingKey,
    salt: [u8; PRF_SALT_LEN],
}

impl Kdf {
    pub(crate) fn new(master_key: &[u8], master_salt: &[u8]) -> Result<Kdf, Error> {
        if master_key.len() != MASTER_KEY_LEN || master_salt.len() > PRF_SALT_LEN {
            return Err(Error::BadKeyLength);
        }
        let unbound =
            UnboundCipherKey::new(&AES_128, master_key).map_err(|_| Error::BadKeyLength)?;
        let key = EncryptingKey::ctr(unbound).map_err(|_| Error::BadKeyLength)?;
        let mut salt = [0u8; PRF_SALT_LEN];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        Ok(Kdf { key, salt })
    }

    /// Fills `out` with the PRF output for `label` (index DIV kdr = 0).
    pub(crate) fn derive(&self, label: Label, out: &mut [u8]) -> Result<(), Error> {
        // x = key_id XOR master_salt, key_id = label || r (56 bits, right-aligned in 112 bits);
        // with r = 0 only the label byte (byte 7 of the 14) changes. IV = x * 2^16.
        let mut iv = [0u8; 16];
        iv[..PRF_SALT_LEN].copy_from_slice(&self.salt);
        iv[7] ^= label as u8;
        out.fill(0);
        self.key
            .less_safe_encrypt(out, EncryptionContext::Iv128(iv.into()))
            .map_err(|_| Error::BadKeyLength)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 Appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let kdf = Kdf::new(
            &unhex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &unhex("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        let mut enc = [0u8; 16];
        kdf.derive(Label::RtpEncryption, &mut enc).unwrap();
        assert_eq!(enc.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut salt = [0u8; 14];
        kdf.derive(Label::RtpSalt, &mut salt).unwrap();
        assert_eq!(salt.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        kdf.derive(Label::RtpAuthentication, &mut auth).unwrap();
        assert_eq!(
            auth.to_vec(),
            unhex(
                "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    #[test]
    fn labels_give_distinct_keys() {
        let kdf = Kdf::new(&[7u8; 16], &[9u8; 12]).unwrap();
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        kdf.derive(Label::RtpEncryption, &mut a).unwrap();
        kdf.derive(Label::RtcpEncryption, &mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(
            Kdf::new(&[0u8; 15], &[0u8; 14]).err(),
            Some(Error::BadKeyLength)
        );
        assert_eq!(
            Kdf::new(&[0u8; 16], &[0u8; 15]).err(),
            Some(Error::BadKeyLength)
        );
    }
}
