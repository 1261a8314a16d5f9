// zlib, for gzip and deflate: request bodies in the collector, and the
// gzipped OTLP bodies TracefoldTracing sends. Linux and macOS both ship it.
#include <zlib.h>
