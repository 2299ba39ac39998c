//! Parsing the token endpoint's answer: pure, no I/O.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use miniserde::de::{Deserialize, Map, Visitor};
use miniserde::make_place;

use crate::config::Config;
use crate::error::{Error, OAuthError, redact};
use crate::request::{basic_credentials, form_encode};
use crate::token::{AccessToken, Token};

/// The most of a response body that a transport needs to read: token
/// responses are a few hundred bytes, a JWT with many claims a few KiB.
/// cctoken's own transport reads no more; a longer 2xx body is refused as
/// [`Error::InvalidResponse`], a longer error body is judged by its status.
pub const MAX_BODY: u64 = 64 * 1024;

/// The parts of an HTTP response that decide what a token endpoint said.
///
/// Whatever HTTP stack sent the [`TokenRequest`](crate::TokenRequest) fills
/// this in and hands it to [`Config::parse_response`]: the status and body,
/// and the headers that matter, when the server sent them.
///
/// ```
/// let response = cctoken::HttpResponse::new(429, b"")
///     .retry_after(Some("120"))
///     .date(Some("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert_eq!(response.status(), 429);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HttpResponse<'a> {
    status: u16,
    content_type: Option<&'a str>,
    retry_after: Option<&'a str>,
    date: Option<&'a str>,
    body: &'a [u8],
}

impl<'a> HttpResponse<'a> {
    /// A response with this status and body (at most [`MAX_BODY`] bytes of
    /// it need be read), and none of the headers below.
    pub fn new(status: u16, body: &'a [u8]) -> Self {
        HttpResponse { status, content_type: None, retry_after: None, date: None, body }
    }

    /// The `Content-Type` header: it tells an HTML page from a JSON error.
    pub fn content_type(mut self, value: Option<&'a str>) -> Self {
        self.content_type = value;
        self
    }

    /// The `Retry-After` header: seconds or an HTTP date.
    pub fn retry_after(mut self, value: Option<&'a str>) -> Self {
        self.retry_after = value;
        self
    }

    /// The `Date` header: a `Retry-After` date is measured against it.
    pub fn date(mut self, value: Option<&'a str>) -> Self {
        self.date = value;
        self
    }

    /// The `Date` header, as seconds since the Unix epoch, if it is a valid
    /// IMF-fixdate.
    #[cfg_attr(not(feature = "ureq"), allow(dead_code))]
    pub(crate) fn date_secs(&self) -> Option<u64> {
        self.date.and_then(http_date)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// The fields of RFC 6749 §5.1 and §5.2 that we look at; others are ignored.
/// A field that is absent or `null` is `None`.
#[derive(Default)]
struct Fields {
    access_token: Option<Scalar>,
    token_type: Option<Scalar>,
    expires_in: Option<Scalar>,
    scope: Option<Scalar>,
    error: Option<Scalar>,
    error_description: Option<Scalar>,
    error_uri: Option<Scalar>,
}

/// A JSON string, number or boolean: servers disagree on the type of some
/// fields (`expires_in` as `3600` or `"3600"`), so each field is read as
/// whichever scalar it is and judged afterwards.
enum Scalar {
    Str(String),
    Unsigned(u64),
    Negative,
    Float(f64),
    Bool,
}

make_place!(Place);

impl Deserialize for Fields {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

impl Visitor for Place<Fields> {
    fn map(&mut self) -> miniserde::Result<Box<dyn Map + '_>> {
        // Filled in place: if the body turns out malformed, the whole parse fails anyway.
        Ok(Box::new(FieldsBuilder(self.out.insert(Default::default()))))
    }
}

/// Reads a JSON object into [`Fields`], one member at a time: of a repeated
/// member, the last counts.
struct FieldsBuilder<'a>(&'a mut Fields);

impl Map for FieldsBuilder<'_> {
    fn key(&mut self, k: &str) -> miniserde::Result<&mut dyn Visitor> {
        let f = &mut *self.0;
        let field = match k {
            "access_token" => &mut f.access_token,
            "token_type" => &mut f.token_type,
            "expires_in" => &mut f.expires_in,
            "scope" => &mut f.scope,
            "error" => &mut f.error,
            "error_description" => &mut f.error_description,
            "error_uri" => &mut f.error_uri,
            _ => return Ok(<dyn Visitor>::ignore()),
        };
        Ok(Scalar::begin(field))
    }

