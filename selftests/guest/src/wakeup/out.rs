//! Console output: every line carries the `ept-wakeup: ` prefix (the KTAP
//! producer prefix of design.md) and goes out in one write(2), so that
//! kernel messages on the same console do not split it.

use std::sync::Mutex;

pub const PREFIX: &str = "ept-wakeup: ";

static LOCK: Mutex<()> = Mutex::new(());

pub fn line(s: &str) {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut b = String::with_capacity(PREFIX.len() + s.len() + 1);
    b.push_str(PREFIX);
    b.push_str(s);
    b.push('\n');
    let mut off = 0;
    let bytes = b.as_bytes();
    while off < bytes.len() {
        // SAFETY: valid buffer slice.
        let r = unsafe {
            libc::write(
                1,
                bytes[off..].as_ptr() as *const libc::c_void,
                bytes.len() - off,
            )
        };
        if r <= 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        off += r as usize;
    }
}

/// One value for a `key=value` pair: no spaces (they would split the pair).
pub fn token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}
