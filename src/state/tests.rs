//! The state file's key and format, without a file: times go through an
//! anchor of a virtual clock.

use std::time::Duration;

use super::*;
use crate::TransportError;

const BOOT_ID: &str = "0b6c8a5e-7d1f-4c2e-9a3b-5f8e2d1c4b7a";
const SEC: Duration = Duration::from_secs(1);

fn config() -> Config {
    Config::client_secret_basic("https://auth.example.com/token", "device-7", "s3cr3t")
}

/// Now, 1000 s after boot, on a virtual clock well ahead of the real one (so
/// that instants before it exist however long ago the machine booted).
fn anchor() -> Anchor {
    Anchor { instant: Instant::now() + 10_000 * SEC, boot: 1000 * SEC }
}

fn cached(now: Instant) -> Cached {
    let token = Token::new(AccessToken::new("eyJ.tok3n.sig"), now - 60 * SEC, 3600 * SEC)
        .with_scope(Some("telemetry:write read".to_owned()));
    Cached { token, refresh_at: now + 1800 * SEC, rejected: false }
}

fn gate(now: Instant, error: Error) -> Gate {
    Gate { failed_at: now - 5 * SEC, until: now + 300 * SEC, error }
}

fn text(cached: Option<&Cached>, gate: Option<&Gate>, anchor: Anchor) -> String {
    encode(BOOT_ID, &key(&config()), cached, gate, 3, None, anchor).expect("encodes")
}

fn read(text: &str, anchor: Anchor) -> Result<Saved, Why> {
    decode(text.as_bytes(), BOOT_ID, &key(&config()), anchor, anchor.instant)
}

#[test]
fn a_token_and_a_gate_come_back_as_they_were() {
    let anchor = anchor();
    let now = anchor.instant;
    let (c, g) = (cached(now), gate(now, Error::CredentialsRejected { status: 401, oauth: None }));
    let saved = read(&text(Some(&c), Some(&g), anchor), anchor).expect("decodes");
    let back = saved.cached.expect("a token");
    assert_eq!(back.token, c.token, "value, scope, issued_at, lifetime and expiry");
    assert_eq!((back.refresh_at, back.rejected), (c.refresh_at, false));
    let back = saved.gate.expect("a gate");
    assert_eq!((back.failed_at, back.until), (g.failed_at, g.until));
    assert!(back.error.is_credentials_rejected());
    assert_eq!(saved.failures, 3);

    // Read by another process, later: the same instants, on its own anchor.
    let later = Anchor { instant: now + 42 * SEC, boot: anchor.boot + 42 * SEC };
    let saved = read(&text(Some(&c), None, anchor), later).expect("decodes");
    assert_eq!(saved.cached.map(|c| c.token), Some(c.token));
    assert!(saved.gate.is_none());
}

#[test]
fn the_text_is_versioned_lines_with_a_checksum() {
    let anchor = anchor();
    let now = anchor.instant;
    let mut c = cached(now);
    c.rejected = true;
    let text = text(Some(&c), None, anchor);
    let lines: Vec<&str> = text.lines().collect();
    let key = hex(&key(&config()));
    assert_eq!(
        lines[..lines.len() - 1],
        [
            "cctoken-state 1",
            &format!("boot-id={BOOT_ID}"),
            &format!("key={key}"),
            "token=eyJ.tok3n.sig",
            "token-scope=telemetry:write read",
            "token-issued=940000000000",
            "token-lifetime=3600000000000",
            "token-refresh=2800000000000",
            "token-rejected=1",
            "failures=3",
        ]
    );
    assert!(lines[lines.len() - 1].starts_with("sha256=") && text.ends_with('\n'));
}

