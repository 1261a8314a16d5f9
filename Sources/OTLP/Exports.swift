// The encoder lives in its own module, OTLPProtobufEncoding, so that an app using
// TracefoldTracing links no protobuf-c; the collector's code, which decodes
// with protobuf-c, sees both halves through `import OTLP`.
@_exported import OTLPProtobufEncoding
