// libdeflate, for the jsonl exporter's rotated files (TracefoldExport's
// RotatedFileGzip): the collector's only.
#include <libdeflate.h>
