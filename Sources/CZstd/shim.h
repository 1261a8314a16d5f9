// zstd, for the store's compressed rows (TracefoldStore's RowCompression):
// the collector's only.
#include <zstd.h>
