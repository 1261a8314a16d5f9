// zstd, for the store's compressed rows (TracefoldStore's RowCompression):
// the collector's only. zdict.h for ZDICT_finalizeDictionary, which gives a
// dictionary its entropy tables.
#include <zstd.h>
#include <zdict.h>
