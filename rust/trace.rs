// SPDX-License-Identifier: GPL-2.0

//! Freezing the ftrace buffer at the moment that matters (`trace=1`).
//!
//! A call that sets a new worst latency takes a snapshot, under the
//! threshold too, so a run without an inversion still shows its worst
//! wait (`tracing_snapshot()`: the live buffer is swapped into the
//! snapshot buffer, so the snapshot always holds the window before the
//! worst call). A declared hang stops tracing (`tracing_off()`), so the
//! buffer keeps the window before the hang for the guest or the host's
//! SysRq-z to dump. Both functions are exported; a kernel without
//! `CONFIG_TRACER_SNAPSHOT` refuses `trace=1` at load time.

use kernel::prelude::*;

extern "C" {
    fn ept_trace_available() -> bool;
    fn ept_trace_prepare() -> i32;
    fn ept_trace_snapshot() -> bool;
    fn ept_trace_off();
}

/// Checks that the kernel can snapshot and allocates the snapshot buffer
/// (may sleep: module init only).
pub(crate) fn prepare() -> Result {
    // SAFETY: Reads a compile-time fact of the kernel's configuration.
    if !unsafe { ept_trace_available() } {
        pr_err!(
            "invalid parameter trace=1: accepted 0 (this kernel has no CONFIG_TRACER_SNAPSHOT)\n"
        );
        return Err(EINVAL);
    }
    // SAFETY: Called from module init, which may sleep.
    kernel::error::to_result(unsafe { ept_trace_prepare() })
}

/// A new worst call of `lat_ns` just ended: snapshot the trace (not after
/// a declared hang: that frozen buffer is kept).
pub(crate) fn freeze_worst(lat_ns: i64) {
    // SAFETY: `prepare()` allocated the snapshot buffer at load time.
    if unsafe { ept_trace_snapshot() } {
        pr_info!("# trace snapshot reason=worst lat_us={}\n", lat_ns / 1000);
    }
}

/// A hang was declared: stop tracing so the window before it is kept.
pub(crate) fn freeze_hang() {
    // SAFETY: `tracing_off()` may be called from any context.
    unsafe { ept_trace_off() };
    pr_info!("# trace frozen reason=hang\n");
}
