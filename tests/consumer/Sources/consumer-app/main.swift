#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TracefoldTracing

// A small app using TracefoldTracing's public API only: propagateAttributes,
// observe, @Observed, and a metadata(...).do batch. It exports to
// TRACEFOLD_BASE_URL, prints the trace id and the export counts, and exits
// non-zero if a span was dropped.

struct Greeting: Codable, Sendable {
    var text: String
    var words: Int
}

@Observed(as: .tool)
func greet(name: String) -> Greeting {
    let text = "Hello, \(name)!"
    return Greeting(text: text, words: text.split(separator: " ").count)
}

let tracefold = Tracefold.bootstrap()
var traceID = ""
let greeting = try await propagateAttributes(userId: "consumer-user", sessionId: "consumer-session", tags: ["consumer"], traceName: "consumer-trace") {
    try await observe("consumer-root", as: .agent, input: .string("world")) { root in
        traceID = root.traceID ?? ""
        let greeting = greet(name: "world")
        metadata("consumer-batch").do { batch in
            batch.update(["built": "traits: []"], kind: "build")
            batch.update(["words": .int(Int64(greeting.words))], kind: "usage")
        }
        return greeting
    }
}
await tracefold.shutdown()
let counts = tracefold.exportCounts
print("greeting: \(greeting.text)")
print("trace_id: \(traceID)")
print("exported_spans: \(counts.exported) dropped_spans: \(counts.dropped)")
exit(counts.dropped == 0 && counts.exported > 0 ? 0 : 1)
