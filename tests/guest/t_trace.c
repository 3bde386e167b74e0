// SPDX-License-Identifier: MIT
/*
 * uhp's tracepoints (kmod/trace.h), read back from tracefs as perf trace or
 * trace-cmd would see them: create, attach, notify, wake, unlink of a
 * channel; a SEND refused over a corrupt read_pos; a kernel producer's
 * records dropped on a full ring. Skips (saying why) on a kernel without
 * tracefs; every lane of the matrix has one. And the harness's own guard:
 * flipping uhp's events while both CPUs wake tasks must not kill the
 * guest (see trace_options=norecord-cmd in scripts/uhp-vm).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/uhp.h>
#include <uhp.h>

#include "harness.h"
#include "ioctl_calls.h"
#include "ticker.h"

static const char *tdir;

/* tracefs, mounted if need be; SKIP without one. */
static void need_tracefs(void)
{
	static const char *const dirs[] = { "/sys/kernel/tracing",
					    "/sys/kernel/debug/tracing" };
	struct stat st;

	for (int i = 0; i < 2; i++)
		if (!stat(dirs[i], &st) && !access(dirs[i], F_OK)) {
			char p[128];

			snprintf(p, sizeof(p), "%s/events", dirs[i]);
			if (stat(p, &st) && i == 0)
				mount("nodev", dirs[0], "tracefs", 0, NULL);
			if (!stat(p, &st)) {
				tdir = dirs[i];
				break;
			}
		}
	if (!tdir)
		SKIP("no tracefs in this kernel (CONFIG_TRACING off?)");
	{
		char p[160];

		snprintf(p, sizeof(p), "%s/events/uhp", tdir);
		if (stat(p, &st))
			SKIP("%s missing: uhp.ko built without tracepoints?", p);
	}
}

static int tfile_write(const char *name, const char *v)
{
	char p[160];
	int fd, ok;

	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	fd = open(p, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -errno;
	ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
	close(fd);
	return ok ? 0 : -EIO;
}

/* A tracefs file's text (static buffer: one at a time). */
static const char *tfile_text(const char *name)
{
	static char buf[1 << 20];
	char p[160];
	size_t n = 0;
	ssize_t r;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return "";
	while (n + 1 < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = 0;
	return buf;
}

static void trace_on(void)
{
	need_tracefs();
	ASSERT_EQ(tfile_write("trace", ""), 0);		/* clear */
	ASSERT_EQ(tfile_write("events/uhp/enable", "1"), 0);
}

static void trace_off(void)
{
	tfile_write("events/uhp/enable", "0");
}

TEST(channel_lifecycle_events)
{
	struct uhp_channel *ch, *prod;
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	int dev = uhp_open();
	const char *t;

	ASSERT_GE(dev, 0);
	trace_on();
	o.consumer = true;
	ASSERT_EQ(uhp_create(dev, "tr.chan", &o, &ch), 0);
	ASSERT_EQ(uhp_attach(dev, "tr.chan", 0, &prod), 0);
	ASSERT_EQ(uhp_notify(prod), 0);
	ASSERT_EQ(uhp_unlink(dev, "tr.chan"), 0);
	trace_off();
	t = tfile_text("trace");
	EXPECT_TRUE(strstr(t, "uhp_create: name=tr.chan uid=0 rings=") != NULL);
	EXPECT_TRUE(strstr(t, "uhp_attach: name=tr.chan consumer=0 rdonly=0") != NULL);
	EXPECT_TRUE(strstr(t, "uhp_notify: name=tr.chan") != NULL);
	EXPECT_TRUE(strstr(t, "uhp_wake: name=tr.chan") != NULL);
	EXPECT_TRUE(strstr(t, "uhp_unlink: name=tr.chan") != NULL);
	if (!strstr(t, "uhp_create: name=tr.chan"))
		TH_LOG("trace: %.400s", t);
	uhp_close(prod);
	uhp_close(ch);
}

TEST(send_over_a_corrupt_read_pos_is_traced)
{
	struct uhp_create c = { .size = sizeof(c), .mode = 0600, .ring_size = 1 << 16,
				.flags = UHP_CREATE_CONSUMER | UHP_CREATE_NODE };
	char payload[8] = "corrupt";
	struct uhp_send s = { .size = sizeof(s), .len = sizeof(payload),
			      .buf = (uintptr_t)payload };
	struct uhp_cons_line *cons;
	int dev = dev_open_or_exit(), fd;
	void *page;

	trace_on();
	snprintf(c.name, sizeof(c.name), "tr.corrupt");
	fd = (int)xioctl(dev, UHP_IOC_CREATE, &c);
	ASSERT_GE(fd, 0);
	page = mmap(NULL, UHP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)UHP_MMAP_OFF(0, UHP_PART_CONS));
	ASSERT_TRUE(page != MAP_FAILED);
	cons = (struct uhp_cons_line *)((char *)page + UHP_CONS_LINE_OFF);
	cons->read_pos = 12345;			/* misaligned, past write_pos */
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EUCLEAN);
	trace_off();
	EXPECT_TRUE(strstr(tfile_text("trace"),
			   "uhp_corrupt: name=tr.corrupt ring=0 read_pos=12345 write_pos=0") != NULL);
	munmap(page, UHP_PAGE_SIZE);
	unlink_name(dev, "tr.corrupt");
	close(fd);
	close(dev);
}

