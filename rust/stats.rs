// SPDX-License-Identifier: GPL-2.0

//! Latency statistics: a log2 histogram (microseconds) and exact
//! percentiles from the kept samples (up to [`MAX_SAMPLES`] per consumer;
//! beyond that the percentiles come from the histogram).

use core::fmt::Write;
use kernel::prelude::*;
use kernel::str::CString;

/// Number of log2 buckets: bucket `i` holds `[2^i, 2^(i+1))` microseconds
/// (bucket 0 also holds everything below 1 us); the last one is open.
pub(crate) const NBUCKETS: usize = 32;
/// Samples kept per consumer for exact percentiles.
pub(crate) const MAX_SAMPLES: usize = 1 << 18;

/// Latency statistics of one or more consumers.
pub(crate) struct Lat {
    pub(crate) hist: [u64; NBUCKETS],
    pub(crate) count: u64,
    pub(crate) max_ns: u64,
    samples: KVVec<u64>,
    dropped: bool,
}

/// The histogram bucket of a latency.
pub(crate) fn bucket(ns: u64) -> usize {
    let us = ns / 1000;
    if us < 2 {
        0
    } else {
        (63 - us.leading_zeros() as usize).min(NBUCKETS - 1)
    }
}

impl Lat {
    /// New statistics that keep up to `cap` samples.
    pub(crate) fn new(cap: usize) -> Result<Self> {
        Ok(Self {
            hist: [0; NBUCKETS],
            count: 0,
            max_ns: 0,
            samples: KVVec::with_capacity(cap, GFP_KERNEL)?,
            dropped: false,
        })
    }

    /// Records one latency; never allocates.
    pub(crate) fn record(&mut self, ns: u64) {
        self.hist[bucket(ns)] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        if self.samples.len() < self.samples.capacity() {
            // Cannot fail: there is spare capacity, so nothing is allocated.
            let _ = self.samples.push(ns, GFP_NOWAIT);
        } else {
            self.dropped = true;
        }
    }

    /// The kept samples (for sorting in the KUnit suite).
    #[allow(dead_code)]
    pub(crate) fn samples_mut(&mut self) -> &mut [u64] {
        &mut self.samples
    }

    /// Adds `other` into `self` (may allocate for the samples).
    pub(crate) fn merge(&mut self, other: &Lat) {
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.dropped |= other.dropped;
        if self
            .samples
            .extend_from_slice(&other.samples, GFP_KERNEL)
            .is_err()
        {
            self.dropped = true;
        }
    }

    /// Nearest-rank percentile `pct` (0..=100) in nanoseconds.
    pub(crate) fn percentile(&self, sorted: bool, pct: u64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        if sorted && !self.dropped && !self.samples.is_empty() {
            let n = self.samples.len() as u64;
            let rank = (n * pct).div_ceil(100).max(1) - 1;
            return self.samples[rank as usize];
        }
        // From the histogram: the upper bound of the bucket holding the rank.
        let rank = (self.count * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, c) in self.hist.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((2u64 << i) * 1000).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Formats `calls=.. lat_p50_us=.. lat_p99_us=.. lat_max_us=..
    /// pct_from=.. hist_us=lo:count,...` (sorts the samples).
    pub(crate) fn summary(&mut self) -> Result<CString> {
        heapsort(&mut self.samples);
        let p50 = self.percentile(true, 50);
        let p99 = self.percentile(true, 99);
        let mut hist = KString::new();
        for (i, c) in self.hist.iter().enumerate() {
            if *c != 0 {
                let lo = if i == 0 { 0 } else { 1u64 << i };
                if !hist.is_empty() {
                    hist.push(',');
                }
                let _ = write!(hist, "{lo}:{c}");
            }
        }
        if hist.is_empty() {
            hist.push('-');
        }
        CString::try_from_fmt(fmt!(
            "calls={} lat_p50_us={} lat_p99_us={} lat_max_us={} pct_from={} hist_us={}",
            self.count,
            p50 / 1000,
            p99 / 1000,
            self.max_ns / 1000,
            if self.dropped { "hist" } else { "samples" },
            &*hist
        ))
    }
}

/// In-place heapsort (core's sort pulls in code objtool cannot follow).
pub(crate) fn heapsort(v: &mut [u64]) {
    fn sift(v: &mut [u64], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// A tiny growable string for building metrics lines.
pub(crate) struct KString(KVec<u8>);

impl KString {
    pub(crate) fn new() -> Self {
        Self(KVec::new())
    }
    /// The formatted text (truncated only if memory runs out).
    pub(crate) fn from_fmt(args: core::fmt::Arguments<'_>) -> Self {
        let mut s = Self::new();
        let _ = s.write_fmt(args);
        s
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        let _ = self.write_str(c.encode_utf8(&mut b));
    }
}

impl core::ops::Deref for KString {
    type Target = str;
    fn deref(&self) -> &str {
        // Only `&str` data is ever written in.
        core::str::from_utf8(&self.0).unwrap_or("?")
    }
}

impl Write for KString {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| core::fmt::Error)
    }
}
