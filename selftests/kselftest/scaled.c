// SPDX-License-Identifier: GPL-2.0
/*
 * Build a kernel epoll selftest with its 100,000-iteration loops scaled.
 *
 * Under TCG, epoll65 (64 threads x 100,000 non-blocking epoll_wait() calls
 * on one ready eventfd) cannot finish on any variant, so the stock test only
 * ever reports the harness's 30 s timeout. qemu/build-guest.sh copies the
 * test's .c file with every loop bound "< 100000;" replaced by
 * "< ept_iters(100000);" (EPT_SCALED_SOURCE). Each test runs in its own
 * process (epoll-selftests.sh: `-t NAME`), so EPT_SELFTEST_ITERS scales the
 * one test being run; unset, the binary is the stock test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* before any libc header, as the test itself wants */
#endif
#include <stdlib.h>

static inline int ept_iters(int stock)
{
	const char *s = getenv("EPT_SELFTEST_ITERS");
	int n = s ? atoi(s) : 0;

	return n > 0 ? n : stock;
}

#include EPT_SCALED_SOURCE
