#ifndef TRACEFOLD_ALLOCATOR_H
#define TRACEFOLD_ALLOCATOR_H

/// The process's allocator settings as jemalloc read them ("narenas:2,..."),
/// or NULL when malloc is not jemalloc's (another platform, a build without
/// it). Reading it also keeps this file, and so `malloc_conf`, linked in.
const char *tracefold_allocator_settings(void);

/// SQLite's process-wide settings as this file made them when the process
/// loaded: "memstatus:off", or why they could not be made.
const char *tracefold_sqlite_settings(void);

#endif
