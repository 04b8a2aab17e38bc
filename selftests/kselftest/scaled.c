// SPDX-License-Identifier: GPL-2.0
/*
 * Build a kernel epoll selftest with its counted loops scaled down.
 *
 * Under TCG, epoll65 (64 threads x 100,000 non-blocking epoll_wait() calls
 * on one ready eventfd) cannot finish on any variant, so the stock test only
 * ever reports the harness's 30 s timeout (so do epoll59-61 on riscv64).
 * qemu/build-guest.sh copies the test's .c file with the literal bound N
 * (N >= 100) of every `for (...; i < N; ...)` loop replaced by
 * ept_iters(N) (EPT_SCALED_SOURCE). Each test runs in its own process
 * (epoll-selftests.sh: `-t NAME`), so EPT_SELFTEST_DIV divides the loops of
 * the one test being run (at least 1 iteration); unset, the binary is the
 * stock test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* before any libc header, as the test itself wants */
#endif
#include <stdlib.h>

static inline int ept_iters(int stock)
{
	const char *s = getenv("EPT_SELFTEST_DIV");
	int div = s ? atoi(s) : 0;

	if (div <= 1)
		return stock;
	return stock / div > 0 ? stock / div : 1;
}

#include EPT_SCALED_SOURCE
