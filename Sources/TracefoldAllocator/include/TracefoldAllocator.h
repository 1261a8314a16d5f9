#ifndef TRACEFOLD_ALLOCATOR_H
#define TRACEFOLD_ALLOCATOR_H

/// The process's allocator settings as jemalloc read them ("narenas:2,..."),
/// or NULL when malloc is not jemalloc's (another platform, a build without
/// it). Reading it also keeps this file, and so `malloc_conf`, linked in.
const char *tracefold_allocator_settings(void);

#endif
