//! A logger for the tests: it records every `cctoken` event with the thread
//! that emitted it, and fails the emitting test at once when an event holds
//! one of the strings it was told are secret.

use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

struct Capture {
    forbidden: Vec<String>,
    lines: Mutex<Vec<(ThreadId, String)>>,
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// Installs the logger for this test binary (the first call decides the
/// forbidden strings; every test of a binary passes the same ones).
pub fn install(forbidden: &[&str]) {
    let capture = CAPTURE.get_or_init(|| Capture {
        forbidden: forbidden.iter().map(|s| s.to_string()).collect(),
        lines: Mutex::new(Vec::new()),
    });
    if log::set_logger(capture).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// The events this thread has emitted so far, as `level: message`.
pub fn of_this_thread() -> Vec<String> {
    let Some(capture) = CAPTURE.get() else { return Vec::new() };
    let me = std::thread::current().id();
    let lines = capture.lines.lock().unwrap_or_else(|e| e.into_inner());
    lines.iter().filter(|(id, _)| *id == me).map(|(_, line)| line.clone()).collect()
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("cctoken")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("{}: {}", record.level().as_str().to_ascii_lowercase(), record.args());
        assert!(!line.contains('\n'), "an event of more than one line: {line:?}");
        for secret in &self.forbidden {
            assert!(!line.contains(secret.as_str()), "an event shows {secret:?}: {line}");
        }
        let me = std::thread::current().id();
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push((me, line));
    }

    fn flush(&self) {}
}