#[test]
fn every_error_keeps_what_the_cache_and_the_cli_ask_of_it() {
    let anchor = anchor();
    let now = anchor.instant;
    let minute = Some(60 * SEC);
    let invalid_client = OAuthError::new("invalid_client", Some("no such client"), None);
    let errors = [
        Error::CredentialsRejected { status: 401, oauth: None },
        Error::CredentialsRejected { status: 400, oauth: Some(invalid_client) },
        Error::OAuth { status: 400, oauth: OAuthError::new("invalid_scope", None, None), retry_after: None },
        Error::OAuth {
            status: 503,
            oauth: OAuthError::new("temporarily_unavailable", None, None),
            retry_after: minute,
        },
        Error::HttpStatus { status: 429, retry_after: minute },
        Error::HttpStatus { status: 404, retry_after: None },
        Error::from(TransportError::new(TransportKind::Timeout).with_cause(std::io::Error::other("x"))),
        Error::from(TransportKind::Tls),
        Error::from(TransportKind::Connect),
        Error::from(TransportKind::Io),
        Error::from(TransportKind::Clock),
        Error::InvalidResponse { status: 200, reason: "not JSON" },
        Error::config("bad"),
        Error::RateLimited { retry_at: now },
        Error::Backoff {
            retry_at: now,
            last: Box::new(Error::CredentialsRejected { status: 403, oauth: None }),
        },
    ];
    for error in errors {
        let g = gate(now, error.clone());
        let back = read(&text(None, Some(&g), anchor), anchor).expect("decodes").gate.expect("a gate").error;
        let status = |e: &Error| match e {
            Error::CredentialsRejected { status, .. }
            | Error::OAuth { status, .. }
            | Error::HttpStatus { status, .. }
            | Error::InvalidResponse { status, .. } => Some(*status),
            Error::Backoff { last, .. } => match **last {
                Error::CredentialsRejected { status, .. } => Some(status),
                _ => None,
            },
            _ => None,
        };
        let code = |e: &Error| match e {
            Error::CredentialsRejected { oauth, .. } => oauth.as_ref().map(|o| o.code().to_owned()),
            Error::OAuth { oauth, .. } => Some(oauth.code().to_owned()),
            _ => None,
        };
        assert_eq!(back.is_transient(), error.is_transient(), "{error}");
        assert_eq!(back.is_credentials_rejected(), error.is_credentials_rejected(), "{error}");
        assert_eq!(back.retry_after(), error.retry_after(), "{error}");
        assert_eq!(back.transport_kind(), error.transport_kind(), "{error}");
        assert_eq!(status(&back), status(&error), "{error}");
        assert_eq!(code(&back), code(&error), "{error}");
    }
}

#[test]
fn each_part_of_the_configuration_changes_the_key() {
    let base = key(&config());
    assert_eq!(key(&config()), base, "the same configuration, the same key");
    let url = "https://auth.example.com/token";
    let variants = [
        Config::client_secret_basic("https://auth.example.com/token2", "device-7", "s3cr3t"),
        Config::client_secret_basic(url, "device-8", "s3cr3t"),
        Config::client_secret_basic(url, "device-7", "s3cr3t").auth_style(AuthStyle::BasicRaw),
        Config::client_secret_post(url, "device-7", "s3cr3t"),
        config().scope("read"),
        config().param("audience", "api"),
        config().param("audience", "api2"),
        config().param("resource", "api"),
        Config::client_secret_basic(url, "device-7", "s3cr3t2"),
        Config::client_secret_basic(url, "device-7", ""),
        // Mutual TLS: the certificate and key are the credential.
        Config::tls_client_auth(url, "device-7", "chain", "key"),
        Config::tls_client_auth(url, "device-7", "chain2", "key"),
        Config::tls_client_auth(url, "device-7", "chain", "key2"),
        // private_key_jwt: the signing key is the credential.
        Config::private_key_jwt(url, "device-7", "key"),
        Config::private_key_jwt(url, "device-7", "key2"),
    ];
    let mut keys = vec![base];
    for variant in &variants {
        let k = key(variant);
        assert!(!keys.contains(&k), "{variant:?}");
        keys.push(k);
    }
    // Parts are delimited: moving a character from one part to the next changes the key.
    let a = Config::client_secret_basic(url, "ab", "c").scope("x").scope("y");
    let b = Config::client_secret_basic(url, "a", "bc").scope("xy");
    assert_ne!(key(&a), key(&b));
    assert_ne!(key(&config().scope("x").scope("y")), key(&config().scope("xy")));
    // Settings that do not decide which token is issued do not change it.
    assert_eq!(key(&config().timeout(Duration::from_secs(5)).default_lifetime(SEC)), base);
}

