//! A loopback HTTPS token server with a test CA generated at start, so that a
//! real fetch (TLS handshake and all) can be measured without network or
//! credentials. `scripts/footprint.sh` runs it to measure `fetch_token`'s peak
//! memory.
//!
//! ```text
//! cargo run --example token_server -- DIR
//! ```
//!
//! It writes the CA certificate to `DIR/ca.pem`, prints two lines, the token
//! URL (`https://localhost:PORT/token`) and the CA file's path, and then
//! answers every request with a one-hour token `footprint-token` until its
//! stdin is closed. It listens on 127.0.0.1 only.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Server, TestPki, token_response};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: token_server DIR");
        return ExitCode::from(2);
    };
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("footprint-token", 3600));
    let ca_file = dir.join("ca.pem");
    if let Err(e) = std::fs::write(&ca_file, &pki.ca_pem) {
        eprintln!("token_server: cannot write {}: {e}", ca_file.display());
        return ExitCode::FAILURE;
    }
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "{}\n{}", server.url_localhost("/token"), ca_file.display());
    let _ = stdout.flush();
    // Serve until whoever started the server closes our stdin (or exits).
    let _ = io::copy(&mut io::stdin(), &mut io::sink());
    drop(server);
    ExitCode::SUCCESS
}
