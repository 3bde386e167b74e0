/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: state_dir/stats.json, the counters of every export and
 * route (written every stats_ms, on SIGUSR1 and at the stop).
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "bridge.h"

/* Slow-consumer drops of an export's subscriptions, while they are
 * there: the final stats.json is written after they went. */
void write_stats_drops(struct export *e)
{
	natsSubscription *early = atomic_load(&e->early_sub);
	int64_t d;

	if (e->sub && natsSubscription_GetDropped(e->sub, &d) == NATS_OK)
		e->sub_dropped = d;
	if (early && natsSubscription_GetDropped(early, &d) == NATS_OK)
		e->early_dropped = d;
}

void write_stats(bool final)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stats.json", C.state_dir);
	snprintf(tmp, sizeof(tmp), "%s/.stats.json.tmp", C.state_dir);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "{\"host\":\"%s\",\"pid\":%d,\"final\":%s,\"exports\":[", C.host,
		(int)getpid(), final ? "true" : "false");
	for (int i = 0; i < C.nexports; i++) {
		struct export *e = C.exports[i];

		if (!final)
			write_stats_drops(e);
		fprintf(f, "%s{\"channel\":\"%s\",\"mode\":\"%s\",\"subject\":\"%s\","
			"\"received\":%" PRIu64 ",\"committed\":%" PRIu64 ",\"crc_refused\":%" PRIu64
			",\"malformed\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"gaps\":%" PRIu64
			",\"late\":%" PRIu64 ",\"naks\":%" PRIu64 ",\"full_waits\":%" PRIu64
			",\"unsequenced\":%" PRIu64 ",\"too_big\":%" PRIu64
			",\"gap_timeouts\":%" PRIu64 ",\"probe_committed\":%" PRIu64
			",\"probe_uncommitted\":%" PRIu64 ",\"probe_unknown\":%" PRIu64
			",\"evictions\":%" PRIu64 ",\"pulls\":%" PRIu64 ",\"held\":%" PRIu64
			",\"unheld\":%" PRIu64 ",\"held_now\":%" PRId64 ",\"stepdowns\":%" PRIu64
			",\"credit_replies\":%" PRIu64 ",\"in_progress\":%" PRIu64
			",\"early\":%" PRIu64 ",\"early_confirmed\":%" PRIu64
			",\"early_skipped\":%" PRIu64 ",\"early_expired\":%" PRIu64
			",\"early_dropped\":%" PRId64
			",\"slow_consumer_drops\":%" PRId64 "}",
			i ? "," : "", e->chan, mode_name(e->mode), e->subject,
			CNT_GET(e->received), CNT_GET(e->committed), CNT_GET(e->crc_refused),
			CNT_GET(e->malformed), CNT_GET(e->dups), CNT_GET(e->gaps),
			CNT_GET(e->late), CNT_GET(e->naks), CNT_GET(e->full_waits),
			CNT_GET(e->unsequenced), CNT_GET(e->too_big), CNT_GET(e->gap_timeouts),
			CNT_GET(e->probe_committed), CNT_GET(e->probe_uncommitted),
			CNT_GET(e->probe_unknown), CNT_GET(e->evictions), CNT_GET(e->pulls),
			CNT_GET(e->held), CNT_GET(e->unheld), (int64_t)atomic_load(&e->held_now),
			CNT_GET(e->stepdowns), CNT_GET(e->credit_replies),
			CNT_GET(e->in_progress), CNT_GET(e->early),
			CNT_GET(e->early_confirmed), CNT_GET(e->early_skipped),
			CNT_GET(e->early_expired), e->early_dropped, e->sub_dropped);
	}
	fprintf(f, "],\"routes\":[");
	for (int i = 0; i < C.nroutes; i++) {
		struct route *r = C.routes[i];
		uint64_t inflight = atomic_load_explicit(&r->inflight_now, memory_order_relaxed);

		fprintf(f, "%s{\"outbox\":\"%s\",\"dest\":\"%s/%s\",\"mode\":\"%s\",\"subject\":\"%s\","
			"\"instance\":\"%016" PRIx64 "\",\"forwarded\":%" PRIu64 ",\"published\":%" PRIu64
			",\"acked\":%" PRIu64 ",\"dup_acks\":%" PRIu64 ",\"retransmits\":%" PRIu64
			",\"pub_errors\":%" PRIu64 ",\"pub_failed\":%" PRIu64 ",\"too_big\":%" PRIu64
			",\"corrupted_by_hook\":%" PRIu64 ",\"recovered\":%" PRIu64 ",\"inflight\":%" PRIu64
			",\"credit_waits\":%" PRIu64 ",\"credit_mark\":%" PRIu64
			",\"dropped_by_hook\":%" PRIu64 "}",
			i ? "," : "", r->outbox, r->dst_host, r->dst_chan, mode_name(r->mode),
			r->subject, r->instance, CNT_GET(r->forwarded), CNT_GET(r->published),
			CNT_GET(r->acked), CNT_GET(r->dup_acks), CNT_GET(r->retransmits),
			CNT_GET(r->pub_errors), CNT_GET(r->pub_failed), CNT_GET(r->too_big),
			CNT_GET(r->corrupted_by_hook), CNT_GET(r->recovered), inflight,
			CNT_GET(r->credit_waits), (uint64_t)atomic_load(&r->credit_mark),
			CNT_GET(r->dropped_by_hook));
	}
	fprintf(f, "]}\n");
	fclose(f);
	rename(tmp, path);
}