#[test]
fn the_key_is_a_digest_not_the_secret() {
    let secret = "s3cr3t";
    let text = text(Some(&cached(anchor().instant)), None, anchor());
    assert!(!text.contains(secret));
    // Nor its digest alone, which would tell two devices with the same secret apart from
    // nothing.
    assert!(!text.contains(&hex(&sha256(secret.as_bytes()))));
    let state = StateFile::new("/run/agent/token.state", &config());
    let debug = format!("{state:?}");
    assert!(!debug.contains(secret) && !debug.contains(&hex(&state.key)), "{debug}");
}

#[test]
fn any_cut_or_changed_byte_is_refused() {
    let anchor = anchor();
    let now = anchor.instant;
    let text = text(Some(&cached(now)), Some(&gate(now, Error::from(TransportKind::Timeout))), anchor);
    assert!(read(&text, anchor).is_ok());
    for len in 0..text.len() {
        assert!(read(&text[..len], anchor).is_err(), "cut at {len}");
    }
    let bytes = text.as_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut changed = bytes.to_vec();
        changed[i] ^= 0x01;
        let result = decode(&changed, BOOT_ID, &key(&config()), anchor, anchor.instant);
        assert!(result.is_err(), "byte {i} changed");
    }
}

#[test]
fn what_is_refused_and_why() {
    let anchor = anchor();
    let now = anchor.instant;
    let good = text(Some(&cached(now)), None, anchor);
    let with_sum = |body: &str| format!("{body}sha256={}\n", hex(&sha256(body.as_bytes())));
    let other_boot = good.replace(BOOT_ID, "11111111-2222-3333-4444-555555555555");
    let body = other_boot.rsplit_once("sha256=").map(|(body, _)| body).unwrap_or_default();
    let key = hex(&key(&config()));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "it is empty"),
        ("hello\n".into(), "not a cctoken state file"),
        ("\u{0}\u{ff}garbage".into(), "not a cctoken state file"),
        ("cctoken-state 2\nwhatever follows\n".into(), "version 2 is newer than this cctoken's (1)"),
        ("cctoken-state 0\n".into(), "not a cctoken state file"),
        ("cctoken-state 1".into(), "truncated or damaged"),
        (good.replace("token-issued=9", "token-issued=8"), "truncated or damaged"),
        (with_sum(body), "written before the last reboot"),
        (
            with_sum(&format!("cctoken-state 1\nboot-id={BOOT_ID}\nkey={}\nfailures=0\n", "0".repeat(64))),
            "another",
        ),
        (with_sum(&format!("cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\n")), "no failures line"),
        (with_sum(&format!("cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\nfailures=-1\n")), "not one"),
        (with_sum(&format!("cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\nkey={key}\n")), "repeated"),
        // Whose it is comes first: a hand-written file of another boot, without a checksum.
        (format!("cctoken-state 1\nboot-id=11111111-2222-3333-4444-555555555555\nkey={key}\n"), "reboot"),
        (
            with_sum(&format!("cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\nfailures=0\ntoken=t\n")),
            "missing",
        ),
        (
            with_sum(&format!(
                "cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\nfailures=0\ntoken=t\ntoken-issued=2000000000000\n\
                 token-lifetime=0\ntoken-refresh=2000000000000\ntoken-rejected=0\n"
            )),
            "issued in the future",
        ),
        (
            with_sum(&format!(
                "cctoken-state 1\nboot-id={BOOT_ID}\nkey={key}\nfailures=0\ngate-failed=900000000000\n\
                 gate-until=950000000000\ngate-error=teapot\n"
            )),
            "unknown kind of error",
        ),
    ];
    for (text, why) in cases {
        match read(&text, anchor) {
            Err(e) => assert!(e.to_string().contains(why), "{text:?}: {e}"),
            Ok(saved) => panic!("{text:?} read as {saved:?}"),
        }
    }
    // Lines that a later version 1 may add are skipped.
    let body = good.rsplit_once("sha256=").map(|(body, _)| body).unwrap_or_default();
    assert!(read(&with_sum(&format!("{body}later-field=x\n")), anchor).is_ok());
}

