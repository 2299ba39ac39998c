//! What must hold for every answer a token endpoint can give: the oracle
//! shared by the cargo-fuzz target (`fuzz/fuzz_targets/parse_response.rs`,
//! which includes this file by path) and the seeded property test in
//! `tests/parser_props.rs`.
//!
//! An input is raw bytes, decoded by [`decode`]:
//!
//! ```text
//! status (u16, little-endian) | flags | [content-type \n] [retry-after \n] [date \n] | body
//! ```
//!
//! where bit 0, 1, 2 of `flags` say whether the content type, retry-after and
//! date headers are present. Missing bytes mean status 0, no headers, an
//! empty body: every byte string is a valid input.
#![allow(dead_code)] // the fuzz target and the property test use different parts

use std::time::{Duration, Instant};

use base64::Engine as _;
use cctoken::{AccessToken, Config, Error, HttpResponse, Token};

/// The client id the oracle's client sends.
pub const ID: &str = "fuzz-client";
/// The oracle client's secret: a space, `+`, `/` and `%`, so its
/// form-encoded, Basic and whitespace-mangled forms all differ.
pub const SECRET: &str = "fuzz s3cr3t+/%";
/// Longest `Display` of an error: a fixed sentence plus at most three pieces
/// of server text of about 200 characters each.
pub const MAX_DISPLAY: usize = 1024;

/// One decoded input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub date: Option<String>,
    pub body: Vec<u8>,
}

/// Decodes any byte string into a [`Case`] (see the module docs).
pub fn decode(data: &[u8]) -> Case {
    let status = u16::from_le_bytes([data.first().copied().unwrap_or(0), data.get(1).copied().unwrap_or(0)]);
    let flags = data.get(2).copied().unwrap_or(0);
    let mut rest = data.get(3..).unwrap_or_default();
    let mut header = |bit: u8| {
        if flags & (1 << bit) == 0 {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let value = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(value)
    };
    let (content_type, retry_after, date) = (header(0), header(1), header(2));
    Case { status, content_type, retry_after, date, body: rest.to_vec() }
}

/// The bytes that [`decode`] turns into `case` (header values must not
/// contain `\n`).
pub fn encode(case: &Case) -> Vec<u8> {
    let mut out = case.status.to_le_bytes().to_vec();
    let headers = [&case.content_type, &case.retry_after, &case.date];
    let flags = headers.iter().enumerate().fold(0u8, |f, (bit, h)| f | (u8::from(h.is_some()) << bit));
    out.push(flags);
    for value in headers.into_iter().flatten() {
        assert!(!value.contains('\n'), "header values cannot hold a newline: {value:?}");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(&case.body);
    out
}

/// The configuration every case is parsed with.
pub fn config() -> Config {
    Config::client_secret_basic("https://auth.example.com/token", ID, SECRET)
}

/// Every form in which the secret could show: as configured, form-encoded
/// (`client_secret_basic`, `client_secret_post`), inside either Basic value.
pub fn secret_forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let form = "fuzz+s3cr3t%2B%2F%25";
    vec![
        SECRET.to_owned(),
        form.to_owned(),
        b64.encode(format!("{ID}:{SECRET}")),
        b64.encode(format!("{ID}:{form}")),
    ]
}

/// What [`check`] saw, for a test to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Token,
    CredentialsRejected,
    OAuth,
    HttpStatus,
    InvalidResponse,
}

/// Parses `data` and asserts every property; panics (which the fuzzer and
/// the test report) when one fails.
pub fn check(data: &[u8]) -> Kind {
    check_case(&decode(data))
}

/// [`check`] for an already decoded case.
pub fn check_case(case: &Case) -> Kind {
    let response = HttpResponse::new(case.status, &case.body)
        .content_type(case.content_type.as_deref())
        .retry_after(case.retry_after.as_deref())
        .date(case.date.as_deref());
    let now = Instant::now();
    let success = (200..300).contains(&case.status);
    let err = match config().parse_response(&response, now) {
        Ok(token) => {
            assert!(success, "a token from HTTP {}", case.status);
            let value = token.access_token().secret();
            assert!(!value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()), "token {value:?}");
            assert_eq!(token.authorization(), format!("Bearer {value}"));
            assert!(token.lifetime() <= Duration::from_secs(24 * 3600), "{:?}", token.lifetime());
            assert_eq!(token.issued_at(), now);
            assert_eq!(token.expires_at(), now + token.lifetime());
            // Debug does not depend on the token's value (a plain `contains`
            // would flag a token such as "access_t", a part of a field name).
            let other = Token::new(AccessToken::new("other"), token.issued_at(), token.lifetime())
                .with_scope(token.scope().map(str::to_owned));
            assert_eq!(format!("{token:?}"), format!("{other:?}"), "Debug shows the token");
            return Kind::Token;
        }
        Err(err) => err,
    };

    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.is_empty(), "{debug}");
    assert!(!display.chars().any(char::is_control), "control character in {display:?}");
    assert!(display.chars().count() <= MAX_DISPLAY, "{} chars: {display:?}", display.chars().count());
    for secret in secret_forms() {
        assert!(!display.contains(&secret), "Display shows {secret:?}: {display}");
        assert!(!debug.contains(&secret), "Debug shows {secret:?}: {debug}");
    }
    let _ = err.is_transient();
    if case.retry_after.is_none() {
        assert_eq!(err.retry_after(), None, "{debug}");
    }
    if matches!(case.status, 401 | 403) {
        assert!(err.is_credentials_rejected(), "HTTP {} gave {debug}", case.status);
    }
    let oauth = match &err {
        Error::CredentialsRejected { oauth, .. } => oauth.as_ref(),
        Error::OAuth { oauth, .. } => Some(oauth),
        _ => None,
    };
    if let Some(oauth) = oauth {
        for text in [Some(oauth.code()), oauth.description(), oauth.uri()].into_iter().flatten() {
            assert!(text.chars().count() <= 201, "server text not cut: {text:?}");
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert_eq!(text, text.trim(), "untrimmed {text:?}");
        }
    }
    match err {
        Error::CredentialsRejected { status, .. } => {
            assert_eq!(status, case.status);
            Kind::CredentialsRejected
        }
        Error::OAuth { status, .. } => {
            assert_eq!(status, case.status);
            Kind::OAuth
        }
        Error::HttpStatus { status, .. } => {
            assert!(!success, "HttpStatus for a {status}");
            assert_eq!(status, case.status);
            Kind::HttpStatus
        }
        Error::InvalidResponse { status, reason } => {
            assert!(success, "InvalidResponse for a {status}: {reason}");
            assert_eq!(status, case.status);
            Kind::InvalidResponse
        }
        other => panic!("the parser cannot give {other:?}"),
    }
}