    fn finish(&mut self) -> miniserde::Result<()> {
        Ok(())
    }
}

impl Visitor for Place<Scalar> {
    fn null(&mut self) -> miniserde::Result<()> {
        self.out = None;
        Ok(())
    }
    fn string(&mut self, s: &str) -> miniserde::Result<()> {
        self.out = Some(Scalar::Str(s.to_owned()));
        Ok(())
    }
    fn nonnegative(&mut self, n: u64) -> miniserde::Result<()> {
        self.out = Some(Scalar::Unsigned(n));
        Ok(())
    }
    fn negative(&mut self, _: i64) -> miniserde::Result<()> {
        self.out = Some(Scalar::Negative);
        Ok(())
    }
    fn float(&mut self, n: f64) -> miniserde::Result<()> {
        self.out = Some(Scalar::Float(n));
        Ok(())
    }
    fn boolean(&mut self, _: bool) -> miniserde::Result<()> {
        self.out = Some(Scalar::Bool);
        Ok(())
    }
}

impl Deserialize for Scalar {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        Place::new(out)
    }
}

impl Scalar {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Config {
    /// Turns a token endpoint's HTTP response into a [`Token`] whose lifetime
    /// counts from `issued_at` (pass the instant the request was sent), or the [`Error`] it amounts to.
    ///
    /// Lenient in what it accepts: any 2xx status, `token_type` `Bearer` in
    /// any case (or absent), unknown fields, and `expires_in` as a JSON
    /// number or as a string whose trimmed content is a JSON number, read
    /// exactly like that number (`"3600.5"` as `3600.5`): a fraction is cut,
    /// a value above [`Config::max_lifetime`], however large, is clamped to
    /// it. An absent or `null` `expires_in` means [`Config::default_lifetime`].
    ///
    /// Strict in what it returns: an empty or non-printable token, another
    /// token type, an `error` field inside a 2xx, and an `expires_in` that is
    /// negative (`expires_in is negative`, in a string too) or not a number
    /// (`expires_in is not a number`: a boolean, or a string holding anything
    /// but a JSON number, such as `"1h"`, `"+60"`, `"inf"`, `"null"`, a
    /// quoted string, or `"1e400"`, which overflows a double) are all errors.
    /// A bare `1e400` is refused with the whole body, as JSON this parser
    /// cannot read.
    ///
    /// ```
    /// use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    /// use cctoken::{Config, HttpResponse};
    ///
    /// let config = Config::nfleet("guid", "key", "secret");
    /// let now = Instant::now();
    /// let body = br#"{"access_token":"ey.y76A","token_type":"Bearer","expires_in":"3600"}"#;
    /// let response = HttpResponse::new(200, body);
    /// let token = config.parse_response(&response, now)?;
    /// assert_eq!(token.access_token().secret(), "ey.y76A");
    /// assert_eq!(token.lifetime(), Duration::from_secs(3600));
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn parse_response(&self, response: &HttpResponse<'_>, issued_at: Instant) -> Result<Token, Error> {
        let status = response.status;
        let invalid = |reason| Error::InvalidResponse { status, reason };
        let fields = parse_fields(response);
        let success = (200..300).contains(&status);
        if !success || fields.as_ref().is_ok_and(|f| f.error.is_some()) {
            let fields = fields.ok();
            return Err(status_error(self, response, fields.as_ref()));
        }
        let fields = fields.map_err(invalid)?;
        let token = match fields.access_token {
            None => return Err(invalid("no access_token")),
            Some(Scalar::Str(t)) if t.is_empty() => return Err(invalid("access_token is empty")),
            Some(Scalar::Str(t)) => t,
            Some(_) => return Err(invalid("access_token is not a string")),
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("access_token has characters not allowed in a header"));
        }
        match &fields.token_type {
            None => {}
            Some(Scalar::Str(t)) if t.eq_ignore_ascii_case("bearer") => {}
            Some(_) => return Err(invalid("token_type is not Bearer")),
        }
        let lifetime = match &fields.expires_in {
            None => self.default_lifetime,
            Some(value) => seconds(value).map_err(invalid)?,
        };
        let scope = match fields.scope {
            Some(Scalar::Str(scope)) => Some(scope),
            _ => None,
        };
        Ok(Token::new(AccessToken::new(token), issued_at, lifetime.min(self.max_lifetime)).with_scope(scope))
    }
}

