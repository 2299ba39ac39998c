//! Two token fetches by one `Client`, for `scripts/footprint.sh`'s bytes on
//! the wire: the second fetch is what a device's next refresh costs while
//! its `Client` lives on (`fetch_token` fetches once per process).
//!
//! ```text
//! CLIENT_ID=.. CLIENT_SECRET=.. two_fetches TOKEN_URL CA_PEM
//! ```
//!
//! It trusts the certificates in CA_PEM only, fetches a token twice with
//! `client_secret_basic` and exits, printing nothing (status 0), or one line
//! on stderr (status 1). Against a server that closes each connection after
//! its answer, as `examples/token_server` does, the second fetch opens a new
//! connection, as a refresh 40 minutes later would (ureq keeps an idle
//! connection for 15 s only), and resumes the first one's TLS session from
//! the `Client`'s memory.

use std::process::ExitCode;

use cctoken::{Client, Config};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("two_fetches: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(ca_file), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: CLIENT_ID=.. CLIENT_SECRET=.. two_fetches TOKEN_URL CA_PEM".into());
    };
    let env = |name| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let pem = std::fs::read(&ca_file).map_err(|e| format!("cannot read {ca_file}: {e}"))?;
    let config = Config::client_secret_basic(&url, &env("CLIENT_ID")?, env("CLIENT_SECRET")?)
        .add_root_pem(pem)
        .webpki_roots(false);
    let client = Client::new(config).map_err(|e| e.to_string())?;
    for which in ["first", "second"] {
        client.fetch().map_err(|e| format!("{which} fetch: {e}"))?;
    }
    Ok(())
}
