// SPDX-License-Identifier: GPL-2.0

//! The scenarios, chosen by name from one table (like locktorture's
//! `lock_torture_ops`). Adding a scenario: one file here and one entry in
//! [`TABLE`].

use crate::config::Config;
use crate::kthread::StopToken;
use crate::runner::Outcome;
use crate::workers::Shared;
use kernel::{prelude::*, sync::Arc};

mod inversion;
mod soak;
mod stall;
mod throughput;

/// What a scenario is.
pub(crate) struct Ops {
    /// Its name (the `scenario` parameter, the KTAP test name).
    pub(crate) name: &'static str,
    /// Eventfds it needs with this configuration.
    pub(crate) evfds: fn(&Config) -> usize,
    /// Parameter checks only this scenario needs (one error line each).
    pub(crate) check: fn(&Config) -> Result,
    /// Runs it in the controller thread.
    pub(crate) run: fn(&Arc<Shared>, &StopToken) -> Outcome,
}

/// Every scenario.
static TABLE: [&Ops; 4] = [&inversion::OPS, &stall::OPS, &soak::OPS, &throughput::OPS];

/// The scenario called `name`.
pub(crate) fn by_name(name: &[u8]) -> Option<&'static Ops> {
    TABLE.iter().copied().find(|o| o.name.as_bytes() == name)
}

/// The accepted names, `a|b|c` (for the error line).
pub(crate) struct Names;

/// All scenario names.
pub(crate) const NAMES: Names = Names;

impl core::fmt::Display for Names {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, o) in TABLE.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(o.name)?;
        }
        Ok(())
    }
}

/// No checks beyond the common ones.
pub(crate) fn no_check(_: &Config) -> Result {
    Ok(())
}
