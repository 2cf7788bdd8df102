//! What benchmarks print: medians and percentiles of samples.

use super::*;

/// Prints the median, p99 and minimum of `samples` (for benchmarks).
pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<10} median {:>8.3} ms   p99 {:>8.3} ms   min {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
    );
}

/// How many samples a benchmark takes: BERTH_BENCH_N, default 300.
pub fn samples() -> usize {
    std::env::var("BERTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}
