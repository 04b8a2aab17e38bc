#!/bin/sh
# Sourced by the scenario scripts: move the console machinery (printk
# threads pr/*, the serial IRQ and its thread) and the hung-task detector
# (khungtaskd) to CPU ${EPT_HK_CPU:-1}, away from the hog's CPU, where
# they would starve (a timer-wheel sleeper there never wakes).
HK=${EPT_HK_CPU:-1}
mask=$((1 << HK))
for f in /proc/irq/*/smp_affinity; do echo $mask >"$f" 2>/dev/null; done
for p in /proc/[0-9]*; do
	c=$(cat "$p/comm" 2>/dev/null) || continue
	case "$c" in
	pr/*|irq/*-ttyS*|irq_work/*|khungtaskd) taskset -p $mask "${p#/proc/}" >/dev/null 2>&1 ;;
	esac
done
for p in /proc/[0-9]*; do
	c=$(cat "$p/comm" 2>/dev/null) || continue
	case "$c" in pr/*|irq/*-ttyS*|khungtaskd) echo "EPT: housekeeping $c -> $(taskset -p "${p#/proc/}" 2>&1 | sed 's/.*: //')" ;; esac
done
