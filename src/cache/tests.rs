//! Every rule of the cache, under a virtual clock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::{AccessToken, TransportKind};

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// A token server on a virtual clock: answers with tokens of `lifetime`, or
/// with the error set by `fail_with`, and counts requests. Each request
/// advances the clock by `latency`; a token counts from when it was sent.
#[derive(Clone)]
struct Server(Rc<ServerState>);

struct ServerState {
    start: Instant,
    now: Cell<Instant>,
    requests: Cell<u32>,
    lifetime: Cell<Duration>,
    latency: Cell<Duration>,
    down: RefCell<Option<Error>>,
}

impl Server {
    fn new() -> Server {
        let start = Instant::now();
        Server(Rc::new(ServerState {
            start,
            now: Cell::new(start),
            requests: Cell::new(0),
            lifetime: Cell::new(HOUR),
            latency: Cell::new(Duration::ZERO),
            down: RefCell::new(None),
        }))
    }
    fn now(&self) -> Instant {
        self.0.now.get()
    }
    fn at(&self, t: Duration) -> Instant {
        let now = self.start() + t;
        self.0.now.set(now);
        now
    }
    fn start(&self) -> Instant {
        self.0.start
    }
    fn requests(&self) -> u32 {
        self.0.requests.get()
    }
    fn fail_with(&self, error: Option<Error>) {
        *self.0.down.borrow_mut() = error;
    }
    fn cache(&self) -> TokenCache<impl Fetch> {
        let server = self.clone();
        TokenCache::with_policy(move || server.fetch(), Policy::default().seed(42))
    }
    fn fetch(&self) -> Result<Token, Error> {
        self.0.requests.set(self.0.requests.get() + 1);
        let sent_at = self.now();
        self.0.now.set(sent_at + self.0.latency.get());
        if let Some(error) = self.0.down.borrow().clone() {
            return Err(error);
        }
        let name = format!("t{}", self.0.requests.get());
        Ok(Token::new(AccessToken::new(name), sent_at, self.0.lifetime.get()))
    }
}

fn secret(cache: &mut TokenCache<impl Fetch>, now: Instant) -> String {
    match cache.token_at(now) {
        Ok(token) => token.access_token().secret().to_owned(),
        Err(e) => panic!("no token: {e}"),
    }
}

/// Advances minute by minute from `from` until the cache fetches, returning
/// the offset at which it did.
fn next_fetch(
    server: &Server,
    cache: &mut TokenCache<impl Fetch>,
    from: Duration,
    step: Duration,
) -> Duration {
    let before = server.requests();
    let mut t = from;
    while server.requests() == before {
        t += step;
        assert!(t < from + 48 * HOUR, "no fetch within two days");
        let now = server.at(t);
        let _ = cache.token_at(now);
    }
    t
}

#[test]
fn first_refresh_is_spread_then_routine() {
    let server = Server::new();
    let mut cache = server.cache();
    assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
    let first = next_fetch(&server, &mut cache, Duration::ZERO, SEC);
    assert!(first >= HOUR.mul_f64(0.2) && first <= HOUR.mul_f64(0.85) + SEC, "{first:?}");
    let second = next_fetch(&server, &mut cache, first, SEC) - first;
    assert!(second >= HOUR.mul_f64(0.6) && second <= HOUR.mul_f64(0.85) + SEC, "{second:?}");
    assert_eq!(server.requests(), 3);
}

#[test]
fn tokens_issued_together_get_different_refresh_points() {
    let server = Server::new();
    let now = server.at(Duration::ZERO);
    let points: Vec<Instant> = (0..20u64)
        .map(|seed| {
            let s = server.clone();
            let mut cache = TokenCache::with_policy(move || s.fetch(), Policy::default().seed(seed));
            cache.token_at(now).map(|_| ()).unwrap_or_else(|e| panic!("{e}"));
            cache.refresh_at().unwrap_or(now)
        })
        .collect();
    let spread = *points.iter().max().unwrap_or(&now) - *points.iter().min().unwrap_or(&now);
    assert!(spread > 10 * MIN, "refresh points within {spread:?}");
}