TEST(kernel_records_dropped_on_a_full_ring_are_traced)
{
	struct uhp_channel *ch;
	int dev = uhp_open();
	long dropped;
	const char *t;

	need_ticker();
	ASSERT_GE(dev, 0);
	ch = ticker_channel(dev, "tr.k", 1 << 14);	/* 16 KiB: ~128 records */
	ASSERT_TRUE(ch != NULL);
	trace_on();
	ASSERT_EQ(ticker_load("channel=tr.k size=64"), 0);
	ASSERT_EQ(param_write("flood", 1000), 0);
	for (int i = 0; i < 200 && param_read("sent") + param_read("dropped") < 1000; i++)
		usleep(10000);
	dropped = param_read("dropped");
	trace_off();
	ticker_unload();
	t = tfile_text("trace");
	EXPECT_GT(dropped, 0);
	EXPECT_TRUE(strstr(t, "uhp_kernel_drop: name=tr.k ring=") != NULL);
	EXPECT_TRUE(strstr(t, "len=64 err=-28") != NULL);	/* -ENOSPC */
	uhp_unlink(dev, "tr.k");
	uhp_close(ch);
}

/*
 * With the trace option record-cmd on (the kernel's default), enabling an
 * event also hooks sched_switch/sched_wakeup, which patches the text of
 * try_to_wake_up(); under TCG the other vCPU can execute the transient int3
 * after the patch is done and the guest dies ("Oops: int3" in
 * ttwu_do_activate): 300 flips with wake-ups on both CPUs killed 6.12 and
 * 6.12-rt at once. The guest boots with record-cmd off; this checks it is,
 * then flips uhp's events under the same load.
 */
TEST_TIMEOUT(event_flips_while_both_cpus_wake, 120)
{
	pid_t kids[2];

	need_tracefs();
	ASSERT_TRUE(!strcmp(tfile_text("options/record-cmd"), "0\n"));
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		ASSERT_TRUE(kids[i] >= 0);
		if (kids[i] == 0) {
			struct timespec ts = { 0, 100000 };

			for (;;)
				nanosleep(&ts, NULL);
		}
	}
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(tfile_write("events/uhp/enable", "1"), 0);
		ASSERT_EQ(tfile_write("events/uhp/enable", "0"), 0);
	}
	for (int i = 0; i < 2; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
}

TEST_HARNESS_MAIN
