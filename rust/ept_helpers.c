// SPDX-License-Identifier: GPL-2.0
/*
 * C side of epoll_torture: only what has no Rust binding in the 7.x kernel
 * crate. Each item says why it is here.
 */
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/debug.h>
#include <linux/string.h>

#include "ept_helpers.h"

/* String parameters: Rust's module! has integer and bool parameters only.
 * The rest of the parameter table is rust/params.rs. */
static char *scenario = "inversion";
module_param(scenario, charp, 0);
MODULE_PARM_DESC(scenario, "inversion, stall, soak or throughput");

static char *evfds = "";
module_param(evfds, charp, 0);
MODULE_PARM_DESC(evfds, "O_NONBLOCK eventfds in the insmod process watched by epfd: \"a,b,c\" or \"a-b\", 1..1024 (required)");

const char *ept_param_scenario(void)
{
	return scenario ? scenario : "";
}

const char *ept_param_evfds(void)
{
	return evfds ? evfds : "";
}

/* vfs_poll() is an inline function. With no poll table, on an epoll file
 * it is ep_eventpoll_poll() -> __ep_eventpoll_poll() -> the ready-list
 * scan, i.e. the ready-list lock taken on the write side. */
unsigned int ept_vfs_poll(struct file *file)
{
	return (__force unsigned int)vfs_poll(file, NULL);
}

/* cpu_online() is an inline function (the kernel crate has CpuId and
 * nr_cpu_ids() but no online test). */
bool ept_cpu_online(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

/* is_file_epoll() is not exported; an epoll file is an anon inode file
 * named "[eventpoll]". */
bool ept_file_is_epoll(struct file *file)
{
	return strcmp(file->f_path.dentry->d_name.name, "[eventpoll]") == 0;
}

/* sched_show_task() is exported but not in the Rust bindings. */
void ept_show_task(struct task_struct *task)
{
	sched_show_task(task);
}

/*
 * RCU probe (no Rust binding for call_rcu()): one call_rcu() queued by the
 * watchdog when it declares a hang, so that a grace period is in flight
 * while a reader sits preempted in its RCU read-side section (an RT rwlock
 * holder): the RCU stall detector then reports it.
 * ept_rcu_probe_state() returns 0 idle, 1 pending, 2 done.
 */
static struct rcu_head ept_rcu_head;
static atomic_t ept_rcu_state = ATOMIC_INIT(0);

static void ept_rcu_cb(struct rcu_head *head)
{
	atomic_set(&ept_rcu_state, 2);
}

void ept_rcu_probe(void)
{
	if (atomic_cmpxchg(&ept_rcu_state, 0, 1) == 0)
		call_rcu(&ept_rcu_head, ept_rcu_cb);
}

int ept_rcu_probe_state(void)
{
	return atomic_read(&ept_rcu_state);
}

/* Called at module exit: the callback must not outlive the module. */
void ept_rcu_probe_flush(void)
{
	if (atomic_read(&ept_rcu_state) != 0)
		rcu_barrier();
	atomic_set(&ept_rcu_state, 0);
}

/*
 * Trace freezing (rust/trace.rs). The tracing API exists only with the
 * tracing configs, so the module must build and load without them: the
 * #ifdefs here are the reason this is C.
 */
bool ept_trace_available(void)
{
	return IS_ENABLED(CONFIG_TRACER_SNAPSHOT);
}

/*
 * Set by a declared hang: the frozen live buffer is the evidence, so no
 * later worst call (the blocked consumer's, once rmmod breaks the cycle)
 * may swap it into the snapshot.
 */
static bool ept_trace_frozen;

int ept_trace_prepare(void)
{
	WRITE_ONCE(ept_trace_frozen, false);
#ifdef CONFIG_TRACER_SNAPSHOT
	tracing_snapshot_alloc();
	return 0;
#else
	return -EINVAL;
#endif
}

bool ept_trace_snapshot(void)
{
	if (READ_ONCE(ept_trace_frozen))
		return false;
#ifdef CONFIG_TRACER_SNAPSHOT
	tracing_snapshot();
	return true;
#else
	return false;
#endif
}

void ept_trace_off(void)
{
	WRITE_ONCE(ept_trace_frozen, true);
#ifdef CONFIG_TRACING
	tracing_off();
#endif
}
