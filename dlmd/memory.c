/*
 * Giving memory back after a load.
 *
 * glibc's malloc hands freed memory back to the system only from the top of
 * the heap. When ten thousand connections come and go, the heap is left as
 * mostly free pages behind a few chunks still in use, and they stay
 * resident for as long as dlmd runs. So, shortly after connections or
 * sessions end, dlmd looks at how much of its heap is free and, when that
 * is much more than it uses, asks malloc_trim to release the free pages.
 *
 * Nothing runs while dlmd is idle: only an ending arms the check, and one
 * check covers every ending within its delay.
 */
#include "config.h"

#include <malloc.h>

#include "dlmd.h"

#define TRIM_DELAY_MS	1000
/* Free heap worth giving back: at least this, and a quarter of the used. */
#define TRIM_MIN_FREE	(1024 * 1024)

static struct event *trim_ev;

static void
memory_trim_cb(evutil_socket_t fd, short what, void *arg)
{
#if defined(HAVE_MALLINFO2) && defined(HAVE_MALLOC_TRIM)
	struct mallinfo2 before = mallinfo2(), after;

	if (before.fordblks < TRIM_MIN_FREE ||
	    before.fordblks < before.uordblks / 4)
		return;
	malloc_trim(0);
	after = mallinfo2();
	log_debug("gave back free memory: heap %zu KiB in use, %zu KiB free "
	    "(%zu KiB before)", after.uordblks / 1024, after.fordblks / 1024,
	    before.fordblks / 1024);
#endif
}

void
memory_init(struct event_base *base)
{
	if ((trim_ev = evtimer_new(base, memory_trim_cb, NULL)) == NULL)
		fatalx("%s: evtimer_new failed", __func__);
}

/* Something that held memory has gone: check the heap soon. */
void
memory_released(void)
{
	if (trim_ev != NULL && !evtimer_pending(trim_ev, NULL))
		evtimer_add(trim_ev, timer_tv(TRIM_DELAY_MS));
}

void
memory_free(void)
{
	if (trim_ev != NULL)
		event_free(trim_ev);
	trim_ev = NULL;
}
