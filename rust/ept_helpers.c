// SPDX-License-Identifier: GPL-2.0
/*
 * C side of epoll_torture: things an external Rust module cannot reach
 * directly because they are inline C (vfs_poll(), cpu_online()), layout
 * facts only the C compiler knows (offsetof() in task_struct, used to catch
 * bindgen layout bugs), and the two string parameters (Rust's module!
 * supports integer and bool parameters only). Everything else is in Rust.
 */
#include <linux/cpumask.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/atomic.h>
#include <linux/sched.h>
#include <linux/sched/debug.h>
#include <linux/stddef.h>
#include <linux/string.h>

#include "ept_helpers.h"

static char *scenario = "inversion";
module_param(scenario, charp, 0);
MODULE_PARM_DESC(scenario, "inversion|stall|throughput|soak (default inversion)");

static char *evfds = "";
module_param(evfds, charp, 0);
MODULE_PARM_DESC(evfds, "eventfds open in the insmod process, watched by epfd: \"a,b,c\" or \"a-b\"");

const char *ept_param_scenario(void)
{
	return scenario ? scenario : "";
}

const char *ept_param_evfds(void)
{
	return evfds ? evfds : "";
}

/* vfs_poll() with no poll table: on an epoll file this is
 * ep_eventpoll_poll() -> __ep_eventpoll_poll() -> ep_start_scan() /
 * ep_done_scan(), i.e. the ready-list lock taken on the write side. */
unsigned int ept_vfs_poll(struct file *file)
{
	return (__force unsigned int)vfs_poll(file, NULL);
}

int ept_cpu_online(int cpu)
{
	return cpu >= 0 && cpu < nr_cpu_ids && cpu_online(cpu);
}

unsigned int ept_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/* is_file_epoll() is not exported; an epoll file is an anon inode file
 * named "[eventpoll]". */
int ept_file_is_epoll(struct file *file)
{
	return strcmp(file->f_path.dentry->d_name.name, "[eventpoll]") == 0;
}

/* The C side of the offset check, as data: qemu/build-module.sh reads it
 * and EPT_RUST_TASK_OFFSETS back from the built .ko and compares them. */
const u64 ept_c_task_offsets[2] __used = {
	offsetof(struct task_struct, pid),
	offsetof(struct task_struct, policy),
};

size_t ept_task_offset_pid(void)
{
	return offsetof(struct task_struct, pid);
}

size_t ept_task_offset_policy(void)
{
	return offsetof(struct task_struct, policy);
}

/* sched_show_task() is exported but not in the Rust bindings. */
void ept_show_task(struct task_struct *task)
{
	sched_show_task(task);
}

/*
 * RCU probe: one call_rcu() queued by the watchdog when it declares a hang,
 * so that a grace period is in flight while the producer sits preempted in
 * its RCU read-side section (RT rwlock): the RCU stall detector then
 * reports it. ept_rcu_probe_state() returns 0 idle, 1 pending, 2 done.
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
}
