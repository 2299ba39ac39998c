//! The yardstick of `scripts/footprint.sh`: one `client_secret_basic` token
//! fetch written straight against cctoken's own dependencies (ureq with rustls
//! and ring, miniserde, base64) with none of cctoken's code: no checks of the
//! configuration or the answer, no error classification, no redaction.
//! `fetch_token` minus this is what cctoken and its CLI cost.
//!
//! ```text
//! CLIENT_ID=.. CLIENT_SECRET=.. bare_fetch TOKEN_URL [CA_PEM]
//! ```
//!
//! With a CA file only its certificates are trusted; without one, ureq's
//! webpki roots (the `webpki-roots` feature).

use std::error::Error;
use std::sync::Arc;

use base64::Engine;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

#[derive(miniserde::Deserialize)]
struct TokenResponse {
    access_token: String,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: bare_fetch TOKEN_URL [CA_PEM]")?;
    let roots = match args.next() {
        Some(path) => {
            let pem = std::fs::read(path)?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect();
            RootCerts::new_with_certs(&certs)
        }
        None if cfg!(feature = "webpki-roots") => RootCerts::WebPki,
        None => return Err("built without webpki-roots: give a CA file".into()),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = TlsConfig::builder().root_certs(roots).unversioned_rustls_crypto_provider(provider).build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    let credentials = format!("{}:{}", std::env::var("CLIENT_ID")?, std::env::var("CLIENT_SECRET")?);
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let body = agent
        .post(&url)
        .header("Authorization", format!("Basic {basic}"))
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials")?
        .into_body()
        .read_to_string()?;
    let token: TokenResponse = miniserde::json::from_str(&body)?;
    println!("{}", token.access_token);
    Ok(())
}
