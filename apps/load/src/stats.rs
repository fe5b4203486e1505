//! Percentiles, medians and latency summaries.

use serde::Serialize;

/// The value at percentile `p` (0–100) of `sorted` by the nearest-rank
/// method; 0 for no values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count);
/// `NaN` for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Latency {
    /// Summarises samples (microseconds), sorting them in place.
    pub fn of(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        Self {
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples.last().copied().unwrap_or(0),
        }
    }

    /// The per-field median of several runs.
    pub fn median_of(runs: &[Self]) -> Self {
        let m = |f: fn(&Self) -> u64| median(&runs.iter().map(|r| f(r) as f64).collect::<Vec<_>>()) as u64;
        Self {
            p50: m(|r| r.p50),
            p90: m(|r| r.p90),
            p99: m(|r| r.p99),
            max: m(|r| r.max),
        }
    }
}

/// Microseconds as milliseconds with two decimals, for tables.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90.0), 9);
        assert_eq!(percentile(&ten, 91.0), 10);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn latency_summary_and_median_of_runs() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let l = Latency::of(&mut samples);
        assert_eq!(
            l,
            Latency {
                p50: 500,
                p90: 900,
                p99: 990,
                max: 1000
            }
        );
        let runs = [
            l,
            Latency {
                p50: 1,
                p90: 2,
                p99: 3,
                max: 4,
            },
            Latency {
                p50: 600,
                p90: 950,
                p99: 999,
                max: 5000,
            },
        ];
        assert_eq!(
            Latency::median_of(&runs),
            Latency {
                p50: 500,
                p90: 900,
                p99: 990,
                max: 1000
            }
        );
        assert_eq!(ms(1234), "1.23");
    }
}
