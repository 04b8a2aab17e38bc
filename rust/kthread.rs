// SPDX-License-Identifier: GPL-2.0

//! A small safe kthread wrapper.
//!
//! [`KThread::spawn`] creates a kthread (`kthread_create_on_node()`),
//! optionally binds it to a CPU, sets its policy with
//! `sched_setattr_nocheck()` and wakes it. The thread runs a Rust closure
//! that receives a [`StopToken`]: the proof that it runs in a kthread
//! made here, which is what `kthread_should_stop()` and the sleeps below
//! need. Dropping the [`KThread`] stops the thread (`kthread_stop()`),
//! then drops the task reference and the closure slot.

use crate::config::{Place, Policy};
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use kernel::{bindings, prelude::*, str::CString, sync::aref::ARef, task::Task};

extern "C" {
    fn ept_show_task(task: *mut c_void);
}

/// `SCHED_OTHER`, `SCHED_FIFO` from `include/uapi/linux/sched.h`.
const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;
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

/// Held only by the body of a kthread created by [`KThread::spawn`]: a
/// function that needs to run in such a thread takes `&StopToken`.
pub(crate) struct StopToken {
    _private: (),
}

impl StopToken {
    /// True once `kthread_stop()` was called on this thread.
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: A `StopToken` exists only inside a kthread body (see
        // `trampoline`), where `kthread_should_stop()` is valid.
        unsafe { bindings::kthread_should_stop() }
    }

    /// Sleeps `ns` nanoseconds in chunks of at most 50 ms, returning early
    /// when the thread is asked to stop.
    ///
    /// It uses `usleep_range_state()`, an hrtimer sleep that is hard for
    /// RT tasks on PREEMPT_RT. Never `fsleep()` for long sleeps: from 4 ms
    /// up it uses `msleep()`, a timer-wheel timer that expires in
    /// `ktimers/N` (FIFO 1), which the stall scenario blocks and any FIFO
    /// producer starves; a hog or watchdog sleeping that way would never
    /// wake on time.
    pub(crate) fn sleep_ns(&self, ns: i64) {
        let mut left = ns;
        while left > 0 && !self.should_stop() {
            let chunk = left.min(50_000_000);
            let us = (chunk / 1000).max(1) as usize;
            // SAFETY: Sleeping is allowed in a kthread body; `TASK_IDLE`
            // is a valid sleep state.
            unsafe { bindings::usleep_range_state(us, us + us / 16, bindings::TASK_IDLE) };
            left -= chunk;
        }
    }
}

/// Owned handle to a running kthread; dropping it stops the thread.
pub(crate) struct KThread {
    task: ARef<Task>,
    data: *mut c_void,
    free_data: unsafe fn(*mut c_void),
}

// SAFETY: The handle holds a counted task reference (usable from any
// thread) and the boxed closure, which is `Send`.
unsafe impl Send for KThread {}
// SAFETY: `&self` methods only read the task reference.
unsafe impl Sync for KThread {}

/// The closure slot: the thread takes the closure out when it starts; the
/// owner frees the slot after `kthread_stop()`.
type Slot<F> = Option<F>;

/// Thread function of every [`KThread`]: runs the closure in the slot.
///
/// # Safety
///
/// `data` must point to a live `Slot<F>` that nothing else accesses while
/// the thread runs.
unsafe extern "C" fn trampoline<F: FnOnce(&StopToken) + Send + 'static>(
    data: *mut c_void,
) -> c_int {
    // SAFETY: `data` is the `KBox<Slot<F>>` leaked by `KThread::spawn`; it
    // is freed only after `kthread_stop()` returned, i.e. after this
    // function. Nothing else touches the slot while the thread runs.
    let slot = unsafe { &mut *data.cast::<Slot<F>>() };
    if let Some(f) = slot.take() {
        f(&StopToken { _private: () });
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
    // SAFETY: Per the function's safety requirements.
    drop(unsafe { KBox::from_raw(data.cast::<Slot<F>>()) });
}

impl KThread {
    /// Creates, places and wakes a kthread named `name` that runs `f`.
    pub(crate) fn spawn<F>(name: core::fmt::Arguments<'_>, place: Place, f: F) -> Result<Self>
    where
        F: FnOnce(&StopToken) + Send + 'static,
    {
        let name = CString::try_from_fmt(name)?;
        let data = KBox::into_raw(KBox::new(Some(f), GFP_KERNEL)?).cast::<c_void>();
        // SAFETY: `trampoline::<F>` matches the `threadfn` signature and
        // `data` points to a `Slot<F>`; the format is "%s" with a valid
        // NUL-terminated argument.
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
            Ok(t) => NonNull::new(t).ok_or(ENOMEM),
            Err(e) => Err(e),
        };
        let task = match task {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: The thread was not created, so `data` is ours.
                unsafe { free_slot::<F>(data) };
                return Err(e);
            }
        };
        // SAFETY: `task` is a freshly created kthread; `get_task_struct()`
        // takes the reference that the `ARef` owns from here on, so the
        // task stays valid even if the thread exits first.
        let task = unsafe {
            bindings::get_task_struct(task.as_ptr());
            ARef::from_raw(task.cast::<Task>())
        };
        let this = Self {
            task,
            data,
            free_data: free_slot::<F>,
        };
        if let Some(cpu) = place.cpu {
            // SAFETY: The task was just created and has not run yet, as
            // `kthread_bind()` requires; `cpu` is a valid online CPU id.
            unsafe { bindings::kthread_bind(this.task.as_ptr(), cpu.as_u32()) };
        }
        let mut attr = SchedAttr {
            size: core::mem::size_of::<SchedAttr>() as u32,
            ..Default::default()
        };
        match place.policy {
            Policy::Other => attr.sched_policy = SCHED_OTHER,
            Policy::Fifo(p) => {
                attr.sched_policy = SCHED_FIFO;
                attr.sched_priority = p;
            }
        }
        // SAFETY: The task is valid (we hold a reference) and `attr` is a
        // correctly sized `struct sched_attr`.
        let ret = unsafe {
            bindings::sched_setattr_nocheck(
                this.task.as_ptr(),
                (&raw const attr).cast::<bindings::sched_attr>(),
            )
        };
        if ret != 0 {
            // `this` is dropped here: the thread is stopped before it ran
            // its closure (kthread_stop() of a never-woken kthread).
            return Err(Error::from_errno(ret));
        }
        this.task.wake_up();
        Ok(this)
    }

    /// Prints the thread's state and stack (`sched_show_task()`).
    pub(crate) fn show(&self) {
        // SAFETY: We hold a reference on the task, so it is valid.
        unsafe { ept_show_task(self.task.as_ptr().cast()) };
    }
}

impl Drop for KThread {
    fn drop(&mut self) {
        // SAFETY: We hold a reference on the task, so it is valid until the
        // `ARef` is dropped after this; `kthread_stop()` waits for the
        // thread to exit.
        unsafe { bindings::kthread_stop(self.task.as_ptr()) };
        // SAFETY: The thread has exited, so nobody else uses the slot; it
        // was created by `spawn` with the matching `free_data`.
        unsafe { (self.free_data)(self.data) };
    }
}
