//! Building the token request: pure, no I/O.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::auth::AuthStyle;
use crate::config::Config;
use crate::error::Error;

/// A token request ready to send: `POST` to [`url`](TokenRequest::url) with
/// these headers and this form body.
///
/// Built by [`Config::request`]; any HTTP stack can send it. Its `Debug`
/// hides the `Authorization` value and the body, which carry the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl TokenRequest {
    /// The URL to `POST` to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers to send, in order: `Accept`, `Accept-Encoding: identity`
    /// (the parser reads the body as it comes), `Content-Type`, and
    /// `Authorization` for the Basic styles.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The `application/x-www-form-urlencoded` body. It holds the client
    /// secret in the [`AuthStyle::Post`] style.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// This request with a client assertion added, as
    /// [`AuthStyle::PrivateKeyJwt`] needs for each request:
    /// `client_assertion_type` (RFC 7523's JWT bearer type) and
    /// `client_assertion`, the signed JWT. [`Client`](crate::Client) signs
    /// and adds one itself; another transport signs with
    /// [`Config::signing_key`] and adds it here.
    ///
    /// ```
    /// let config = cctoken::Config::private_key_jwt("https://auth.example.com/token", "unit-7", "(key)");
    /// let request = config.request()?.with_client_assertion("eyJ.eyJ.sig");
    /// assert_eq!(
    ///     request.body(),
    ///     "grant_type=client_credentials&client_id=unit-7\
    ///      &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
    ///      &client_assertion=eyJ.eyJ.sig"
    /// );
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn with_client_assertion(&self, assertion: &str) -> TokenRequest {
        let mut request = self.clone();
        push_param(&mut request.body, "client_assertion_type", ASSERTION_TYPE);
        push_param(&mut request.body, "client_assertion", assertion);
        request
    }
}

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("headers", &names)
            .field("body", &"[redacted]")
            .finish()
    }
}