impl Config {
    /// Every form in which this client's secret, or a token in `fields`,
    /// could come back in server text.
    fn secrets(&self, fields: &Fields) -> Vec<String> {
        let secret = self.client_secret.expose();
        let (id, encoded_id, encoded_secret) =
            (&self.client_id, form_encode(&self.client_id), form_encode(secret));
        let mut secrets = vec![
            basic_credentials(id, secret),
            basic_credentials(&encoded_id, &encoded_secret),
            secret.to_owned(),
            encoded_secret,
        ];
        if let Some(Scalar::Str(token)) = &fields.access_token {
            secrets.push(token.clone());
        }
        secrets
    }
}

fn parse_fields(response: &HttpResponse<'_>) -> Result<Fields, &'static str> {
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Err("empty body");
    }
    // The request says `Accept-Encoding: identity`, so a body is never
    // compressed by agreement. ureq decompresses only when another crate
    // turns on its gzip feature; otherwise a server or proxy that compresses
    // anyway gets a clear reason rather than "not UTF-8".
    if response.body.starts_with(&[0x1f, 0x8b]) {
        return Err("body is gzip-compressed, which is not supported");
    }
    let text = std::str::from_utf8(response.body).map_err(|_| "body is not UTF-8")?;
    miniserde::json::from_str(text).map_err(|_| {
        let html = response
            .content_type
            .is_some_and(|t| t.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"html")));
        if html || text.trim_start().starts_with('<') {
            "expected a JSON token, got an HTML page (captive portal or proxy?)"
        } else {
            "body is not a JSON object with the expected field types"
        }
    })
}

/// The error for a non-2xx status, or for an `error` field in any response.
/// Server text is cleared of `config`'s secrets before it is kept, except an
/// `error` code registered by RFC 6749: it is the standard's text, not an
/// echo of ours, and redacting it (a secret of one to three characters
/// blanks any text it occurs in) would hide which kind of error it is.
fn status_error(config: &Config, response: &HttpResponse<'_>, fields: Option<&Fields>) -> Error {
    let status = response.status;
    let oauth = fields.and_then(|f| {
        let secrets = config.secrets(f);
        let text =
            |field: &Option<Scalar>| field.as_ref().and_then(Scalar::as_str).map(|t| redact(t, &secrets));
        let code = match f.error.as_ref().and_then(Scalar::as_str) {
            Some(code) if is_registered_code(code) => code.to_owned(),
            _ => text(&f.error)?,
        };
        let (description, uri) = (text(&f.error_description), text(&f.error_uri));
        Some(OAuthError::new(&code, description.as_deref(), uri.as_deref()))
    });
    let retry_after = response.retry_after.and_then(|v| retry_after(v, response.date, SystemTime::now()));
    match oauth {
        Some(oauth) if matches!(status, 401 | 403) || is_credentials_code(oauth.code()) => {
            Error::CredentialsRejected { status, oauth: Some(oauth) }
        }
        Some(oauth) => Error::OAuth { status, oauth, retry_after },
        None if matches!(status, 401 | 403) => Error::CredentialsRejected { status, oauth: None },
        None if (200..300).contains(&status) => {
            Error::InvalidResponse { status, reason: "error field is not a string" }
        }
        None => Error::HttpStatus { status, retry_after },
    }
}

fn is_credentials_code(code: &str) -> bool {
    matches!(code, "invalid_client" | "unauthorized_client")
}

/// The token endpoint's error codes of RFC 6749 (§5.2), and the two of
/// §4.1.2.1 that token endpoints send too and that [`Error::is_transient`]
/// looks for.
fn is_registered_code(code: &str) -> bool {
    matches!(
        code,
        "invalid_request"
            | "invalid_client"
            | "invalid_grant"
            | "unauthorized_client"
            | "unsupported_grant_type"
            | "invalid_scope"
            | "server_error"
            | "temporarily_unavailable"
    )
}

