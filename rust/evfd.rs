// SPDX-License-Identifier: GPL-2.0

//! The files the module drives: the epoll instance ([`EpollFile`]) and the
//! eventfds it watches ([`EvFd`]).
//!
//! Nothing in `fs/eventpoll.c` is exported, so the module cannot create an
//! epoll instance: the guest program `ept-run` creates the epoll fd and
//! the `O_NONBLOCK` eventfds, adds every eventfd to the epoll set
//! (`EPOLLIN`) and loads the module with `epfd=E evfds=A-B`. Module init
//! runs in that insmod process, so it takes its own references here.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::{
    bindings,
    fs::{File, LocalFile},
    prelude::*,
    sync::aref::ARef,
};

/// `EPOLLIN` from `include/uapi/linux/eventpoll.h`.
pub(crate) const EPOLLIN: u32 = 0x1;

extern "C" {
    fn ept_vfs_poll(file: *mut c_void) -> u32;
    fn ept_file_is_epoll(file: *mut c_void) -> bool;
}

/// Takes a reference on `fd` of the insmod process; `what` names the
/// parameter in the error line.
fn fget(fd: u32, what: &str) -> Result<ARef<File>> {
    let Ok(f) = LocalFile::fget(fd) else {
        pr_err!("invalid parameter {what}: fd {fd} is not open in the insmod process (accepted: an open fd)\n");
        return Err(EINVAL);
    };
    // SAFETY: We are in module init (the finit_module syscall of insmod),
    // which has no `fdget_pos()` active on this fd.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(f) })
}

/// The epoll instance under test.
pub(crate) struct EpollFile(ARef<File>);

impl EpollFile {
    /// Takes a reference on the insmod process's epoll fd `fd`.
    pub(crate) fn from_fd(fd: u32) -> Result<Self> {
        let f = fget(fd, "epfd")?;
        // SAFETY: `f` is a valid file.
        if !unsafe { ept_file_is_epoll(f.as_ptr().cast()) } {
            pr_err!("invalid parameter epfd={fd}: not an epoll fd (accepted: an epoll fd)\n");
            return Err(EINVAL);
        }
        Ok(Self(f))
    }

    /// `vfs_poll()` without a poll table: `ep_eventpoll_poll()` ->
    /// `__ep_eventpoll_poll()` -> the ready-list scan (the write side of
    /// `ep->lock` on rwlock kernels). Returns the event mask.
    pub(crate) fn poll(&self) -> u32 {
        // SAFETY: We hold a reference to an epoll file.
        unsafe { ept_vfs_poll(self.0.as_ptr().cast()) }
    }
}

/// An eventfd of the epoll set: a file reference and an eventfd context.
pub(crate) struct EvFd {
    file: ARef<File>,
    ctx: NonNull<bindings::eventfd_ctx>,
}

// SAFETY: `eventfd_ctx` is reference counted and the operations used here
// (`eventfd_signal_mask`, reads through the file) take its own lock.
unsafe impl Send for EvFd {}
// SAFETY: See `Send`; no `&self` method needs exclusive access.
unsafe impl Sync for EvFd {}

impl EvFd {
    /// Takes references on the insmod process's eventfd `fd`.
    pub(crate) fn from_fd(fd: u32) -> Result<Self> {
        let file = fget(fd, "evfds")?;
        if file.flags() & kernel::fs::file::flags::O_NONBLOCK == 0 {
            pr_err!("invalid parameter evfds: fd {fd} is not O_NONBLOCK (accepted: O_NONBLOCK eventfds)\n");
            return Err(EINVAL);
        }
        // SAFETY: `file` is a valid file; the function checks that it is an
        // eventfd and takes a reference on its context.
        let ctx = unsafe { bindings::eventfd_ctx_fileget(file.as_ptr()) };
        match kernel::error::from_err_ptr(ctx).ok().and_then(NonNull::new) {
            Some(ctx) => Ok(Self { file, ctx }),
            None => {
                pr_err!(
                    "invalid parameter evfds: fd {fd} is not an eventfd (accepted: eventfds)\n"
                );
                Err(EINVAL)
            }
        }
    }

    /// `eventfd_signal()`: runs `ep_poll_callback()` of every epoll item
    /// watching this eventfd, in the calling context.
    pub(crate) fn signal(&self) {
        // SAFETY: `ctx` is a counted, valid eventfd context.
        unsafe { bindings::eventfd_signal_mask(self.ctx.as_ptr(), 0) };
    }

    /// Reads (resets) the counter; returns its value, 0 if it was zero.
    pub(crate) fn drain(&self) -> u64 {
        let mut v: u64 = 0;
        let mut pos: bindings::loff_t = 0;
        // SAFETY: The file is a valid O_NONBLOCK eventfd and `v` is an
        // 8-byte buffer in kernel memory, as `kernel_read()` expects.
        let n = unsafe {
            bindings::kernel_read(
                self.file.as_ptr(),
                (&raw mut v).cast::<c_void>(),
                8,
                &raw mut pos,
            )
        };
        if n == 8 {
            v
        } else {
            0
        }
    }
}

impl Drop for EvFd {
    fn drop(&mut self) {
        // SAFETY: Drops the reference taken by `eventfd_ctx_fileget()`.
        unsafe { bindings::eventfd_ctx_put(self.ctx.as_ptr()) };
    }
}
