// The two C libraries tracefold links from the system: protobuf-c (OTLP
// protobuf decoding) and zlib (gzip/deflate request bodies).
#include <protobuf-c/protobuf-c.h>
#include <zlib.h>
