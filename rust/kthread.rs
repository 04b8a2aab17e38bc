// SPDX-License-Identifier: GPL-2.0

//! A small safe kthread wrapper.
//!
//! [`KThread::spawn`] creates a kthread with `kthread_create_on_node()`,
//! optionally binds it to one CPU (`kthread_bind()`), sets its scheduling
//! policy with `sched_setattr_nocheck()` and wakes it up. The thread runs a
//! Rust closure. Dropping the [`KThread`] calls `kthread_stop()` (the
//! closure must poll [`should_stop`] and return soon after it turns true),
//! then drops the reference on the `task_struct` and, if the thread never
//! got to run its closure, the closure itself.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use kernel::{bindings, prelude::*, str::CString};

extern "C" {
    fn ept_show_task(task: *mut c_void);
}

/// `SCHED_OTHER` from `include/uapi/linux/sched.h`.
const SCHED_OTHER: u32 = 0;
/// `SCHED_FIFO` from `include/uapi/linux/sched.h`.
const SCHED_FIFO: u32 = 1;
/// `NUMA_NO_NODE`.
const NUMA_NO_NODE: c_int = -1;

/// `struct sched_attr` (`include/uapi/linux/sched/types.h`); the kernel
/// headers only forward-declare it, so bindgen gives an opaque type.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

const _: () = assert!(core::mem::size_of::<SchedAttr>() == 56);

/// Scheduling policy of a kthread: `0` is `SCHED_OTHER` (nice 0), `1..=99`
/// is `SCHED_FIFO` at that priority.
#[derive(Clone, Copy)]
pub(crate) struct Prio(pub(crate) u32);

/// Returns true once `kthread_stop()` has been called on the current kthread.
pub(crate) fn should_stop() -> bool {
    // SAFETY: Only called from kthreads created by `KThread::spawn`;
    // `kthread_should_stop()` only reads the current task's kthread flags.
    unsafe { bindings::kthread_should_stop() }
}

/// Owned handle to a running kthread; dropping it stops the thread.
pub(crate) struct KThread {
    task: NonNull<bindings::task_struct>,
    data: *mut c_void,
    free_data: unsafe fn(*mut c_void),
}

// SAFETY: The handle only holds a counted `task_struct` reference (usable
// from any thread) and the boxed closure, which is `Send`.
unsafe impl Send for KThread {}
// SAFETY: No method takes `&self` and touches shared state.
unsafe impl Sync for KThread {}

/// The closure slot handed to the new thread. The thread takes the closure
/// out when it starts; the owner frees the slot after `kthread_stop()`.
type Slot<F> = Option<F>;

/// Thread function of every [`KThread`]: runs the closure in the slot.
///
/// # Safety
///
/// `data` must point to a live `Slot<F>` that nothing else accesses while
/// the thread runs.
unsafe extern "C" fn trampoline<F: FnOnce() + Send + 'static>(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `KBox<Slot<F>>` leaked by `KThread::spawn`; it is
    // freed only after `kthread_stop()` returned, i.e. after this function.
    // Nothing else touches the slot while the thread runs.
    let slot = unsafe { &mut *data.cast::<Slot<F>>() };
    if let Some(f) = slot.take() {
        f();
    }
    0
}

/// Frees a closure slot.
///
/// # Safety
///
/// `data` must come from `KBox::into_raw` of a `KBox<Slot<F>>`, must not be
/// used by the thread any more, and is freed exactly once.
unsafe fn free_slot<F>(data: *mut c_void) {
    // SAFETY: Per the function's safety requirements, `data` came from `KBox::into_raw` of a
    // `KBox<Slot<F>>` and is freed exactly once.
    drop(unsafe { KBox::from_raw(data.cast::<Slot<F>>()) });
}

impl KThread {
    /// Creates, binds (if `cpu` is `Some`), sets the policy of and wakes a
    /// kthread named `name` that runs `f`.
    pub(crate) fn spawn<F>(name: &CStr, cpu: Option<u32>, prio: Prio, f: F) -> Result<Self>
    where
        F: FnOnce() + Send + 'static,
    {
        let data = KBox::into_raw(KBox::new(Some(f), GFP_KERNEL)?).cast::<c_void>();
        // SAFETY: `trampoline::<F>` matches the `threadfn` signature and
        // `data` points to a `Slot<F>`; the format is "%s" with a valid
        // NUL-terminated string argument.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(trampoline::<F>),
                data,
                NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = match kernel::error::from_err_ptr(task) {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: The thread was not created, so `data` is still ours.
                unsafe { free_slot::<F>(data) };
                return Err(e);
            }
        };
        // SAFETY: `task` is a freshly created kthread; hold a reference so
        // that `kthread_stop()` stays valid even if the thread exits first.
        unsafe { bindings::get_task_struct(task) };
        let this = Self {
            // SAFETY: `from_err_ptr` returned a non-error pointer, never null
            // for `kthread_create_on_node()`.
            task: unsafe { NonNull::new_unchecked(task) },
            data,
            free_data: free_slot::<F>,
        };
        if let Some(cpu) = cpu {
            // SAFETY: The task was just created and has not run yet, as
            // `kthread_bind()` requires; `cpu` was checked online by the caller.
            unsafe { bindings::kthread_bind(task, cpu) };
        }
        let mut attr = SchedAttr {
            size: core::mem::size_of::<SchedAttr>() as u32,
            ..Default::default()
        };
        if prio.0 == 0 {
            attr.sched_policy = SCHED_OTHER;
        } else {
            attr.sched_policy = SCHED_FIFO;
            attr.sched_priority = prio.0;
        }
        // SAFETY: `task` is valid (we hold a reference) and `attr` is a
        // correctly sized `struct sched_attr`.
        let ret = unsafe {
            bindings::sched_setattr_nocheck(task, (&raw const attr).cast::<bindings::sched_attr>())
        };
        if ret != 0 {
            // `this` is dropped here: the thread is stopped before it ran.
            return Err(Error::from_errno(ret));
        }
        // SAFETY: `task` is a valid, not yet started kthread.
        unsafe { bindings::wake_up_process(task) };
        Ok(this)
    }

    /// Prints the thread's state and stack (`sched_show_task()`).
    pub(crate) fn show(&self) {
        // SAFETY: We hold a reference on the task, so it is valid.
        unsafe { ept_show_task(self.task.as_ptr().cast()) };
    }

    /// Like [`KThread::spawn`] with a formatted name.
    pub(crate) fn spawn_fmt<F>(
        name: core::fmt::Arguments<'_>,
        cpu: Option<u32>,
        prio: Prio,
        f: F,
    ) -> Result<Self>
    where
        F: FnOnce() + Send + 'static,
    {
        let name = CString::try_from_fmt(name)?;
        Self::spawn(&name, cpu, prio, f)
    }
}

impl Drop for KThread {
    fn drop(&mut self) {
        // SAFETY: We hold a reference on the task (taken in `spawn`), so it
        // is valid; `kthread_stop_put()` stops it, waits for it to exit and
        // drops that reference.
        unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
        // SAFETY: The thread has exited, so nobody else uses the slot; it
        // was created by `spawn` with the matching `free_data`.
        unsafe { (self.free_data)(self.data) };
    }
}
