// The C libraries tracefold takes from the system: protobuf-c (OTLP
// protobuf decoding), zlib (gzip/deflate request bodies), and glibc's
// malloc_trim, which the memory limiter uses to hand freed pages back.
#include <protobuf-c/protobuf-c.h>
#include <zlib.h>
#include <malloc.h>
