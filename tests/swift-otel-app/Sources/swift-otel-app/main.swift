import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

// Sends one Langfuse-attributed trace (a root span with trace attributes and
// a generation under it) through swift-otel's OTLP/gRPC exporter, then shuts
// the exporter down, which flushes it. Prints the trace id.
//
//   TRACEFOLD_GRPC_URL   http://host:port (plaintext) or https://host:port
//   TRACEFOLD_CA_FILE    CA to trust (TLS)
//   TRACEFOLD_CLIENT_CERT, TRACEFOLD_CLIENT_KEY   client certificate (mTLS)
//   TRACEFOLD_USER       the trace's user id
let env = ProcessInfo.processInfo.environment
var config = OTel.Configuration.default
config.serviceName = "swift-otel-app"
config.diagnosticLogLevel = .error
config.metrics.enabled = false
config.logs.enabled = false
config.traces.exporter = .otlp
config.traces.otlpExporter.protocol = .grpc
config.traces.otlpExporter.endpoint = env["TRACEFOLD_GRPC_URL"] ?? "http://127.0.0.1:4317"
config.traces.otlpExporter.compression = .gzip
config.traces.otlpExporter.certificateFilePath = env["TRACEFOLD_CA_FILE"]
config.traces.otlpExporter.clientCertificateFilePath = env["TRACEFOLD_CLIENT_CERT"]
config.traces.otlpExporter.clientKeyFilePath = env["TRACEFOLD_CLIENT_KEY"]
config.traces.batchSpanProcessor.scheduleDelay = .milliseconds(100)

let (tracer, service) = try OTel.makeTracingBackend(configuration: config)
let group = ServiceGroup(services: [service], logger: Logger(label: "swift-otel-app"))
let running = Task { try await group.run() }

let user = env["TRACEFOLD_USER"] ?? "u-swift-otel"
let traceID = tracer.withSpan("answer", ofKind: .server) { root -> String in
    root.attributes["langfuse.trace.name"] = "grpc-trace"
    root.attributes["user.id"] = user
    root.attributes["session.id"] = "s-1"
    root.attributes["langfuse.trace.tags"] = ["grpc", "otlp"]
    root.attributes["langfuse.trace.metadata.tenant"] = "acme"
    root.attributes["langfuse.observation.input"] = #"{"q": "hi"}"#
    root.attributes["langfuse.observation.output"] = #""hello""#
    tracer.withSpan("llm") { generation in
        generation.attributes["langfuse.observation.type"] = "generation"
        generation.attributes["langfuse.observation.model.name"] = "gpt-4o-mini"
        generation.attributes["langfuse.observation.usage_details"] = #"{"input": 10, "output": 5}"#
        generation.attributes["langfuse.observation.cost_details"] = #"{"total": 0.001}"#
    }
    // The trace id, as the W3C traceparent the tracer would propagate.
    var headers = [String: String]()
    tracer.inject(root.context, into: &headers, using: HeaderInjector())
    return headers["traceparent"]?.split(separator: "-").dropFirst().first.map(String.init) ?? ""
}
// Graceful shutdown flushes the batch processor and the exporter.
await group.triggerGracefulShutdown()
try await running.value
print(traceID)

struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