impl Config {
    /// Builds the token request this configuration describes, after checking
    /// it: the URL must be `https://` (plain `http://` only to a loopback
    /// host), no value may contain a control character such as CR, LF or
    /// NUL, and no [extra parameter](Config::param) may take the name of one
    /// of the protocol's own.
    ///
    /// ```
    /// let config = cctoken::Config::client_secret_post("https://auth.example.com/token", "id", "s3cr3t")
    ///     .scope("transactions/post");
    /// let request = config.request()?;
    /// assert_eq!(
    ///     request.body(),
    ///     "grant_type=client_credentials&client_id=id&client_secret=s3cr3t&scope=transactions%2Fpost"
    /// );
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn request(&self) -> Result<TokenRequest, Error> {
        if let Some(identity) = &self.nfleet_identity {
            let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if identity.is_empty() || !identity.chars().all(valid) {
                return Err(Error::config("the NFleet identity GUID must be letters, digits and '-' only"));
            }
        }
        check_url(self.url())?;
        if self.style == AuthStyle::TlsClientAuth && self.client_cert.is_none() {
            return Err(Error::config(
                "tls_client_auth needs a client certificate and key: use Config::tls_client_auth",
            ));
        }
        if self.style == AuthStyle::PrivateKeyJwt && self.signing_key.is_none() {
            return Err(Error::config("private_key_jwt needs a signing key: use Config::private_key_jwt"));
        }
        for (what, value) in
            [("assertion audience", &self.assertion_audience), ("assertion key id", &self.assertion_key_id)]
        {
            if let Some(value) = value {
                check_text(what, value)?;
            }
        }
        check_text("client id", &self.client_id)?;
        check_text("client secret", self.client_secret.expose())?;
        for scope in &self.scopes {
            check_text("scope", scope)?;
            if scope.is_empty() || scope.contains(' ') {
                return Err(Error::config("a scope must be non-empty and contain no space"));
            }
        }
        for (name, value) in &self.params {
            check_text("parameter name", name)?;
            check_text("parameter value", value)?;
            if name.is_empty() {
                return Err(Error::config("a form parameter name must not be empty"));
            }
            // These say what is asked for and who asks: another copy would
            // contradict the request's own, and a server that takes the last
            // of a repeated parameter would obey it.
            let instead = match name.as_str() {
                "grant_type" => "the constructor sets it (client_credentials)",
                "scope" => "use Config::scope",
                "client_id" => "pass the client id to the constructor",
                "client_secret" => "pass the client secret to the constructor",
                "client_assertion" | "client_assertion_type" => "use Config::private_key_jwt",
                _ => continue,
            };
            return Err(Error::config(format!(
                "the form parameter {name} cannot be set with Config::param: {instead}"
            )));
        }

        let mut body = String::from("grant_type=client_credentials");
        let id = &self.client_id;
        let secret = self.client_secret.expose();
        let mut headers = vec![
            ("Accept", "application/json".to_owned()),
            ("Accept-Encoding", "identity".to_owned()),
            ("Content-Type", "application/x-www-form-urlencoded".to_owned()),
        ];
        match self.style {
            AuthStyle::Basic => {
                headers.push(("Authorization", basic(&form_encode(id), &form_encode(secret))))
            }
            AuthStyle::BasicRaw => headers.push(("Authorization", basic(id, secret))),
            AuthStyle::Post => {
                push_param(&mut body, "client_id", id);
                push_param(&mut body, "client_secret", secret);
            }
            // The certificate in the handshake is the credential; for a JWT,
            // the assertion added to each request.
            AuthStyle::TlsClientAuth | AuthStyle::PrivateKeyJwt => push_param(&mut body, "client_id", id),
        }
        // One `scope` parameter with the scopes space-separated: form encoding maps each character
        // on its own, so this is `form_encode(&scopes.join(" "))` without the joined copy.
        for (i, scope) in self.scopes.iter().enumerate() {
            body.push_str(if i == 0 { "&scope=" } else { "+" });
            body.push_str(&form_encode(scope));
        }
        for (name, value) in &self.params {
            push_param(&mut body, name, value);
        }
        Ok(TokenRequest { url: self.url().to_owned(), headers, body })
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", basic_credentials(user, password))
}

/// The credentials of an HTTP Basic `Authorization` header: `base64(user ":" password)`.
pub(crate) fn basic_credentials(user: &str, password: &str) -> String {
    base64(format!("{user}:{password}").as_bytes())
}

/// Standard base64 with padding (RFC 4648 §4). Written out because it is all
/// cctoken needs of a base64 crate, and the core then needs no such crate.
fn base64(bytes: &[u8]) -> String {
    encode(bytes, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true)
}

/// base64url without padding (RFC 4648 §5), as JWS uses it (RFC 7515 §2).
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) fn base64url(bytes: &[u8]) -> String {
    encode(bytes, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false)
}

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn push_param(body: &mut String, name: &str, value: &str) {
    body.push('&');
    body.push_str(&form_encode(name));
    body.push('=');
    body.push_str(&form_encode(value));
}

/// `application/x-www-form-urlencoded` encoding of one name or value, as the
/// WHATWG URL standard and RFC 6749 Appendix B define it: `*-._` and ASCII
/// alphanumerics stay, space becomes `+`, every other UTF-8 byte `%XX`.
pub(crate) fn form_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Refuses control characters (CR, LF, NUL, …), which could split a header or
/// a form field.
fn check_text(what: &str, value: &str) -> Result<(), Error> {
    if value.chars().any(char::is_control) {
        return Err(Error::config(format!("the {what} contains a control character")));
    }
    Ok(())
}

/// Accepts `https://` URLs, and `http://` only to a loopback host
/// (`127.0.0.0/8`, `[::1]`, `localhost`), so that a typo cannot send the secret
/// in clear text across a network.
pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::config("the token URL contains whitespace or a control character"));
    }
    let lower = url.to_ascii_lowercase();
    let (secure, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(Error::config("the token URL must start with https://"));
    };
    let authority = rest.split_once(['/', '?', '#']).map_or(rest, |(authority, _)| authority);
    if authority.contains('@') {
        return Err(Error::config(
            "the token URL must not contain user info (use https:// and the client credentials)",
        ));
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(Error::config("the token URL has no host (expected https://host/path)"));
    }
    if let Some(port) = authority[host.len()..].strip_prefix(':')
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
    {
        return Err(Error::config("the token URL has an invalid port (expected https://host:port/path)"));
    }
    if !secure && !is_loopback(host) {
        return Err(Error::config("the token URL must use https:// (plain http:// only to a loopback host)"));
    }
    if !url.is_ascii() || !valid_host(host) {
        return Err(Error::config("the token URL is not a valid absolute URL (expected https://host/path)"));
    }
    Ok(())
}