#[test]
fn short_tokens_are_not_refetched_on_every_call() {
    let server = Server::new();
    server.0.lifetime.set(30 * SEC);
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    let first = next_fetch(&server, &mut cache, Duration::ZERO, Duration::from_millis(100));
    assert!(first >= 6 * SEC && first <= 26 * SEC, "{first:?}");
    let second = next_fetch(&server, &mut cache, first, Duration::from_millis(100)) - first;
    assert!(second >= 18 * SEC && second <= 26 * SEC, "{second:?}");
}

#[test]
fn zero_lifetime_tokens_are_used_once_and_fetched_at_most_every_ten_seconds() {
    let server = Server::new();
    server.0.lifetime.set(Duration::ZERO);
    let mut cache = server.cache();
    let mut fetched_at = Vec::new();
    // 100 calls over a minute, one every 600 ms.
    for i in 0..100u64 {
        let now = server.at(Duration::from_millis(600 * i));
        let before = server.requests();
        let answer = cache.token_at(now).map(|t| t.access_token().secret().to_owned());
        if server.requests() > before {
            // The call that fetched the token gets it, though it is already expired.
            assert_eq!(answer.ok(), Some(format!("t{}", server.requests())), "call {i}");
            fetched_at.push(now - server.start());
            continue;
        }
        let last = fetched_at.last().copied().unwrap_or_default();
        let retry_at = server.start() + last + 10 * SEC;
        match answer {
            Err(Error::RateLimited { retry_at: at }) => assert_eq!(at, retry_at, "call {i}"),
            other => panic!("call {i}: {other:?}"),
        }
        assert_eq!(cache.decide(now), Decision::Wait(retry_at), "call {i}");
        assert!(cache.cached_at(now).is_none(), "call {i}");
    }
    // A request at 0 s, then at the first call 10 s or more after the one before.
    let ms = Duration::from_millis;
    assert_eq!(fetched_at, [ms(0), ms(10_200), ms(20_400), ms(30_600), ms(40_800), ms(51_000)]);
    assert_eq!(server.requests(), 6);
}

#[test]
fn a_short_token_is_served_while_valid_but_never_once_expired() {
    let server = Server::new();
    server.0.lifetime.set(SEC);
    let mut cache = server.cache();
    assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
    // Valid: served, though its refresh point (at most 0.85 s) has passed.
    let valid = server.at(Duration::from_millis(900));
    assert_eq!(cache.decide(valid), Decision::Fresh);
    assert_eq!(secret(&mut cache, valid), "t1");
    // Expired at 1 s: neither fresh nor served until a new one may be fetched.
    let ten = server.start() + 10 * SEC;
    for ms in [1000, 5000, 9999] {
        let now = server.at(Duration::from_millis(ms));
        assert_eq!(cache.decide(now), Decision::Wait(ten), "{ms} ms");
        assert!(cache.cached_at(now).is_none(), "{ms} ms");
        assert!(
            matches!(cache.token_at(now), Err(Error::RateLimited { retry_at }) if retry_at == ten),
            "{ms} ms"
        );
    }
    assert_eq!(server.requests(), 1);
    assert_eq!(cache.decide(ten), Decision::Fetch);
    assert_eq!(secret(&mut cache, server.at(10 * SEC)), "t2");
}

