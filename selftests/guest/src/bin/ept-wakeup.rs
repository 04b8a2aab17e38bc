//! ept-wakeup: wake-up torture for epoll with an oracle for every event
//! (false negatives of non-blocking waits, lost wake-ups of blocking ones).
//! The program lives in src/wakeup/; see docs/wakeup.md.

#[path = "../wakeup/mod.rs"]
mod wakeup;

fn main() {
    std::process::exit(wakeup::main())
}
