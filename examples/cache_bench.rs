//! What a cache hit costs: nanoseconds per `TokenCache::token()` on a warm
//! cache, next to one `Instant::now()` measured in the same run (a hit reads
//! the clock once, so that is its floor), and heap allocations per hit,
//! counted by a counting global allocator.
//!
//! ```text
//! cargo run --release --example cache_bench             # measure and print
//! cargo run --release --example cache_bench -- --check  # also exit 1 if a goal is missed
//! ```
//!
//! Goals, which `--check` enforces: a hit costs at most 1.5 × `Instant::now()`
//! (no more than the clock read it cannot avoid, plus a little) and allocates
//! nothing. Each figure is the median of several rounds, the loops
//! alternating, so that a noisy neighbour hits them alike.
//!
//! With `--features state-file` it measures a cache with a state file too (in
//! a temporary directory): a hit must not touch the file, so the same goals
//! hold.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cctoken::{AccessToken, Error, Token, TokenCache};

/// Counts every allocation (and reallocation), then lets the system
/// allocator do the work.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds `GlobalAlloc`'s contract; counting touches only an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 9;
const CALLS_PER_ROUND: u32 = 2_000_000;
const MAX_RATIO: f64 = 1.5;

/// Nanoseconds per call of `f`, over `CALLS_PER_ROUND` calls.
fn per_call(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS_PER_ROUND {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS_PER_ROUND)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<ExitCode, Error> {
    let check = std::env::args().any(|arg| arg == "--check");
    let fetch = || Ok(Token::new(AccessToken::new("bench-token"), cctoken::now(), Duration::from_secs(3600)));
    let mut cache = TokenCache::new(fetch);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    cache.token()?; // warm: the one fetch
    let fetch_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    let mut hit = || {
        black_box(cache.token().map(|token| token.access_token().secret().len()).ok());
    };
    let mut with_file = state_file::Bench::new(fetch);
    let clock = || {
        black_box(Instant::now());
    };
    // Warm up caches and the CPU's clock before measuring.
    per_call(&mut hit);
    per_call(clock);

    if let Some(bench) = &mut with_file {
        per_call(|| bench.hit());
    }

    let (mut clock_ns, mut hit_ns, mut file_ns) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        clock_ns.push(per_call(clock));
        hit_ns.push(per_call(&mut hit));
        if let Some(bench) = &mut with_file {
            file_ns.push(per_call(|| bench.hit()));
        }
    }
    let allocations = allocations_in(&mut hit);

    let clock_ns = median(clock_ns);
    println!("medians of {ROUNDS} rounds of {CALLS_PER_ROUND} calls each:");
    println!("  Instant::now():                {clock_ns:6.2} ns");
    let mut met = report("TokenCache::token(), warm hit:", median(hit_ns), clock_ns, allocations);
    if let Some(bench) = &mut with_file {
        let allocations = allocations_in(|| bench.hit());
        met &= report("with a state file, warm hit:", median(file_ns), clock_ns, allocations);
    }
    println!(
        "  (the counter works: allocations in the one fetch that warmed the cache: {fetch_allocations})"
    );
    Ok(if check && !met { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Heap allocations in `CALLS_PER_ROUND` calls of `hit`.
fn allocations_in(mut hit: impl FnMut()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..CALLS_PER_ROUND {
        hit();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// Prints a hit's cost and allocations against the goals; whether both are met.
fn report(label: &str, hit_ns: f64, clock_ns: f64, allocations: u64) -> bool {
    let ratio = hit_ns / clock_ns;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "  {label:<30} {hit_ns:6.2} ns = {ratio:.2} × Instant::now() (goal ≤ {MAX_RATIO}: {})",
        verdict(ratio <= MAX_RATIO)
    );
    println!(
        "  heap allocations per hit:      {allocations} in {CALLS_PER_ROUND} hits (goal 0: {})",
        verdict(allocations == 0)
    );
    ratio <= MAX_RATIO && allocations == 0
}

/// A warm cache with a state file, in a temporary directory removed on drop.
#[cfg(feature = "state-file")]
mod state_file {
    use std::path::PathBuf;

    use cctoken::{Config, Fetch, StateFile, TokenCache};

    pub struct Bench<F: Fetch> {
        cache: TokenCache<F>,
        dir: PathBuf,
    }

    impl<F: Fetch> Bench<F> {
        /// `None`, said on stderr, if the directory cannot be made or the
        /// cache cannot be warmed.
        pub fn new(fetch: F) -> Option<Bench<F>> {
            let dir = std::env::temp_dir().join(format!("cctoken-bench-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&dir) {
                eprintln!("cache_bench: no state file measured: {}: {e}", dir.display());
                return None;
            }
            let config = Config::client_secret_basic("https://auth.example.com/token", "bench", "secret");
            let state = StateFile::new(dir.join("token.state"), &config);
            let mut bench = Bench { cache: TokenCache::new(fetch).with_state_file(state), dir };
            if let Err(e) = bench.cache.token() {
                eprintln!("cache_bench: no state file measured: {e}");
                return None;
            }
            Some(bench)
        }

        pub fn hit(&mut self) {
            std::hint::black_box(self.cache.token().map(|token| token.access_token().secret().len()).ok());
        }
    }

    impl<F: Fetch> Drop for Bench<F> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Without the `state-file` feature there is nothing more to measure.
#[cfg(not(feature = "state-file"))]
mod state_file {
    pub struct Bench;

    impl Bench {
        pub fn new<F>(_: F) -> Option<Bench> {
            None
        }

        pub fn hit(&mut self) {}
    }
}