#[test]
fn an_invalidated_token_is_replaced_no_sooner_than_the_fetch_interval() {
    let server = Server::new();
    let policy = Policy::default().seed(42).min_token_age(Duration::ZERO);
    let s = server.clone();
    let mut cache = TokenCache::with_policy(move || s.fetch(), policy);
    assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
    cache.invalidate();
    let ten = server.start() + 10 * SEC;
    assert!(
        matches!(cache.token_at(server.at(5 * SEC)), Err(Error::RateLimited { retry_at }) if retry_at == ten)
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(secret(&mut cache, server.at(10 * SEC)), "t2");
}

#[test]
fn stale_while_failing_then_gate_then_recovery() {
    let server = Server::new();
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    let refresh = cache.refresh_at().map(|at| at - server.start()).unwrap_or_default();
    server.fail_with(Some(Error::from(TransportKind::Timeout)));

    // The refresh fails, but the valid token is still served and the failure is visible.
    assert_eq!(secret(&mut cache, server.at(refresh)), "t1");
    assert_eq!(server.requests(), 2);
    assert_eq!(cache.last_error().and_then(Error::transport_kind), Some(TransportKind::Timeout));
    let Decision::Wait(until) = cache.decide(server.now()) else { panic!("gate not shut") };
    let valid_for = cache.token_at(server.now()).map(|t| t.expires_at() - server.now()).unwrap_or_default();
    assert!(
        until - server.now() < valid_for.mul_f64(0.9),
        "retries spread within the token's remaining life"
    );

    // While the gate is shut, calls do not reach the server.
    for ms in (0..(until - server.now()).as_millis() as u64).step_by(100) {
        assert_eq!(secret(&mut cache, server.at(refresh + Duration::from_millis(ms))), "t1");
    }
    assert_eq!(server.requests(), 2);

    // The gate opens, the server is back: a new token, the error is gone.
    server.fail_with(None);
    assert_eq!(secret(&mut cache, until), "t3");
    assert!(cache.last_error().is_none());
    assert_eq!(cache.consecutive_failures(), 0);
}

#[test]
fn a_token_that_expires_during_a_failed_refresh_is_not_served() {
    // t1 lives a minute; whatever its refresh point (at most 51 s), a call at
    // 55 s refreshes it, and the failing request takes 35 s: the token expired
    // at 60 s, while the request was under way.
    let server = Server::new();
    server.0.lifetime.set(MIN);
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    server.fail_with(Some(Error::from(TransportKind::Timeout)));
    server.0.latency.set(35 * SEC);
    let clock = || server.now();
    let got = cache.get(server.at(55 * SEC), clock).map(|t| t.access_token().secret().to_owned());
    assert_eq!(got.err().and_then(|e| e.transport_kind()), Some(TransportKind::Timeout));
    assert_eq!(server.requests(), 2);
    assert_eq!(server.now(), server.start() + 90 * SEC);

    // The same through `call_with`: the API is never called with the expired token.
    let mut cache = server.cache();
    server.fail_with(None);
    server.0.latency.set(Duration::ZERO);
    secret(&mut cache, server.at(Duration::ZERO));
    server.fail_with(Some(Error::from(TransportKind::Timeout)));
    server.0.latency.set(35 * SEC);
    server.at(55 * SEC);
    let mut seen = Vec::new();
    let result = cache.call_with(clock, |bearer| {
        seen.push(bearer.to_owned());
        200u16
    });
    assert_eq!(result.err().and_then(|e| e.transport_kind()), Some(TransportKind::Timeout));
    assert_eq!(seen, Vec::<String>::new());
    assert_eq!(server.requests(), 4);
}

#[test]
fn after_hard_expiry_a_shut_gate_answers_at_once_with_backoff() {
    let server = Server::new();
    server.0.lifetime.set(MIN);
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    server.fail_with(Some(Error::HttpStatus { status: 503, retry_after: Some(300 * SEC) }));
    let expired = server.at(2 * MIN);
    assert!(matches!(cache.token_at(expired), Err(Error::HttpStatus { status: 503, .. })));
    let requests = server.requests();
    match cache.token_at(server.at(3 * MIN)) {
        Err(Error::Backoff { retry_at, last }) => {
            assert!(retry_at >= expired + 300 * SEC && retry_at < expired + 375 * SEC);
            assert!(matches!(*last, Error::HttpStatus { status: 503, .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests(), requests, "no request while Retry-After is in force");
}

#[test]
fn retry_after_zero_does_not_open_the_gate_on_a_permanent_error() {
    let server = Server::new();
    let mut cache = server.cache();
    server.fail_with(Some(Error::HttpStatus { status: 404, retry_after: Some(Duration::ZERO) }));
    // 100 calls over a minute.
    let answers: Vec<Result<String, Error>> = (0..100u64)
        .map(|i| cache.token_at(server.at(Duration::from_millis(600 * i))).map(|t| t.authorization()))
        .collect();
    assert_eq!(server.requests(), 1, "only the first call reaches the server");
    assert!(matches!(answers[0], Err(Error::HttpStatus { status: 404, .. })), "{:?}", answers[0]);
    // The cooldown of a permanent error, not the server's zero.
    let Decision::Wait(until) = cache.decide(server.now()) else { panic!("gate not shut") };
    let cooldown = until - server.start();
    assert!(cooldown >= 720 * SEC && cooldown < 900 * SEC, "{cooldown:?}");
    for (i, answer) in answers.iter().enumerate().skip(1) {
        match answer {
            Err(Error::Backoff { retry_at, last }) => {
                assert_eq!(*retry_at, until, "call {i}");
                assert!(matches!(**last, Error::HttpStatus { status: 404, .. }), "call {i}: {last}");
            }
            other => panic!("call {i}: {other:?}"),
        }
    }
}

#[test]
fn backoff_grows_and_is_capped() {
    let server = Server::new();
    let mut cache = server.cache();
    server.fail_with(Some(Error::from(TransportKind::Timeout)));
    let mut t = Duration::ZERO;
    let mut longest = Duration::ZERO;
    for n in 1..=30u32 {
        let now = server.at(t);
        assert!(cache.token_at(now).is_err());
        assert_eq!(cache.consecutive_failures(), n);
        let Decision::Wait(until) = cache.decide(now) else { panic!("gate not shut after failure {n}") };
        let gap = until - now;
        assert!(gap < (10 * SEC * 2u32.pow(n.min(10) - 1)).min(10 * MIN), "failure {n}: {gap:?}");
        longest = longest.max(gap);
        t = until - server.start();
    }
    assert_eq!(server.requests(), 30);
    assert!(longest > 5 * MIN, "backoff grew to {longest:?}");
}

#[test]
fn rejected_credentials_cool_down_for_minutes() {
    let server = Server::new();
    let mut cache = server.cache();
    server.fail_with(Some(Error::CredentialsRejected { status: 401, oauth: None }));
    let now = server.at(Duration::ZERO);
    assert!(cache.token_at(now).unwrap_err().is_credentials_rejected());
    let err = cache.token_at(server.at(11 * MIN)).unwrap_err();
    assert!(err.is_credentials_rejected() && matches!(err, Error::Backoff { .. }), "{err}");
    assert_eq!(server.requests(), 1);
    server.fail_with(None);
    assert_eq!(secret(&mut cache, server.at(15 * MIN)), "t2");
}

#[test]
fn invalidate_is_rate_limited_by_token_age() {
    let server = Server::new();
    let mut cache = server.cache();
    assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
    cache.invalidate();
    // Younger than 30 s: served until it is 30 s old.
    assert_eq!(secret(&mut cache, server.at(10 * SEC)), "t1");
    assert_eq!(secret(&mut cache, server.at(30 * SEC)), "t2");
    // Older: replaced at once.
    cache.invalidate();
    assert_eq!(secret(&mut cache, server.at(2 * MIN)), "t3");
}

#[test]
fn an_invalidated_token_is_not_served_stale() {
    let server = Server::new();
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    cache.invalidate();
    server.fail_with(Some(Error::from(TransportKind::Timeout)));
    assert_eq!(
        cache.token_at(server.at(MIN)).err().and_then(|e| e.transport_kind()),
        Some(TransportKind::Timeout)
    );
}

#[test]
fn call_retries_a_401_once_with_a_new_token() {
    let server = Server::new();
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    let mut seen = Vec::new();
    let status = cache
        .call_at(server.at(5 * MIN), |bearer| {
            seen.push(bearer.to_owned());
            if bearer == "Bearer t1" { 401u16 } else { 200 }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    assert_eq!(seen, ["Bearer t1", "Bearer t2"]);
}

#[test]
fn an_api_that_rejects_everything_cannot_loop_the_token_endpoint() {
    let server = Server::new();
    let mut cache = server.cache();
    secret(&mut cache, server.at(Duration::ZERO));
    let mut calls = 0;
    for second in 0..600u32 {
        let now = server.at(5 * MIN + second * SEC);
        let status = cache.call_at(now, |_| {
            calls += 1;
            401u16
        });
        assert_eq!(status.ok(), Some(401));
    }
    // One new token per 30 s of token age at most, over 10 minutes.
    assert!(server.requests() <= 1 + 20, "{} token requests", server.requests());
    assert!(calls <= 600 + 20, "{calls} API calls");
}

// ---- Suspend ------------------------------------------------------------------
//
// On waking, cctoken's clock (`crate::now`) has counted the sleep: to the
// cache, a suspend is time that jumped forward between two calls. These pin
// what a unit sees after its ignition was off.

#[test]
fn a_token_that_expired_during_two_hours_of_sleep_is_replaced_on_waking() {
    let server = Server::new();
    let mut cache = server.cache();
    assert_eq!(secret(&mut cache, server.at(10 * MIN)), "t1");
    // Asleep from 10 min to 2 h 10 min: the one-hour token expired at 1 h 10 min.
    let awake = server.at(2 * HOUR + 10 * MIN);
    assert_eq!(cache.decide(awake), Decision::Fetch);
    assert_eq!(secret(&mut cache, awake), "t2");
    assert_eq!(server.requests(), 2);
}

#[test]
fn a_refresh_point_that_passed_during_sleep_is_honoured_on_waking() {
    let server = Server::new();
    let mut cache = server.cache();
    assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
    let refresh_at = cache.refresh_at().expect("a refresh point");
    assert!(refresh_at < server.start() + 51 * MIN, "{refresh_at:?}");
    // Asleep from 1 min to 55 min: past the refresh point, before expiry.
    let awake = server.at(55 * MIN);
    assert_eq!(cache.decide(awake), Decision::Fetch);
    // The refresh fails (no network yet after waking): the valid token is served.
    server.fail_with(Some(Error::from(TransportKind::Connect)));
    assert_eq!(secret(&mut cache, awake), "t1");
    assert_eq!(server.requests(), 2);
    server.fail_with(None);
    // The gate it shut spreads the retry over what is left of the token; once
    // it opens, the refresh succeeds.
    let later = server.at(55 * MIN + 5 * MIN);
    assert_eq!(secret(&mut cache, later), "t3");
}

#[test]
fn a_gate_that_ran_out_during_sleep_is_open_on_waking() {
    let server = Server::new();
    let mut cache = server.cache();
    server.fail_with(Some(Error::CredentialsRejected { status: 401, oauth: None }));
    assert!(cache.token_at(server.at(Duration::ZERO)).is_err());
    let Decision::Wait(until) = cache.decide(server.at(SEC)) else { panic!("the gate is shut") };
    assert!(until >= server.start() + 11 * MIN, "a cooldown: {until:?}");
    // Asleep for an hour, past the cooldown; the credentials were fixed meanwhile.
    server.fail_with(None);
    let awake = server.at(HOUR);
    assert_eq!(cache.decide(awake), Decision::Fetch);
    assert_eq!(secret(&mut cache, awake), "t2");
}

// ---- Merging a state file's state ----------------------------------------------
//
// What `merge` keeps of a state another process (or an earlier run) saved;
// the file itself is tested in `state` and `tests/state.rs`.

#[cfg(feature = "state-file")]
mod merge {
    use super::*;
    use crate::state::Saved;

    fn saved_token(server: &Server, name: &str, issued: Duration, rejected: bool) -> Cached {
        let issued_at = server.start() + issued;
        let token = Token::new(AccessToken::new(name), issued_at, HOUR);
        Cached { token, refresh_at: issued_at + 40 * MIN, rejected }
    }

    fn saved_gate(server: &Server, failed: Duration, until: Duration, error: Error) -> Gate {
        Gate { failed_at: server.start() + failed, until: server.start() + until, error }
    }

    #[test]
    fn a_merge_keeps_the_token_issued_last() {
        let server = Server::new();
        let mut cache = server.cache();
        assert_eq!(secret(&mut cache, server.at(MIN)), "t1");
        let now = server.at(2 * MIN);
        // Older: ignored.
        let older =
            Saved { cached: Some(saved_token(&server, "t0", Duration::ZERO, false)), ..Saved::default() };
        cache.merge(older, now);
        assert_eq!(secret(&mut cache, now), "t1");
        // Newer: taken, with its refresh point.
        let newer = saved_token(&server, "other", 90 * SEC, false);
        let refresh_at = newer.refresh_at;
        cache.merge(Saved { cached: Some(newer), ..Saved::default() }, now);
        assert_eq!(secret(&mut cache, now), "other");
        assert_eq!(cache.refresh_at(), Some(refresh_at));
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn a_merge_keeps_a_rejection_of_the_same_token() {
        let server = Server::new();
        let mut cache = server.cache();
        assert_eq!(secret(&mut cache, server.at(Duration::ZERO)), "t1");
        let issued = Duration::ZERO;
        let mut theirs = saved_token(&server, "t1", issued, true);
        theirs.refresh_at = server.start() + 30 * SEC;
        cache.merge(Saved { cached: Some(theirs), ..Saved::default() }, server.at(MIN));
        assert_eq!(cache.refresh_at(), Some(server.start() + 30 * SEC));
        assert_eq!(secret(&mut cache, server.at(MIN)), "t2", "replaced, as after invalidate()");
        // An older copy that does not say rejected does not undo a rejection.
        cache.invalidate();
        let at = cache.refresh_at();
        cache.merge(
            Saved { cached: Some(saved_token(&server, "t2", MIN, false)), ..Saved::default() },
            server.now(),
        );
        assert_eq!(cache.refresh_at(), at);
    }

    #[test]
    fn a_merge_keeps_only_gates_shut_after_the_token_was_requested() {
        let server = Server::new();
        let mut cache = server.cache();
        let rejected = || Error::CredentialsRejected { status: 401, oauth: None };
        // A failure before the token was requested: a success followed it.
        let token = saved_token(&server, "t", MIN, false);
        let gate = saved_gate(&server, 30 * SEC, 10 * MIN, rejected());
        cache.merge(Saved { cached: Some(token), gate: Some(gate), failures: 4 }, server.at(2 * MIN));
        assert!(cache.last_error().is_none());
        assert_eq!(cache.consecutive_failures(), 0);
        // A failure after it: kept, with its count.
        let gate = saved_gate(&server, 3 * MIN, 10 * MIN, rejected());
        cache.merge(Saved { cached: None, gate: Some(gate), failures: 4 }, server.at(4 * MIN));
        assert!(cache.last_error().is_some_and(Error::is_credentials_rejected));
        assert_eq!(cache.consecutive_failures(), 4);
        // The token is fresh: served while the gate is shut.
        assert_eq!(secret(&mut cache, server.at(5 * MIN)), "t");
        // A gate that ends sooner does not replace a later one.
        let sooner = saved_gate(&server, 4 * MIN, 6 * MIN, Error::from(TransportKind::Io));
        cache.merge(Saved { cached: None, gate: Some(sooner), failures: 1 }, server.at(5 * MIN));
        assert_eq!(cache.consecutive_failures(), 4);
    }

    #[test]
    fn a_merged_gate_is_cut_to_what_the_policy_could_have_set() {
        let server = Server::new();
        let mut cache = server.cache();
        let now = server.at(MIN);
        // A year's gate, with no token: cut to the longest delay (an hour: max_retry_after).
        let gate = saved_gate(&server, 30 * SEC, 365 * 24 * HOUR, Error::from(TransportKind::Io));
        cache.merge(Saved { cached: None, gate: Some(gate), failures: 1 }, now);
        assert_eq!(cache.decide(now), Decision::Wait(now + HOUR));
    }
}
