//! The PKCS#12 client certificate: decoded once, in memory, into the PEM identity the HTTP client
//! uses. OpenSSL 3 defaults (AES-256 with PBKDF2) and legacy exports (3DES, RC2) both load.

use base64::Engine;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use watchfloor_core::Secret;

/// Decodes base64 text of a PKCS#12 file, ignoring line breaks and spaces.
pub fn from_base64(text: &Secret) -> Result<Vec<u8>, String> {
    let compact: String = text
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    // The decoder's own messages quote the offending character: a piece of the secret.
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| {
            let problem = match e {
                base64::DecodeError::InvalidByte(at, _) => {
                    format!("an invalid character at position {at}")
                }
                base64::DecodeError::InvalidLastSymbol(at, _) => {
                    format!("an invalid last character at position {at}")
                }
                base64::DecodeError::InvalidLength(n) => {
                    format!("a length of {n}, which base64 cannot have")
                }
                base64::DecodeError::InvalidPadding => "invalid padding".to_string(),
            };
            format!(
                "the certificate is not valid base64 ({problem}); give the base64 of the .p12 file"
            )
        })
}

/// Opens a PKCS#12 file and returns its key and certificate chain as PEM, held as a secret.
pub fn identity_pem(der: &[u8], passphrase: &str) -> Result<Secret, String> {
    let store = KeyStore::from_pkcs12(der, passphrase, Pkcs12ImportPolicy::Strict).map_err(|e| {
        let detail = e.to_string();
        if detail.to_lowercase().contains("mac") {
            format!("cannot open the PKCS#12 certificate: wrong passphrase, or a damaged file ({detail})")
        } else {
            format!("cannot open the PKCS#12 certificate: {detail}")
        }
    })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("the PKCS#12 certificate holds no private key with its certificate")?;
    if chain.certs().is_empty() {
        return Err("the PKCS#12 certificate holds a key but no certificate".into());
    }
    let mut pem = pem_block("PRIVATE KEY", chain.key().as_der());
    for cert in chain.certs() {
        pem.push_str(&pem_block("CERTIFICATE", cert.as_der()));
    }
    Ok(Secret::new(pem))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_errors_do_not_quote_the_secret() {
        let err = from_base64(&Secret::new("QUJD!ZEVG")).unwrap_err();
        assert_eq!(
            err,
            "the certificate is not valid base64 (an invalid character at position 4); give the base64 of the .p12 file"
        );
        assert!(!err.contains('!') && !err.contains("33"));
        assert_eq!(from_base64(&Secret::new("QUJD\nREVG")).unwrap(), b"ABCDEF");
    }
}
