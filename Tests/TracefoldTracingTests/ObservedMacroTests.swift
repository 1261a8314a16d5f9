import SwiftSyntaxMacros
import SwiftSyntaxMacrosTestSupport
import XCTest

import TracefoldTracingMacros

/// What @Observed expands to, checked with swift-syntax's own test helper.
final class ObservedMacroTests: XCTestCase {
    let macros: [String: any Macro.Type] = ["Observed": ObservedMacro.self]

    func testAsyncThrowingFunctionWithLabelledAndUnlabelledArguments() {
        assertMacroExpansion(
            """
            @Observed
            func answer(_ question: String, topK k: Int, options: inout [String]) async throws -> Answer {
                let docs = try await search(question, k)
                return Answer(docs)
            }
            """,
            expandedSource: """
                func answer(_ question: String, topK k: Int, options: inout [String]) async throws -> Answer {
                    return try await TracefoldTracing.observe("answer", input: TracefoldTracing.ObservedInput.arguments([TracefoldTracing.ObservedInput.value(question)], ["k": TracefoldTracing.ObservedInput.value(k)])) { (_: TracefoldTracing.Observation) async throws -> Answer in
                        let docs = try await search(question, k)
                        return Answer(docs)
                    }
                }
                """,
            macros: macros
        )
    }

    func testNameTypeAndASyncFunctionWithoutResult() {
        assertMacroExpansion(
            """
            @Observed("llm-call", as: .generation)
            func call() {
                work()
            }
            """,
            expandedSource: """
                func call() {
                    return TracefoldTracing.observe("llm-call", as: .generation, input: TracefoldTracing.ObservedInput.arguments([], [:])) { (_: TracefoldTracing.Observation) -> Void in
                        work()
                    }
                }
                """,
            macros: macros
        )
    }

    func testAnOpaqueResultLeavesTheClosureTypeToInference() {
        assertMacroExpansion(
            """
            @Observed
            func make() throws -> some Sequence<Int> {
                [1]
            }
            """,
            expandedSource: """
                func make() throws -> some Sequence<Int> {
                    return try TracefoldTracing.observe("make", input: TracefoldTracing.ObservedInput.arguments([], [:])) { _ in
                        [1]
                    }
                }
                """,
            macros: macros
        )
    }

    func testOnlyFunctionsWithBodies() {
        assertMacroExpansion(
            """
            struct S {
                @Observed
                init() {}
            }
            """,
            expandedSource: """
                struct S {
                    init() {}
                }
                """,
            diagnostics: [DiagnosticSpec(message: "@Observed applies to a function with a body", line: 2, column: 5)],
            macros: macros
        )
    }
}
