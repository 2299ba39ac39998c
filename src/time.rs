//! Trusted time: the time as cctoken knows it to be at least, for the two
//! uses of the wall clock that a wrong clock would break, checking the token
//! server's certificate and timing a client assertion.
//!
//! A unit without a battery-backed clock boots at 1970 (or at a stale time)
//! and keeps it until NTP, GPS or the modem sets the clock. What cctoken
//! knows meanwhile is a *floor*, "at this instant of cctoken's clock it was
//! at least this late": the `Date` of a token response that arrived over
//! verified TLS, a time the caller gives ([`raise_time_floor`]), a floor
//! saved in the state file, and, last, this cctoken's release date. A floor
//! is carried forward on cctoken's clock, which counts suspend, and never
//! moves backwards. The trusted time is the later of the wall clock and the
//! floor: a wall clock that reads earlier than what is known to be past is
//! not believed; one that reads later is used as it is.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The last-resort floor, in seconds since the Unix epoch: 2026-11-30
/// 00:00 UTC, before this cctoken was released. A wall clock that reads
/// earlier has not been set.
pub(crate) const RELEASE: u64 = 1_795_996_800;

/// "At `at` on cctoken's clock, it was at least `unix` after the epoch."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Floor {
    pub(crate) unix: Duration,
    pub(crate) at: Instant,
}

impl Floor {
    /// The floor carried forward to `now` (not back: an instant before `at`
    /// gets the floor as it was at `at`, which is still a floor then, as it
    /// is later).
    pub(crate) fn at(self, now: Instant) -> Duration {
        self.unix.saturating_add(now.saturating_duration_since(self.at))
    }

    /// The higher of two floors. Both move at the pace of cctoken's clock,
    /// so the higher at one instant is the higher at any later one.
    pub(crate) fn max(self, other: Floor) -> Floor {
        let common = self.at.max(other.at);
        if self.at(common) >= other.at(common) { self } else { other }
    }

    /// What a token server's `Date` of `date` seconds, in a response that
    /// arrived over verified TLS at `at`, teaches, with the wall clock then
    /// at `wall` and the floor at `floor`. A wall clock at or past the floor
    /// (so not known to be wrong) caps it: a server whose clock runs ahead
    /// cannot push the floor into the future, which would make every
    /// certificate look expired; for that, both clocks must be wrong.
    #[cfg_attr(not(feature = "ureq"), allow(dead_code))] // used by the transport
    pub(crate) fn from_server(date: u64, at: Instant, wall: Duration, floor: Duration) -> Floor {
        let date = Duration::from_secs(date);
        let unix = if wall >= floor { date.min(wall) } else { date };
        Floor { unix, at }
    }
}

/// The floor this process has learned; `None` until it learns one above
/// the release date.
static FLOOR: Mutex<Option<Floor>> = Mutex::new(None);

