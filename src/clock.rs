//! The one place that reads the time, on a clock that keeps counting while
//! the system is suspended.
//!
//! std's `Instant` is `CLOCK_MONOTONIC` on Linux, which stops during
//! suspend-to-RAM: after two hours asleep, a one-hour token would look as
//! fresh as before. On Linux and Android cctoken reads `CLOCK_BOOTTIME`
//! instead, which counts the sleep, and places it on the `Instant` scale
//! from one anchor taken at its first reading, so the public API keeps
//! `Instant`. Elsewhere it reads `Instant::now()`. The wall clock is never
//! read here.
//!
//! This module holds the crate's only `unsafe` code: one call of
//! `clock_gettime`, which std offers no safe way to make for this clock.

use std::time::Instant;

/// The current instant on cctoken's clock. See [`crate::now`].
#[cfg(all(any(target_os = "linux", target_os = "android"), not(cctoken_instant_clock)))]
pub(crate) fn now() -> Instant {
    // A kernel without CLOCK_BOOTTIME (before 2.6.39) fails every reading,
    // so such a process never mixes the two scales.
    match boot_time() {
        Some(boot) => on_instant_scale(boot),
        None => Instant::now(),
    }
}

/// A reading of the boot clock placed on the `Instant` scale, from one
/// anchor taken at the first reading.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(cctoken_instant_clock)))]
fn on_instant_scale(boot: std::time::Duration) -> Instant {
    use std::sync::OnceLock;
    use std::time::Duration;

    /// The same moment on both clocks.
    struct Anchor {
        instant: Instant,
        boot: Duration,
    }
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();

    let anchor = ANCHOR.get_or_init(|| Anchor { instant: Instant::now(), boot });
    // Both clocks only move forward; saturating keeps a reading taken just
    // before the anchor (by another thread) at the anchor.
    anchor.instant.checked_add(boot.saturating_sub(anchor.boot)).unwrap_or(anchor.instant)
}

/// The current instant on cctoken's clock: std's `Instant`, on systems
/// where cctoken knows no clock that counts suspend, and in builds with
/// `--cfg cctoken_instant_clock` (the suspend test's control).
#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(cctoken_instant_clock))))]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The same moment as an instant of cctoken's clock and as a time since
/// boot, for the state file, which stores times on the boot clock. Both come
/// from one reading, so that a time stored and read back in one process is
/// the same instant, to the nanosecond. `None` where there is no boot clock.
#[cfg(all(
    feature = "state-file",
    any(target_os = "linux", target_os = "android"),
    not(cctoken_instant_clock)
))]
pub(crate) fn now_and_boot_time() -> Option<(Instant, std::time::Duration)> {
    let boot = boot_time()?;
    Some((on_instant_scale(boot), boot))
}

/// The same moment on both clocks: in a `--cfg cctoken_instant_clock` build,
/// std's `Instant`, read next to the boot clock.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android"), cctoken_instant_clock))]
pub(crate) fn now_and_boot_time() -> Option<(Instant, std::time::Duration)> {
    Some((Instant::now(), boot_time()?))
}

/// Time since boot, suspend included: `CLOCK_BOOTTIME`.
#[cfg(any(target_os = "linux", target_os = "android"))]
// The control build's `now` does not read it; its tests still do.
#[cfg_attr(cctoken_instant_clock, allow(dead_code))]
pub(crate) fn boot_time() -> Option<std::time::Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live, writable `timespec` owned by this frame, and
    // `clock_gettime` writes at most one `timespec` through the pointer,
    // during the call only. An unknown clock id makes it return -1 (EINVAL)
    // without writing, which is handled below.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return None;
    }
    // `time_t` is 32 bits on some 32-bit targets; neither field is negative.
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok().filter(|n| *n < 1_000_000_000)?;
    Some(std::time::Duration::new(secs, nanos))
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// `/proc/uptime` counts suspend too: its first field is `CLOCK_BOOTTIME`
    /// in seconds, to the hundredth.
    fn proc_uptime() -> Duration {
        let text = std::fs::read_to_string("/proc/uptime").expect("read /proc/uptime");
        let first = text.split_whitespace().next().expect("a first field");
        Duration::from_secs_f64(first.parse().expect("seconds"))
    }

    #[test]
    fn the_boot_clock_agrees_with_proc_uptime() {
        let before = boot_time().expect("CLOCK_BOOTTIME");
        let uptime = proc_uptime();
        let after = boot_time().expect("CLOCK_BOOTTIME");
        // The kernel rounds uptime down to 10 ms.
        assert!(before <= uptime + Duration::from_millis(10), "{before:?} vs {uptime:?}");
        assert!(uptime <= after, "{uptime:?} vs {after:?}");
    }

    #[test]
    fn now_moves_with_instant_while_the_system_is_awake() {
        // Each reading of ours is bracketed by two of std's, so a pause
        // between readings (a busy or emulated machine) cannot fail the test:
        // without a suspend, both clocks advance alike.
        let (i0, a, i1) = (Instant::now(), now(), Instant::now());
        let (j0, b, j1) = (Instant::now(), now(), Instant::now());
        let ours = b - a;
        let slack = Duration::from_micros(1); // rounding of the two scales
        assert!(
            ours + slack >= j0 - i1 && ours <= (j1 - i0) + slack,
            "{ours:?} outside [{:?}, {:?}]",
            j0 - i1,
            j1 - i0
        );
    }
}
