import Foundation
import Tracing
import TracefoldTracing

// A small "RAG answer" flow that uses every part of TracefoldTracing:
// propagateAttributes, observe, @Observed (sync and async throws), a
// generation with usage and cost, an event, an ERROR observation, v3-style
// updateCurrentTrace, setCurrentTraceAsPublic, Inngest-style metadata in all
// three scopes and a .do batch, and a span from plain swift-distributed-
// tracing nesting under an observation. Exports to TRACEFOLD_BASE_URL
// (default http://127.0.0.1:4318), prints the trace id, flushes, exits.

struct Document: Codable, Sendable {
    var id: String
    var text: String
    var score: Double
}

struct Answer: Codable, Sendable {
    var text: String
    var sources: [String]
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

struct Retrieval: Codable, Sendable {
    var documents: [Document]
    /// This observation's span id: what a system that only knows the span
    /// (a relevance judge running later, say) addresses its metadata to.
    var spanID: String?
}

@Observed(as: .retriever)
func retrieve(query: String, topK: Int) async throws -> Retrieval {
    // Another library's span (here plain swift-distributed-tracing) nests
    // under the observation because the tracer is bootstrapped.
    try await withSpan("vector-store.search", ofKind: .client) { span in
        span.attributes["db.system"] = "demo-vectors"
        span.attributes["db.operation"] = "search"
        try await Task.sleep(for: .milliseconds(5))
    }
    let documents = [
        Document(id: "doc-2", text: "Returns are free for 30 days.", score: 0.81),
        Document(id: "doc-1", text: "Orders ship within 2 days.", score: 0.92),
    ]
    return Retrieval(documents: Array(documents.prefix(topK)), spanID: currentObservation()?.id)
}

@Observed
func rerank(_ documents: [Document]) -> [Document] {
    documents.sorted { $0.score > $1.score }
}

@Observed(as: .tool)
func lookUpOrder(orderID: String) throws -> String {
    throw ToolError(description: "order \(orderID) not found")
}

func answer(question: String) async throws -> (answer: Answer, traceID: String) {
    try await propagateAttributes(
        userId: "user-42", sessionId: "session-7", tags: ["demo", "rag"], traceName: "rag-answer", version: "1.4.0",
        metadata: ["tenant": "acme", "plan": "pro"]
    ) {
        var traceID = ""
        let answer = try await observe("answer-question", as: .agent, input: .string(question)) { root in
            traceID = root.traceID ?? ""
            let retrieval = try await retrieve(query: question, topK: 2)
            let ranked = rerank(retrieval.documents)

            let reply = try await observe("llm-call", as: .generation, input: ["question": .string(question), "context": .array(ranked.map { .string($0.text) })]) {
                generation in
                let started = Date()
                try await Task.sleep(for: .milliseconds(3))
                generation.updateGeneration(
                    model: "gpt-4o-mini", modelParameters: ["temperature": 0.2, "max_tokens": 256],
                    usageDetails: ["input": 412, "output": 57, "total": 469], costDetails: ["input": 0.0000618, "output": 0.0000342, "total": 0.000096],
                    completionStartTime: started
                )
                metadata("llm-billing").update(["customer": "acme", "credits": 3], kind: "billing")
                return "Orders ship within 2 days."
            }

            event("cache-miss", input: ["key": "q:shipping"], metadata: ["store": "redis"])

            do {
                _ = try lookUpOrder(orderID: "A-17")
            } catch {
                updateCurrentObservation(metadata: ["fallback": "static-answer"])
            }

            metadata("request").trace().update(["region": "eu-west-1", "experiment": "b"])
            if let retrievalSpanID = retrieval.spanID {
                metadata("retrieval-quality").span(retrievalSpanID).update(["relevance": 0.87, "judge": "heuristic"], kind: "quality")
            }
            metadata("step-summary").observation().update(["documents": .int(Int64(ranked.count))])
            metadata("costs").do { batch in
                batch.update(["usd": 0.000096], kind: "billing")
                batch.update(["tokens": 469], kind: "usage")
            }

            updateCurrentTrace(metadata: ["answered": true])
            setCurrentTraceAsPublic()
            root.update(metadata: ["documents": .int(Int64(ranked.count))])
            return Answer(text: reply, sources: ranked.map(\.id))
        }
        return (answer, traceID)
    }
}

let tracefold = Tracefold.bootstrap()
let (reply, traceID) = try await answer(question: "How fast do orders ship?")
await tracefold.shutdown()
let counts = tracefold.exportCounts
print("answer: \(reply.text)")
print("trace_id: \(traceID)")
print("exported_spans: \(counts.exported) dropped_spans: \(counts.dropped)")
exit(counts.dropped == 0 && counts.exported > 0 ? 0 : 1)
