// The collector's C libraries from the system: protobuf-c, which decodes
// OTLP protobuf requests, and glibc's malloc_trim, which the memory limiter
// uses to hand freed pages back. Nothing a Swift app using TracefoldTracing
// links: its encoder is pure Swift and gzips through CZlib.
#include <protobuf-c/protobuf-c.h>
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