/// A DNS name or IPv4 address (ASCII letters, digits, `-`, `.`, `_`; an
/// internationalised name must be given in its `xn--` form), or a bracketed
/// IPv6 address.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) if authority[end + 1..].is_empty() || authority[end + 1..].starts_with(':') => {
                &authority[..=end]
            }
            _ => authority,
        };
    }
    authority.split_once(':').map_or(authority, |(host, _)| host)
}

fn is_loopback(host: &str) -> bool {
    match host {
        "localhost" | "[::1]" => true,
        _ => host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::Config;

    fn header<'a>(req: &'a TokenRequest, name: &str) -> Option<&'a str> {
        req.headers().iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    fn decoded_basic(req: &TokenRequest) -> String {
        let value = header(req, "Authorization").expect("Authorization header");
        let b64 = value.strip_prefix("Basic ").expect("Basic scheme");
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        String::from_utf8(raw).expect("utf-8")
    }

    const AWKWARD_ID: &str = "id with space&é";
    const AWKWARD_SECRET: &str = "p@ss:w%rd+/=";

    #[test]
    fn basic_form_encodes_id_and_secret() {
        let req = Config::client_secret_basic("https://a.example/token", AWKWARD_ID, AWKWARD_SECRET)
            .request()
            .unwrap();
        assert_eq!(decoded_basic(&req), "id+with+space%26%C3%A9:p%40ss%3Aw%25rd%2B%2F%3D");
        assert_eq!(req.body(), "grant_type=client_credentials");
        assert_eq!(header(&req, "Content-Type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(header(&req, "Accept"), Some("application/json"));
    }

    #[test]
    fn basic_raw_sends_utf8_as_is() {
        let req = Config::client_secret_basic("https://a.example/token", AWKWARD_ID, AWKWARD_SECRET)
            .auth_style(AuthStyle::BasicRaw)
            .request()
            .unwrap();
        assert_eq!(decoded_basic(&req), "id with space&é:p@ss:w%rd+/=");
    }

    #[test]
    fn nfleet_is_raw_basic_on_the_identity_url() {
        let req =
            Config::nfleet("0f8fad5b-d9cb-469f-a165-70867728950e", "käy", AWKWARD_SECRET).request().unwrap();
        assert_eq!(req.url(), "https://id.nfleet.fi/0f8fad5b-d9cb-469f-a165-70867728950e/token");
        assert_eq!(decoded_basic(&req), "käy:p@ss:w%rd+/=");
        assert_eq!(req.body(), "grant_type=client_credentials");
    }

    #[test]
    fn post_puts_credentials_in_the_body_only() {
        let req = Config::client_secret_post("https://a.example/token", AWKWARD_ID, AWKWARD_SECRET)
            .scope("transactions/post")
            .scope("read")
            .param("audience", "https://api.example/ x")
            .request()
            .unwrap();
        assert_eq!(header(&req, "Authorization"), None);
        assert_eq!(
            req.body(),
            "grant_type=client_credentials&client_id=id+with+space%26%C3%A9\
             &client_secret=p%40ss%3Aw%25rd%2B%2F%3D&scope=transactions%2Fpost+read\
             &audience=https%3A%2F%2Fapi.example%2F+x"
        );
    }

    #[test]
    fn base64_matches_the_base64_crate() {
        use base64::Engine as _;
        let standard = base64::engine::general_purpose::STANDARD;
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(97).wrapping_add(251)).collect();
            assert_eq!(base64url(&bytes), url.encode(&bytes), "{bytes:?}");
        }
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            assert_eq!(base64(&all[..len]), standard.encode(&all[..len]), "{len}");
            assert_eq!(base64(&all[len..]), standard.encode(&all[len..]), "{len}");
        }
    }

    #[test]
    fn form_encoding_table() {
        let cases = [
            ("", ""),
            ("azAZ09*-._", "azAZ09*-._"),
            (" ", "+"),
            ("a+b", "a%2Bb"),
            ("~!'()", "%7E%21%27%28%29"),
            ("ä€😀", "%C3%A4%E2%82%AC%F0%9F%98%80"),
        ];
        for (input, want) in cases {
            assert_eq!(form_encode(input), want, "input {input:?}");
        }
    }

    #[test]
    fn control_characters_are_refused_everywhere() {
        let url = "https://a.example/token";
        let bad = [
            Config::client_secret_basic(url, "id\r\nX-Evil: 1", "s"),
            Config::client_secret_basic(url, "id", "s\0"),
            Config::client_secret_post(url, "id", "s\n"),
            Config::client_secret_post(url, "id", "s").scope("a\rb"),
            Config::client_secret_post(url, "id", "s").param("k", "v\n"),
            Config::client_secret_post("https://a.example/\r\nHost: x", "id", "s"),
        ];
        for config in bad {
            let err = config.request().unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{err}");
        }
    }

    #[test]
    fn params_cannot_replace_protocol_parameters() {
        let url = "https://a.example/token";
        let cases = [
            (
                "grant_type",
                "the form parameter grant_type cannot be set with Config::param: \
                 the constructor sets it (client_credentials)",
            ),
            ("scope", "the form parameter scope cannot be set with Config::param: use Config::scope"),
            (
                "client_id",
                "the form parameter client_id cannot be set with Config::param: \
                 pass the client id to the constructor",
            ),
            (
                "client_secret",
                "the form parameter client_secret cannot be set with Config::param: \
                 pass the client secret to the constructor",
            ),
            (
                "client_assertion",
                "the form parameter client_assertion cannot be set with Config::param: use Config::private_key_jwt",
            ),
            (
                "client_assertion_type",
                "the form parameter client_assertion_type cannot be set with Config::param: \
                 use Config::private_key_jwt",
            ),
        ];
        for (name, want) in cases {
            for config in [
                Config::client_secret_basic(url, "id", "s"),
                Config::client_secret_post(url, "id", "s"),
                Config::nfleet("guid", "key", "s").scope("a"),
                Config::private_key_jwt(url, "id", "key"),
            ] {
                let config = config.param("audience", "x").param(name, "x");
                match config.request() {
                    Err(Error::Config(msg)) => assert_eq!(msg, want, "{name}"),
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
        // Names that only look alike are sent as they are.
        let req = Config::client_secret_post(url, "id", "s")
            .param("Scope", "a")
            .param("grant_type_hint", "b")
            .param("client_assertion_hint", "c")
            .request()
            .unwrap();
        assert_eq!(
            req.body(),
            "grant_type=client_credentials&client_id=id&client_secret=s&Scope=a&grant_type_hint=b&client_assertion_hint=c"
        );
    }

    #[test]
    fn nfleet_identity_must_be_a_plain_path_segment() {
        for guid in ["", "a/b", "a?b", "../x", "a b", "a#b"] {
            let err = Config::nfleet(guid, "k", "s").request().unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{guid:?}");
        }
    }

    #[test]
    fn url_policy_table() {
        let ok = [
            "https://auth.example.com/token",
            "HTTPS://auth.example.com:8443/token?x=1",
            "http://127.0.0.1:8080/token",
            "http://127.1.2.3/token",
            "http://localhost:1/token",
            "http://[::1]:9/token",
            "http://localhost",
            "https://auth.example.com:65535/token",
        ];
        for url in ok {
            assert!(check_url(url).is_ok(), "{url}");
        }
        let refused = [
            "http://auth.example.com/token",
            "http://127.0.0.1.evil.invalid/",
            "http://127.0.0.1@evil.invalid/",
            "https://user:pw@auth.example.com/",
            "http://localhost.evil.invalid/",
            "http://[::1].evil.invalid/",
            "http://10.0.0.1/",
            "ftp://auth.example.com/",
            "auth.example.com/token",
            "https:///token",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:-1/",
            "http://127.0.0.1:8080.evil.invalid/",
            "https://auth.example.com:/token",
            "http://[::1]x/",
            "https://[/token",
            "https://%zz/token",
            "https://a:b:c/token",
            "https://ä.example/token",
            "https://auth.example.com/tök",
            "https://a%2Fb.example/token",
            "https://[::1:token",
            "https://[fe80::1%eth0]/token",
        ];
        for url in refused {
            let err = check_url(url).unwrap_err();
            assert!(err.to_string().contains("https"), "{url}: {err}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let req = Config::client_secret_post("https://a.example/token", "id", "hunter2").request().unwrap();
        let basic =
            Config::client_secret_basic("https://a.example/token", "id", "hunter2").request().unwrap();
        for text in [format!("{req:?}"), format!("{basic:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains(header(&basic, "Authorization").unwrap()), "{text}");
        }
    }
}
