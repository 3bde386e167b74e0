/* SPDX-License-Identifier: MIT */
/*
 * uhp_uring.h - waiting on and ringing uhp channels with io_uring.
 *
 * Header only: include it (after <liburing.h>) and link liburing yourself;
 * libuhp itself does not depend on liburing.
 *
 * One agent, many channels, one ring:
 *
 *	for each channel ch[i]:
 *		uhp_uring_prep_wait(io_uring_get_sqe(&ring), ch[i], i);
 *	io_uring_submit(&ring);
 *	for (;;) {
 *		int ready = 0;
 *		for each channel: ready |= uhp_prepare_sleep(ch[i]) == 1;
 *		if (!ready)
 *			io_uring_wait_cqe(&ring, &cqe);	// multishot: stays armed
 *		for each channel: uhp_end_sleep(ch[i]);
 *		... reap CQEs (user_data = i), drain those channels ...
 *	}
 *
 * A producer that fills many channels without per-record wakeups can ring
 * all of their doorbells with one io_uring_enter():
 *
 *	for each channel: uhp_uring_prep_notify(io_uring_get_sqe(&ring), ch[i], i);
 *	io_uring_submit(&ring);
 */
#ifndef UHP_URING_H
#define UHP_URING_H

/* liburing.h first: it sets the feature macros that expose sigset_t
 * (<poll.h> first would fix them, and -std=c99 would lose it). */
#include <liburing.h>

#include <poll.h>
#include <string.h>

#include "uhp.h"

/* A multishot POLLIN on the channel fd: one CQE per wakeup, stays armed. */
static inline void uhp_uring_prep_wait(struct io_uring_sqe *sqe,
				       struct uhp_channel *ch, __u64 user_data)
{
	io_uring_prep_poll_multishot(sqe, uhp_channel_fd(ch), POLLIN);
	io_uring_sqe_set_data64(sqe, user_data);
}

/* UHP_URING_CMD_NOTIFY on the channel fd: its CQE's res is 0 or -errno. */
static inline void uhp_uring_prep_notify(struct io_uring_sqe *sqe,
					 struct uhp_channel *ch, __u64 user_data)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, uhp_channel_fd(ch), NULL, 0, 0);
	sqe->cmd_op = UHP_URING_CMD_NOTIFY;
	/* The command area (struct uhp_uring_cmd) must be all zero. */
	memset(&sqe->addr3, 0, sizeof(struct uhp_uring_cmd));
	io_uring_sqe_set_data64(sqe, user_data);
}

#endif /* UHP_URING_H */
