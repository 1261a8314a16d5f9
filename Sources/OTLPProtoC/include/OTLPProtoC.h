// Umbrella header for the protobuf-c code generated from proto/.
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "google/rpc/status.pb-c.h"
