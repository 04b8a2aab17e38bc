/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of the C helpers called from the Rust side (the .rs files). */
#ifndef EPT_HELPERS_H
#define EPT_HELPERS_H
#include <linux/types.h>
struct file;
struct task_struct;
const char *ept_param_scenario(void);
const char *ept_param_evfds(void);
unsigned int ept_vfs_poll(struct file *file);
bool ept_cpu_online(unsigned int cpu);
bool ept_file_is_epoll(struct file *file);
void ept_show_task(struct task_struct *task);
void ept_rcu_probe(void);
int ept_rcu_probe_state(void);
void ept_rcu_probe_flush(void);
bool ept_trace_available(void);
int ept_trace_prepare(void);
bool ept_trace_snapshot(void);
void ept_trace_off(void);
#endif
