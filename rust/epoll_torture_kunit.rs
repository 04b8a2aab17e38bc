// SPDX-License-Identifier: GPL-2.0

//! epoll_torture_kunit: KUnit tests of epoll_torture's pure logic (the
//! parameter table and the `evfds` parser, the latency histogram and its
//! percentiles, the inversion signature), built from the same source files
//! as the module. Loading it runs the suite; the results are KTAP in dmesg.
//!
//! ```text
//! insmod /lib/modules/epoll_torture_kunit.ko; rmmod epoll_torture_kunit
//! ```

use kernel::prelude::*;

#[allow(dead_code)]
#[macro_use]
#[path = "params.rs"]
mod params;
#[allow(dead_code)]
#[path = "signature.rs"]
mod signature;
#[allow(dead_code)]
#[path = "stats.rs"]
mod stats;

module! {
    type: EpollTortureKunit,
    name: "epoll_torture_kunit",
    authors: ["epoll-torture project"],
    description: "KUnit tests of epoll_torture's pure logic",
    license: "GPL",
}

struct EpollTortureKunit;

impl kernel::Module for EpollTortureKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(EpollTortureKunit)
    }
}

#[kunit_tests(epoll_torture)]
mod tests {
    use super::params::{self, parse_fd_list, SPECS};
    use super::signature::{classify, Burst, Call, Windows};
    use super::stats::{bucket, heapsort, Lat, NBUCKETS};
    use kernel::prelude::*;

    fn fds(s: &str) -> Option<KVec<u32>> {
        parse_fd_list(s.as_bytes(), params::MAX_EVFDS)
    }

    #[test]
    fn param_defaults_are_accepted() {
        for s in SPECS {
            // `epfd` has no usable default: it is required.
            if s.name != "epfd" {
                assert!(s.accepts(s.default));
            }
            assert!(s.min <= s.max);
            assert!(!s.accepts(s.max.saturating_add(1)));
            assert!(!s.accepts(s.min.saturating_sub(1)));
        }
    }

    #[test]
    fn param_range_check() {
        let s = SPECS.iter().find(|s| s.name == "producer_prio").unwrap();
        assert!(s.check(99).is_ok());
        assert!(s.check(100).is_err());
        assert!(s.check(-1).is_err());
    }

    #[test]
    fn evfds_lists_and_ranges() {
        assert_eq!(fds("5").as_deref(), Some(&[5u32][..]));
        assert_eq!(fds("3-6").as_deref(), Some(&[3u32, 4, 5, 6][..]));
        assert_eq!(fds("1,4-5,9").as_deref(), Some(&[1u32, 4, 5, 9][..]));
        assert!(fds("").is_none());
        assert!(fds("6-3").is_none());
        assert!(fds("a").is_none());
        assert!(fds("1,,2").is_none());
        assert!(fds("-1").is_none());
        assert!(fds("2147483648").is_none());
        assert!(fds("0-1023").is_some_and(|v| v.len() == 1024));
        assert!(fds("0-1024").is_none());
    }

    #[test]
    fn histogram_buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1_999), 0);
        assert_eq!(bucket(2_000), 1);
        assert_eq!(bucket(1_000_000), 9);
        assert_eq!(bucket(u64::MAX), NBUCKETS - 1);
    }

    #[test]
    fn percentiles_from_samples_and_histogram() {
        let mut l = Lat::new(16).unwrap();
        for us in [5u64, 1, 3, 2, 4, 100, 6, 7, 8, 9] {
            l.record(us * 1000);
        }
        assert_eq!(l.count, 10);
        assert_eq!(l.max_ns, 100_000);
        heapsort(l.samples_mut());
        assert_eq!(l.percentile(true, 50), 5_000);
        assert_eq!(l.percentile(true, 90), 9_000);
        assert_eq!(l.percentile(true, 100), 100_000);
        // Without samples: the upper bound of the bucket, capped at max.
        let mut h = Lat::new(0).unwrap();
        for us in [1u64, 1, 1, 300] {
            h.record(us * 1000);
        }
        assert_eq!(h.percentile(true, 50), 2_000);
        assert_eq!(h.percentile(true, 100), 300_000);
        let mut m = Lat::new(0).unwrap();
        m.merge(&l);
        m.merge(&h);
        assert_eq!(m.count, 14);
        assert_eq!(m.max_ns, 300_000);
    }

    #[test]
    fn heapsort_sorts() {
        let mut v = [9u64, 1, 8, 2, 7, 3, 6, 4, 5, 0, 5];
        heapsort(&mut v);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn signature_needs_both_ends() {
        let ms = 1_000_000i64;
        let w = Windows {
            threshold: 50 * ms,
            start: 7 * ms,
            before: 2 * ms,
            end: 20 * ms,
        };
        let b = Some(Burst {
            start: 1000 * ms,
            end: 1100 * ms,
        });
        // Starts 1 ms into the burst, ends 2 ms after it: the signature.
        assert_eq!(classify(1001 * ms, 1102 * ms, b, &w), Call::Signature);
        // The hog reads its clock a little after it preempted the reader.
        assert_eq!(classify(999 * ms, 1102 * ms, b, &w), Call::Signature);
        assert_eq!(classify(990 * ms, 1102 * ms, b, &w), Call::Rejected);
        // Short calls are not judged.
        assert_eq!(classify(1001 * ms, 1040 * ms, b, &w), Call::Short);
        // Host noise: long, but starting mid-burst or ending off the end.
        assert_eq!(classify(1030 * ms, 1101 * ms, b, &w), Call::Rejected);
        assert_eq!(classify(1001 * ms, 1190 * ms, b, &w), Call::Rejected);
        assert_eq!(classify(1001 * ms, 1080 * ms, b, &w), Call::Rejected);
        // A burst still going on, or none yet.
        let ongoing = Some(Burst {
            start: 1000 * ms,
            end: 0,
        });
        assert_eq!(classify(1001 * ms, 1102 * ms, ongoing, &w), Call::Rejected);
        assert_eq!(classify(1001 * ms, 1102 * ms, None, &w), Call::Rejected);
    }
}
