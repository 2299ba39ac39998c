//! A loopback HTTPS token server, so that a real fetch (TLS handshake and
//! all) can be measured without network or credentials.
//! `scripts/footprint.sh` runs it to measure `fetch_token`'s peak memory and
//! the bytes a fetch puts on the wire.
//!
//! ```text
//! cargo run --example token_server -- DIR [CHAIN_PEM KEY_PEM]
//! ```
//!
//! It prints two lines, the token URL (`https://localhost:PORT/token`) and
//! the CA file to trust, and then answers every request with a one-hour token
//! `footprint-token` until its stdin is closed. It listens on 127.0.0.1 only.
//!
//! Without CHAIN_PEM it presents a certificate signed by a test CA generated
//! at start, which it writes to `DIR/ca.pem`. With CHAIN_PEM (the
//! certificates to send, leaf first) and KEY_PEM (the leaf's private key) it
//! presents that chain instead, writes nothing, and prints `-` for the CA
//! file: the caller made the chain and holds its root.
//!
//! Each connection is served to its end (the server closes it after the
//! answer), then reported as a line on stdout:
//!
//! ```text
//! connection 1: version=TLSv1_3 resumed=false from_client=B to_client=B
//! ```
//!
//! with the TCP payload bytes each way, TLS records and all.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Server, TestPki, token_response};

const USAGE: &str = "usage: token_server DIR [CHAIN_PEM KEY_PEM]";

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let answer = |_: &support::Recorded| token_response("footprint-token", 3600);
    let (server, ca_file) = match &args[..] {
        [dir] => {
            let pki = TestPki::new();
            let ca_file = dir.join("ca.pem");
            if let Err(e) = std::fs::write(&ca_file, &pki.ca_pem) {
                eprintln!("token_server: cannot write {}: {e}", ca_file.display());
                return ExitCode::FAILURE;
            }
            (Server::https(&pki, answer), ca_file.display().to_string())
        }
        [_dir, chain, key] => match load(chain, key) {
            Ok((chain, key)) => (Server::https_with_chain(chain, key, answer), "-".to_owned()),
            Err(e) => {
                eprintln!("token_server: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "{}\n{ca_file}", server.url_localhost("/token"));
    let _ = stdout.flush();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| report_connections(&server, &done));
        // Serve until whoever started the server closes our stdin (or exits).
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        done.store(true, Ordering::SeqCst);
    });
    drop(server);
    ExitCode::SUCCESS
}

/// The certificates in `chain` (leaf first) and the private key in `key`.
fn load(chain: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", chain.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", chain.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a key from {}: {e}", key.display()))?;
    Ok((certs, key))
}

/// Prints a line for each connection the server has finished, until `done`.
fn report_connections(server: &Server, done: &AtomicBool) {
    let mut reported = 0;
    while !done.load(Ordering::SeqCst) {
        let connections = server.wait_tls_connections(reported + 1, Duration::from_millis(100));
        let mut stdout = io::stdout().lock();
        for (c, number) in connections[reported..].iter().zip(reported + 1..) {
            let version = c.version.map_or("none".to_owned(), |v| format!("{v:?}"));
            let _ = writeln!(
                stdout,
                "connection {number}: version={version} resumed={} from_client={} to_client={}",
                c.resumed, c.bytes_from_client, c.bytes_to_client
            );
        }
        let _ = stdout.flush();
        reported = connections.len();
    }
}
