// SPDX-License-Identifier: GPL-2.0
/*
 * Build the kernel's epoll selftest with a longer per-test harness timeout.
 *
 * Under TCG some tests (epoll65: 64 threads x 100,000 epoll_wait() calls)
 * outlive the harness's 30 s default on every variant. The stock binary's
 * outcome is reported as is; this copy only reruns the tests that timed out,
 * to measure how long they really take and whether they pass.
 * EPT_TEST_SOURCE is the test's .c file in the kernel tree under test.
 */
#include "kselftest_harness.h"
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT EPT_LONG_TIMEOUT
#include EPT_TEST_SOURCE