/// `Retry-After` as delta-seconds or an HTTP-date (IMF-fixdate). A date is
/// measured against the response's own `Date` header when there is one: the
/// server's clock against the server's clock, because a device's wall clock
/// may be years off. Without `Date`, the local wall clock `now` is used.
fn retry_after(value: &str, date: Option<&str>, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse() {
        return Some(Duration::from_secs(seconds));
    }
    let until = http_date(value)?;
    let now = match date.and_then(http_date) {
        Some(server_now) => server_now,
        None => now.duration_since(UNIX_EPOCH).ok()?.as_secs(),
    };
    Some(Duration::from_secs(until.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate such as
/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub(crate) fn http_date(text: &str) -> Option<u64> {
    let mut parts = text.split_ascii_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || zone != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let (h, rest) = time.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    let number = |n: &str| n.parse::<u64>().ok();
    let (day, year, h, m, s) = (number(day)?, number(year)?, number(h)?, number(m)?, number(s)?);
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_since_epoch(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`, for years from 1970).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era) - 719_468
}

/// `expires_in` as seconds: a non-negative JSON number (fraction cut), or a
/// string whose trimmed content is one, read by the same JSON parser so that
/// `"3600.5"` and `3600.5` (or `"1e20"` and `1e20`) give the same lifetime.
fn seconds(value: &Scalar) -> Result<Duration, &'static str> {
    match value {
        Scalar::Unsigned(n) => Ok(Duration::from_secs(*n)),
        // `as` saturates: 1e300 becomes u64::MAX, clamped by the caller.
        Scalar::Float(f) if *f >= 0.0 => Ok(Duration::from_secs(*f as u64)),
        Scalar::Float(_) | Scalar::Negative => Err("expires_in is negative"),
        // A string inside the string is not a number: no second unwrapping.
        Scalar::Str(s) => match miniserde::json::from_str::<Scalar>(s.trim()) {
            Ok(Scalar::Str(_)) | Err(_) => Err("expires_in is not a number"),
            Ok(number) => seconds(&number),
        },
        Scalar::Bool => Err("expires_in is not a number"),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const DAY: u64 = 24 * 3600;

    fn config() -> Config {
        Config::client_secret_basic("https://a.example/token", "id", "secret")
    }

    fn parse(status: u16, body: &str) -> Result<Token, Error> {
        let response = HttpResponse::new(status, body.as_bytes());
        config().parse_response(&response, Instant::now())
    }

    fn lifetime(body: &str) -> Result<u64, Error> {
        parse(200, body).map(|t| t.lifetime().as_secs())
    }

    #[test]
    fn expires_in_shapes() {
        let cases: &[(&str, u64)] = &[
            (r#"{"access_token":"t","expires_in":3600}"#, 3600),
            (r#"{"access_token":"t","expires_in":"3600"}"#, 3600),
            (r#"{"access_token":"t","expires_in":" 60 "}"#, 60),
            (r#"{"access_token":"t","expires_in":59.9}"#, 59),
            (r#"{"access_token":"t","expires_in":0}"#, 0),
            (r#"{"access_token":"t"}"#, 600),
            (r#"{"access_token":"t","expires_in":null}"#, 600),
            (r#"{"access_token":"t","expires_in":1e12}"#, DAY),
            (r#"{"access_token":"t","expires_in":18446744073709551615}"#, DAY),
            (r#"{"access_token":"t","expires_in":99999999999999999999}"#, DAY),
            (r#"{"access_token":"t","expires_in":3600.5}"#, 3600),
            // A string holding a JSON number reads exactly like that number.
            (r#"{"access_token":"t","expires_in":"3600.5"}"#, 3600),
            (r#"{"access_token":"t","expires_in":"99999999999999999999"}"#, DAY),
            (r#"{"access_token":"t","expires_in":"18446744073709551615"}"#, DAY),
            (r#"{"access_token":"t","expires_in":"1e12"}"#, DAY),
            (r#"{"access_token":"t","expires_in":"1e3"}"#, 1000),
            (r#"{"access_token":"t","expires_in":"59.9"}"#, 59),
            (r#"{"access_token":"t","expires_in":"0"}"#, 0),
            (r#"{"access_token":"t","expires_in":"\t60.0\n"}"#, 60),
        ];
        for (body, want) in cases {
            assert_eq!(lifetime(body).ok(), Some(*want), "{body}");
        }
        let negative = "expires_in is negative";
        let not_a_number = "expires_in is not a number";
        for (body, reason) in [
            (r#"{"access_token":"t","expires_in":-1}"#, negative),
            (r#"{"access_token":"t","expires_in":-0.5}"#, negative),
            (r#"{"access_token":"t","expires_in":"-5"}"#, negative),
            (r#"{"access_token":"t","expires_in":"-0.5"}"#, negative),
            (r#"{"access_token":"t","expires_in":" -1e3 "}"#, negative),
            (r#"{"access_token":"t","expires_in":true}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"soon"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":""}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"  "}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"\"3600\""}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"true"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"null"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"inf"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"NaN"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"1e400"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"+60"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"060"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"60 s"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"0x3c"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"[60]"}"#, not_a_number),
            (r#"{"access_token":"t","expires_in":"{}"}"#, not_a_number),
            // miniserde refuses numbers that overflow f64, as the whole body.
            (
                r#"{"access_token":"t","expires_in":1e400}"#,
                "body is not a JSON object with the expected field types",
            ),
        ] {
            match lifetime(body) {
                Err(Error::InvalidResponse { status: 200, reason: got }) => assert_eq!(got, reason, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn token_type_and_token_rules() {
        let ok = [
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":"t","token_type":"bearer"}"#,
            r#"{"access_token":"t","token_type":"BEARER","extra":{"nested":[1,2,{}]}}"#,
            r#"{"access_token":"t"}"#,
        ];
        for body in ok {
            assert_eq!(parse(200, body).unwrap().access_token().secret(), "t", "{body}");
        }
        let bad = [
            (r#"{"access_token":"t","token_type":"mac"}"#, "token_type is not Bearer"),
            (r#"{"access_token":"t","token_type":7}"#, "token_type is not Bearer"),
            (r#"{"access_token":""}"#, "access_token is empty"),
            (r#"{"access_token":42}"#, "access_token is not a string"),
            (r#"{"token_type":"Bearer"}"#, "no access_token"),
            (r#"{"access_token":"a\nb"}"#, "access_token has characters not allowed in a header"),
            (r#"{"access_token":"a b"}"#, "access_token has characters not allowed in a header"),
            (r#"{"access_token":"ä"}"#, "access_token has characters not allowed in a header"),
            ("", "empty body"),
            ("  \r\n", "empty body"),
            ("{", "body is not a JSON object with the expected field types"),
            (r#"{"access_token":"t"} trailing"#, "body is not a JSON object with the expected field types"),
            (r#"["access_token"]"#, "body is not a JSON object with the expected field types"),
            (
                "<html>Login to the hotspot</html>",
                "expected a JSON token, got an HTML page (captive portal or proxy?)",
            ),
        ];
        for (body, want) in bad {
            match parse(200, body) {
                Err(Error::InvalidResponse { status: 200, reason }) => assert_eq!(reason, want, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let response = HttpResponse::new(200, b"\xff\xfe");
        assert!(matches!(
            config().parse_response(&response, Instant::now()),
            Err(Error::InvalidResponse { reason: "body is not UTF-8", .. })
        ));
        let gzip = HttpResponse { body: b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", ..response };
        assert!(matches!(
            config().parse_response(&gzip, Instant::now()),
            Err(Error::InvalidResponse { reason: "body is gzip-compressed, which is not supported", .. })
        ));
    }

    #[test]
    fn any_2xx_is_success_and_scope_is_kept() {
        let token = parse(203, r#"{"access_token":"t","scope":"a b"}"#).unwrap();
        assert_eq!(token.scope(), Some("a b"));
    }

    #[test]
    fn error_bodies() {
        let e = parse(
            400,
            r#"{"error":"invalid_scope","error_description":"no\nsuch scope","error_uri":"https://x"}"#,
        )
        .unwrap_err();
        match e {
            Error::OAuth { status: 400, oauth, retry_after: None } => {
                assert_eq!(oauth.code(), "invalid_scope");
                assert_eq!(oauth.description(), Some("no such scope"));
                assert_eq!(oauth.uri(), Some("https://x"));
            }
            other => panic!("{other:?}"),
        }
        for (status, body) in [
            (400, r#"{"error":"invalid_client"}"#),
            (400, r#"{"error":"unauthorized_client"}"#),
            (401, r#"{"error":"invalid_request"}"#),
            (401, ""),
            (403, "<html>Forbidden</html>"),
            (200, r#"{"error":"invalid_client","access_token":"t"}"#),
        ] {
            assert!(parse(status, body).unwrap_err().is_credentials_rejected(), "{status} {body}");
        }
        assert!(matches!(parse(200, r#"{"error":"server_error"}"#), Err(Error::OAuth { status: 200, .. })));
        assert!(matches!(parse(500, "<html>oops</html>"), Err(Error::HttpStatus { status: 500, .. })));
        assert!(matches!(parse(302, ""), Err(Error::HttpStatus { status: 302, .. })));
        assert!(matches!(parse(400, r#"{"error":5}"#), Err(Error::HttpStatus { status: 400, .. })));
    }

    #[test]
    fn server_text_never_echoes_the_secret_or_token() {
        let config = Config::client_secret_basic("https://a.example/token", "id", "p@ss w0rd");
        let basic = base64::engine::general_purpose::STANDARD.encode("id:p%40ss+w0rd");
        let body = format!(
            r#"{{"error":"invalid_request","error_description":"got p@ss w0rd / p%40ss+w0rd / Basic {basic}","error_uri":"https://x/?t=tok3n","access_token":"tok3n"}}"#
        );
        for status in [200, 400] {
            let response = HttpResponse::new(status, body.as_bytes());
            let err = config.parse_response(&response, Instant::now()).unwrap_err();
            let text = format!("{err} {err:?}");
            for leak in ["p@ss w0rd", "p%40ss+w0rd", basic.as_str(), "tok3n"] {
                assert!(!text.contains(leak), "{leak} in {text}");
            }
            assert!(text.contains("got [redacted] / [redacted] / Basic [redacted]"), "{text}");
        }
    }

    #[test]
    fn a_short_secret_hides_server_text_but_not_a_registered_error_code() {
        // "a" occurs in every code below and in the description.
        let config = Config::client_secret_post("https://x.example/token", "id", "a");
        let parse = |status, body: &str| {
            let response = HttpResponse::new(status, body.as_bytes());
            config.parse_response(&response, Instant::now()).unwrap_err()
        };
        let err = parse(503, r#"{"error":"temporarily_unavailable","error_description":"try again"}"#);
        match &err {
            Error::OAuth { status: 503, oauth, .. } => {
                assert_eq!(oauth.code(), "temporarily_unavailable");
                assert_eq!(oauth.description(), Some("[redacted]"));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_transient());
        let err = parse(400, r#"{"error":"invalid_client"}"#);
        assert!(err.is_credentials_rejected(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "token endpoint rejected the client credentials (HTTP 400, error=invalid_client)"
        );
        // A code of the server's own is server text like any other.
        let err = parse(400, r#"{"error":"bad_secret"}"#);
        assert_eq!(err.to_string(), "token endpoint returned an OAuth error (HTTP 400, error=[redacted])");
    }

    #[test]
    fn retry_after_seconds() {
        let response = HttpResponse::new(429, b"").retry_after(Some(" 120"));
        let err = config().parse_response(&response, Instant::now()).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 429, retry_after: Some(d) } if d.as_secs() == 120));
    }

    #[test]
    fn retry_after_dates_use_the_servers_clock() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(http_date(date), Some(784_111_777));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Tue, 29 Feb 2028 23:59:59 GMT"), Some(1_835_481_599));
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(http_date(bad), None, "{bad}");
        }
        // The device's clock is 30 years behind; the server's Date decides.
        let device_now = UNIX_EPOCH;
        let wait = retry_after("Sun, 06 Nov 1994 08:51:37 GMT", Some(date), device_now);
        assert_eq!(wait, Some(Duration::from_secs(120)));
        // A date in the past means now.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", Some(date), device_now),
            Some(Duration::ZERO)
        );
        // Without Date, the local clock is all there is.
        let local = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", None, local), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("soon", Some(date), device_now), None);
        assert_eq!(retry_after("-5", Some(date), device_now), None);
    }

    #[test]
    fn deep_nesting_is_not_a_stack_overflow() {
        let depth = 100_000;
        let body = format!(r#"{{"access_token":"t","x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert_eq!(parse(200, &body).unwrap().access_token().secret(), "t");
    }
}
