//! Small statistics over repeats.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub stddev: f64,
}

impl Spread {
    /// Panics on an empty slice: callers check.
    pub fn of(v: &[f64]) -> Spread {
        assert!(!v.is_empty());
        let n = v.len();
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let mean = s.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        let var = if n > 1 {
            s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Spread {
            n,
            mean,
            median,
            min: s[0],
            max: s[n - 1],
            stddev: var.sqrt(),
        }
    }

    /// "median [min..max]" (just the value for one sample).
    pub fn show(&self) -> String {
        if self.n == 1 {
            fmt_num(self.median)
        } else {
            format!(
                "{} [{}..{}]",
                fmt_num(self.median),
                fmt_num(self.min),
                fmt_num(self.max)
            )
        }
    }

    /// "mean ±sd" (just the value for one sample).
    pub fn show_mean(&self) -> String {
        if self.n == 1 {
            fmt_num(self.mean)
        } else {
            format!("{} ±{}", fmt_num(self.mean), fmt_num(self.stddev))
        }
    }
}

/// A number with sensible digits: 12345, 123.4, 1.23, 0.012.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || v == v.trunc() && a < 1e15 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Ratio spread between two sets of samples: every b/a pair's ratio.
pub fn ratio_spread(a: &[f64], b: &[f64]) -> Option<Spread> {
    let r: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .filter(|(x, _)| **x > 0.0)
        .map(|(x, y)| y / x)
        .collect();
    if r.is_empty() {
        None
    } else {
        Some(Spread::of(&r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!(
            (s.n, s.min, s.max, s.median, s.mean),
            (4, 1.0, 10.0, 2.5, 4.0)
        );
        assert_eq!(Spread::of(&[5.0]).show(), "5");
        assert_eq!(s.show(), "2.50 [1..10]");
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(20100.4), "20100");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(123.45), "123.5");
        assert_eq!(fmt_num(0.1234), "0.123");
    }

    #[test]
    fn ratios() {
        let r = ratio_spread(&[10.0, 20.0], &[20.0]).unwrap();
        assert_eq!((r.min, r.max), (1.0, 2.0));
        assert!(ratio_spread(&[0.0], &[1.0]).is_none());
    }
}