/// The floor this process has learned, if any.
pub(crate) fn learned() -> Option<Floor> {
    *FLOOR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Raises this process's floor to `floor`, unless it is higher already.
pub(crate) fn raise(floor: Floor) {
    let mut learned = FLOOR.lock().unwrap_or_else(PoisonError::into_inner);
    *learned = Some(learned.map_or(floor, |old| old.max(floor)));
}

/// The floor at `now`, in time since the epoch: what was learned, carried
/// forward, or the release date.
pub(crate) fn floor_at(now: Instant) -> Duration {
    let release = Duration::from_secs(RELEASE);
    learned().map_or(release, |floor| floor.at(now).max(release))
}

/// The wall clock as time since the epoch; a reading before the epoch
/// (a clock set to nonsense) as the epoch itself.
#[cfg_attr(not(feature = "ureq"), allow(dead_code))] // used by the transport
pub(crate) fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The current time as cctoken trusts it: the wall clock, unless it reads
/// earlier than a time cctoken knows to have passed, in which case that
/// time (the floor, carried forward).
///
/// The floor is this cctoken's release date until a better one is known:
/// the `Date` of the last token response that arrived over verified TLS
/// (capped by a wall clock that is not known to be wrong), a time given to
/// [`raise_time_floor`], or the one saved in a state file (its own boot's,
/// carried forward exactly; an earlier boot's, as a floor). Within one
/// process the floor is carried forward on [`now`](crate::now), which counts
/// suspend, and it never moves backwards.
///
/// cctoken checks the token server's certificate at this time, and times
/// client assertions by it. A daemon can use it for its own logs and TLS,
/// for example as a rustls time provider:
///
/// ```
/// # #[cfg(feature = "ureq")] {
/// use rustls::pki_types::UnixTime;
///
/// /// Certificates checked at cctoken's trusted time, not at a wall clock
/// /// that may read 1970.
/// #[derive(Debug)]
/// struct TrustedTime;
///
/// impl rustls::time_provider::TimeProvider for TrustedTime {
///     fn current_time(&self) -> Option<UnixTime> {
///         Some(UnixTime::since_unix_epoch(cctoken::trusted_time().duration_since(std::time::UNIX_EPOCH).ok()?))
///     }
/// }
///
/// let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
/// let config = rustls::ClientConfig::builder_with_details(provider, std::sync::Arc::new(TrustedTime))
///     .with_safe_default_protocol_versions()
///     .expect("ring supports TLS 1.2 and 1.3");
/// # let _ = config;
/// # }
/// ```
pub fn trusted_time() -> SystemTime {
    trusted(SystemTime::now(), floor_at(crate::now()))
}

/// The later of `wall` and `floor` (a floor beyond what `SystemTime` can
/// hold is not one).
pub(crate) fn trusted(wall: SystemTime, floor: Duration) -> SystemTime {
    UNIX_EPOCH.checked_add(floor).map_or(wall, |floor| wall.max(floor))
}

/// The end of the year 9999 in seconds since the epoch: no floor is later
/// (an HTTP date cannot be, either).
const LATEST: u64 = 253_402_300_799;

/// Tells cctoken that it is at least `time` now, from a source the caller
/// trusts (GPS, the modem's network time, an operator): the floor of
/// [`trusted_time`] rises to it (it never falls), and is carried forward on
/// [`now`](crate::now) from here. Use it when the wall clock cannot be set,
/// or before it is: the floor also lets cctoken verify a certificate that is
/// newer than its release date while the wall clock reads 1970. A time
/// before the epoch or after the year 9999 is ignored.
///
/// ```
/// let gps = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
/// cctoken::raise_time_floor(gps);
/// assert!(cctoken::trusted_time() >= gps);
/// ```
pub fn raise_time_floor(time: SystemTime) {
    if let Ok(unix) = time.duration_since(UNIX_EPOCH)
        && unix.as_secs() <= LATEST
    {
        raise(Floor { unix, at: crate::now() });
    }
}

/// `secs` since the epoch as `YYYY-MM-DD hh:mm:ss UTC`, for messages.
#[cfg_attr(not(feature = "ureq"), allow(dead_code))] // used by the transport
pub(crate) fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date, in 400-year eras of 146,097
    // days that start on 1 March (so that the leap day ends a year).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_floor_is_carried_forward_and_never_back() {
        let t0 = Instant::now();
        let floor = Floor { unix: secs(RELEASE + DAY), at: t0 + secs(100) };
        assert_eq!(floor.at(t0 + secs(100)), secs(RELEASE + DAY));
        assert_eq!(floor.at(t0 + secs(160)), secs(RELEASE + DAY + 60));
        assert_eq!(floor.at(t0), secs(RELEASE + DAY), "before `at`: the floor as it was at `at`");
    }

    #[test]
    fn the_higher_floor_wins_whenever_it_was_learned() {
        let t0 = Instant::now();
        let early = Floor { unix: secs(RELEASE + 1000), at: t0 };
        // Learned 500 s later on cctoken's clock, but only 400 s later in time.
        let late_but_lower = Floor { unix: secs(RELEASE + 1400), at: t0 + secs(500) };
        assert_eq!(early.max(late_but_lower), early);
        assert_eq!(late_but_lower.max(early), early);
        let late_and_higher = Floor { unix: secs(RELEASE + 1600), at: t0 + secs(500) };
        assert_eq!(early.max(late_and_higher), late_and_higher);
        assert_eq!(late_and_higher.max(early), late_and_higher);
    }

    #[test]
    fn a_plausible_wall_clock_caps_what_a_server_teaches() {
        let t0 = Instant::now();
        let floor = secs(RELEASE);
        let today = RELEASE + 40 * DAY;
        let cases = [
            // (wall clock, server's Date, floor learned)
            ("wall at 1970: the server's time", 0, today, today),
            ("wall right: the server's time", today, today, today),
            ("wall 2 h slow, not known wrong: capped by it", today - 2 * HOUR, today, today - 2 * HOUR),
            ("wall 2 h fast: the server's time", today + 2 * HOUR, today, today),
            ("server a year ahead, wall right: capped by the wall", today, today + 365 * DAY, today),
            ("server a year ahead, wall at 1970: believed", 0, today + 365 * DAY, today + 365 * DAY),
        ];
        for (name, wall, date, expected) in cases {
            let learned = Floor::from_server(date, t0, secs(wall), floor);
            assert_eq!(learned, Floor { unix: secs(expected), at: t0 }, "{name}");
        }
    }

    #[test]
    fn the_trusted_time_is_the_later_of_wall_clock_and_floor() {
        let floor = secs(RELEASE + DAY);
        let at = |s: u64| UNIX_EPOCH + secs(s);
        assert_eq!(trusted(at(0), floor), at(RELEASE + DAY), "1970: the floor");
        assert_eq!(trusted(at(RELEASE + DAY - 1), floor), at(RELEASE + DAY), "a second early: the floor");
        assert_eq!(trusted(at(RELEASE + 2 * DAY), floor), at(RELEASE + 2 * DAY), "later: the wall clock");
        let before_epoch = UNIX_EPOCH - secs(DAY);
        assert_eq!(trusted(before_epoch, floor), at(RELEASE + DAY));
        assert_eq!(since_epoch(before_epoch), Duration::ZERO);
        assert_eq!(trusted(at(0), Duration::MAX), at(0), "no floor beyond what SystemTime holds");
    }

    #[test]
    fn the_process_floor_only_rises() {
        // The one test of this binary that raises the process's floor: to
        // a day after the release, long past, so that no other test's
        // certificates are checked at another time.
        let now = crate::now();
        let high = Floor { unix: secs(RELEASE + DAY), at: now };
        raise(high);
        assert_eq!(learned(), Some(high));
        raise(Floor { unix: secs(RELEASE + HOUR), at: now });
        assert_eq!(learned(), Some(high), "a lower floor changes nothing");
        assert_eq!(floor_at(now + secs(60)), secs(RELEASE + DAY + 60));
        raise_time_floor(UNIX_EPOCH - secs(1));
        assert_eq!(learned(), Some(high), "a time before the epoch is ignored");
        raise_time_floor(UNIX_EPOCH + secs(LATEST + 1));
        assert_eq!(learned(), Some(high), "a time after the year 9999 is ignored");
    }

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(RELEASE), "2026-11-30 00:00:00 UTC");
        assert_eq!(utc(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }
}