#[test]
fn a_state_is_plausible_up_to_the_now_it_is_read_at() {
    // Saved by a cache on a virtual clock an hour ahead of the anchor's.
    let anchor = anchor();
    let ahead = anchor.instant + 3600 * SEC;
    let (c, g) = (cached(ahead), gate(ahead, Error::CredentialsRejected { status: 401, oauth: None }));
    let text = text(Some(&c), Some(&g), anchor);
    let at = |now| decode(text.as_bytes(), BOOT_ID, &key(&config()), anchor, now);
    let saved = at(ahead).expect("plausible at the virtual clock's now");
    assert_eq!(saved.cached.map(|c| c.token.issued_at()), Some(c.token.issued_at()));
    assert_eq!(saved.gate.map(|g| g.until), Some(g.until));
    // Read earlier than the token was issued, it is not.
    let early = at(ahead - 61 * SEC).map(|_| ()).expect_err("a token issued later than now");
    assert!(early.to_string().contains("issued in the future"), "{early}");
}

#[test]
fn what_cannot_be_written_is_not() {
    let anchor = anchor();
    let now = anchor.instant;
    let key = key(&config());
    let mut c = cached(now);
    c.token = Token::new(AccessToken::new("a\nb"), now, SEC);
    assert!(encode(BOOT_ID, &key, Some(&c), None, 0, None, anchor).is_err(), "a line break in the token");
    c.token = Token::new(AccessToken::new("t".repeat(MAX_STATE as usize)), now, SEC);
    assert!(encode(BOOT_ID, &key, Some(&c), None, 0, None, anchor).is_err(), "too large");
    // An instant before boot exists only on a virtual clock.
    c.token = Token::new(AccessToken::new("t"), now - 2000 * SEC, SEC);
    assert!(encode(BOOT_ID, &key, Some(&c), None, 0, None, anchor).is_err(), "before boot");
}

#[test]
fn the_floor_of_the_trusted_time_survives_restarts_and_reboots() {
    let anchor = anchor();
    let now = anchor.instant;
    // Learned 100 s ago: 2026-12-01 00:00 UTC then.
    let floor = Floor { unix: 1_796_083_200 * SEC, at: now - 100 * SEC };
    let text = encode(BOOT_ID, &key(&config()), None, None, 0, Some(floor), anchor).expect("encodes");
    assert!(text.contains("\ntime=1796083200000000000\ntime-boot=900000000000\n"), "{text}");

    // Read in the same boot, 42 s later by another process: the same floor, exactly.
    let later = Anchor { instant: now + 42 * SEC, boot: anchor.boot + 42 * SEC };
    let back = decode_floor(text.as_bytes(), BOOT_ID, later).expect("a floor");
    assert_eq!(back.at(later.instant), floor.at(later.instant));
    assert_eq!(back.at(later.instant), (1_796_083_200 + 142) * SEC);

    // In the next boot, 30 s after it began: at least the saved time plus those 30 s.
    let next_boot = Anchor { instant: now + 5000 * SEC, boot: 30 * SEC };
    let back = decode_floor(text.as_bytes(), "another-boot", next_boot).expect("a floor");
    assert_eq!(back.at(next_boot.instant), (1_796_083_200 + 30) * SEC);

    // Of another configuration: the time is the same for all.
    let other_key = [7u8; 32];
    let text_other = encode(BOOT_ID, &other_key, None, None, 0, Some(floor), anchor).expect("encodes");
    assert_eq!(decode_floor(text_other.as_bytes(), BOOT_ID, anchor), Some(floor));
    assert!(matches!(read(&text_other, anchor), Err(Why::OtherKey)), "its token is still not ours");
}

#[test]
fn no_floor_comes_from_a_file_without_one_or_one_that_is_not_whole() {
    let anchor = anchor();
    let now = anchor.instant;
    let floor = Floor { unix: 1_796_083_200 * SEC, at: now - 100 * SEC };
    assert_eq!(decode_floor(text(None, None, anchor).as_bytes(), BOOT_ID, anchor), None, "none saved");
    let text = encode(BOOT_ID, &key(&config()), None, None, 0, Some(floor), anchor).expect("encodes");
    let damaged = text.replace("time=1796083200", "time=1896083200");
    assert_eq!(decode_floor(damaged.as_bytes(), BOOT_ID, anchor), None, "checksum");
    let newer = text.replacen("cctoken-state 1", "cctoken-state 2", 1);
    assert_eq!(decode_floor(newer.as_bytes(), BOOT_ID, anchor), None, "another format");
    // Saved at a boot-clock time this boot has not reached yet.
    let earlier = Anchor { instant: now - 200 * SEC, boot: anchor.boot - 200 * SEC };
    assert_eq!(decode_floor(text.as_bytes(), BOOT_ID, earlier), None, "held in the future");
}
