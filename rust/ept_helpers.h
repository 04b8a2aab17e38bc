/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of the C helpers called from rust/epoll_torture.rs. */
#ifndef EPT_HELPERS_H
#define EPT_HELPERS_H
#include <linux/types.h>
struct file;
struct task_struct;
const char *ept_param_scenario(void);
const char *ept_param_evfds(void);
unsigned int ept_vfs_poll(struct file *file);
int ept_cpu_online(int cpu);
unsigned int ept_nr_cpu_ids(void);
int ept_file_is_epoll(struct file *file);
size_t ept_task_offset_pid(void);
size_t ept_task_offset_policy(void);
void ept_show_task(struct task_struct *task);
void ept_rcu_probe(void);
int ept_rcu_probe_state(void);
void ept_rcu_probe_flush(void);
#endif
