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
//! nothing. Each figure is the median of several rounds, the two loops
//! alternating, so that a noisy neighbour hits both alike.

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
    let clock = || {
        black_box(Instant::now());
    };
    // Warm up caches and the CPU's clock before measuring.
    per_call(&mut hit);
    per_call(clock);

    let (mut clock_ns, mut hit_ns) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        clock_ns.push(per_call(clock));
        hit_ns.push(per_call(&mut hit));
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..CALLS_PER_ROUND {
        hit();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    let (clock_ns, hit_ns) = (median(clock_ns), median(hit_ns));
    let ratio = hit_ns / clock_ns;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!("medians of {ROUNDS} rounds of {CALLS_PER_ROUND} calls each:");
    println!("  Instant::now():                {clock_ns:6.2} ns");
    println!(
        "  TokenCache::token(), warm hit: {hit_ns:6.2} ns = {ratio:.2} × Instant::now() (goal ≤ {MAX_RATIO}: {})",
        verdict(ratio <= MAX_RATIO)
    );
    println!(
        "  heap allocations per hit:      {} in {CALLS_PER_ROUND} hits (goal 0: {})",
        allocations,
        verdict(allocations == 0)
    );
    println!(
        "  (the counter works: allocations in the one fetch that warmed the cache: {fetch_allocations})"
    );
    let missed = ratio > MAX_RATIO || allocations != 0;
    Ok(if check && missed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
