// SPDX-License-Identifier: GPL-2.0

//! The inversion signature, kept apart from host noise.
//!
//! On an rwlock kernel the hog preempts a producer inside the read side of
//! `ep->lock`; the consumer's next poll (the write side) then waits until
//! the hog's burst ends and the reader can finish. Such a call *starts*
//! just after a burst began and *ends* just after that burst ended. A vCPU
//! that the host deschedules makes long calls too, but they start and end
//! at random times. A long call counts as the signature only when both
//! ends line up with the same burst; other long calls are rejected and
//! counted as such.

/// A full hog burst as the hog published it (ns since the run's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Burst {
    pub(crate) start: i64,
    /// 0 while the burst is still going on.
    pub(crate) end: i64,
}

/// What one consumer call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// Not over the threshold.
    Short,
    /// Over the threshold, both ends correlated with one burst.
    Signature,
    /// Over the threshold, not correlated: noise (counted, not a finding).
    Rejected,
}

/// The correlation windows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Windows {
    /// A call over this many ns is long.
    pub(crate) threshold: i64,
    /// The call must start at most this long after the burst started...
    pub(crate) start: i64,
    /// ...or at most this long before it (the hog reads the clock only
    /// after it was scheduled, a little after the producer was preempted).
    pub(crate) before: i64,
    /// The call must end at most this long after the burst ended.
    pub(crate) end: i64,
}

/// Classifies a call `[start, end]` against the last full burst.
pub(crate) fn classify(start: i64, end: i64, burst: Option<Burst>, w: &Windows) -> Call {
    if end - start <= w.threshold {
        return Call::Short;
    }
    let Some(b) = burst else {
        return Call::Rejected;
    };
    let starts_with_it = start >= b.start - w.before && start - b.start <= w.start;
    let ends_with_it = b.end != 0 && end >= b.end && end - b.end <= w.end;
    if starts_with_it && ends_with_it {
        Call::Signature
    } else {
        Call::Rejected
    }
}
