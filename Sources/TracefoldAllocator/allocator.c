// The collector's allocator settings, read by jemalloc when the process
// starts (its `malloc_conf` global; MALLOC_CONF in the environment still
// overrides them). Linked into the `tracefold` executable only.
//
// - narenas:2 — one arena per core on the 2-core machines we size for; the
//   default of four per core kept more partly used memory.
// - dirty_decay_ms:5000, muzzy_decay_ms:0 — freed pages go back to the
//   kernel within about five seconds. Each batch allocates and frees arrays
//   of hundreds of kilobytes; with one second, jemalloc purged those pages
//   and the next batch faulted them in again (page faults and madvise were
//   2.5% of the CPU, spans per CPU-second 4-6% lower than with 5 or 10 s,
//   RSS at 10k spans/s 4 MiB lower). memory_limiter purges every arena
//   when the resident set is above its soft limit
//   (`MemoryLimiter.releaseFreedMemory`), so a burst's freed memory does
//   not keep it refusing requests while the pages wait out the decay (as
//   it did with jemalloc's default of ten seconds, when the limiter's
//   `malloc_trim` reached only glibc's arenas).
// - background_thread:true — that purging runs on jemalloc's own thread,
//   not inside the malloc and free calls of the pipeline.
#include "TracefoldAllocator.h"

#include <dlfcn.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>

const char *malloc_conf = "narenas:2,dirty_decay_ms:5000,muzzy_decay_ms:0,background_thread:true";

const char *tracefold_allocator_settings(void) {
    typedef int (*mallctl_t)(const char *, void *, size_t *, void *, size_t);
    mallctl_t mallctl = (mallctl_t)dlsym(RTLD_DEFAULT, "mallctl");
    if (mallctl == NULL) return NULL;
    unsigned narenas = 0;
    ssize_t dirty = 0, muzzy = 0;
    _Bool background = 0;
    size_t size = sizeof(narenas);
    if (mallctl("opt.narenas", &narenas, &size, NULL, 0) != 0) return NULL;
    size = sizeof(dirty);
    mallctl("opt.dirty_decay_ms", &dirty, &size, NULL, 0);
    size = sizeof(muzzy);
    mallctl("opt.muzzy_decay_ms", &muzzy, &size, NULL, 0);
    size = sizeof(background);
    mallctl("opt.background_thread", &background, &size, NULL, 0);
    static char text[128];
    snprintf(text, sizeof(text), "jemalloc narenas:%u,dirty_decay_ms:%zd,muzzy_decay_ms:%zd,background_thread:%s",
             narenas, dirty, muzzy, background ? "true" : "false");
    return text;
}

// SQLite's own allocation accounting, off. By default (SQLITE_DEFAULT_MEMSTATUS
// in Debian's build) every sqlite3_malloc and sqlite3_free takes a global
// mutex to keep sqlite3_memory_used() and the soft heap limit, neither of
// which the collector reads or sets. Off, the fold, the store and the
// export took about 2% less CPU a span (tracefold-loadgen --pipeline-bench,
// 5 of 6 pairs). sqlite3_config must come before SQLite initializes, so it
// runs when the process loads, before any connection opens; had anything
// initialized SQLite first, it does nothing and says so.
static int sqlite_memstatus_result = -1;

__attribute__((constructor)) static void configure_sqlite(void) {
    sqlite_memstatus_result = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

const char *tracefold_sqlite_settings(void) {
    if (sqlite_memstatus_result == SQLITE_OK) return "memstatus:off";
    static char text[64];
    snprintf(text, sizeof(text), "memstatus:on (sqlite3_config returned %d)", sqlite_memstatus_result);
    return text;
}
