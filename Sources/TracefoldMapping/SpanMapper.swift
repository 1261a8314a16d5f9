import TracefoldModel

/// Maps one span to its observation record, its trace contribution and the
/// metadata updates it carries: the Langfuse server rules R7–R30 and R31–R39
/// (`reference/langfuse.md` §b) with the choices of SPEC §2–§4.
public struct SpanMapper: Sendable {
    /// Prices generations that report usage without (all of) their cost;
    /// nil: no inference.
    public let pricer: ModelPricer?

    public init(pricer: ModelPricer? = nil) { self.pricer = pricer }

    public static let internalPrefix = "_tracefold."

    /// Whether `key` has `internalPrefix`.
    @inline(__always)
    static func isInternal(_ key: String) -> Bool { key.hasASCIIPrefix(internalPrefix) }

    public static let metadataEventName = "tracefold.metadata"

    /// What every span under one resource and scope shares. Built once per
    /// scope in a batch, so the spans' records share one copy of the resource
    /// and scope JSON text instead of writing their own.
    /// A class: every span of its scope holds it (the fold's items, the
    /// mapping queue), and a struct of its size (264 bytes, seven
    /// references) was copied into each, a retain and a release of every
    /// reference a span.
    public final class Context: Sendable {
        let resource: AttributeTable
        let resourceText: JSONText
        let scopeName: String
        let scopeText: JSONText
        let request: RequestMetadata?
        let requestUpdate: MetadataUpdate?
        /// A stored span's pricing, stamped when it was first folded.
        let costStamp: CostDecision?
        /// An observation's system metadata from its resource and scope,
        /// made once for the scope's spans: each span's copy of it is a
        /// retain, where a dictionary made per span was an allocation, two
        /// hashed inserts and a free.
        let systemMetadata: [String: JSONText]

        public init(resource: Resource, scope: InstrumentationScope) {
            // Stamped by the receiver, which removed any a client sent.
            request = RequestMetadata(resource: resource)
            // Stamped by the fold on the stored span; the receiver removes
            // any `_tracefold.` resource attribute a client sent.
            costStamp = resource.attributes.first { $0.key == CostDecision.attributeKey }?.value.stringValue.flatMap(CostDecision.init(stamp:))
            requestUpdate = request.flatMap(SpanMapper.requestUpdate)
            // SPEC §2.5: clients cannot forge internal attributes.
            self.resource = AttributeTable(resource.attributes.filter { !$0.key.hasASCIIPrefix(SpanMapper.internalPrefix) })
            resourceText = JSONText(self.resource.object)
            scopeName = scope.name
            scopeText = JSONText(.object([
                "name": .string(scope.name), "version": .string(scope.version),
                "attributes": AttributeTable(scope.attributes).object,
            ]))
            systemMetadata = ["resourceAttributes": resourceText, "scope": scopeText]
        }
    }

    public func map(_ span: Span, resource: Resource, scope: InstrumentationScope) -> MappedSpan {
        map(span, context: Context(resource: resource, scope: scope))
    }

    /// The part of a span's mapping that its request's answer needs: the
    /// metadata updates it carries and the problems found in them (SPEC
    /// §4.6, `partial_success`). The intake works it out before the ack;
    /// `map(_:context:updates:)` does the rest after it.
    public struct MappedUpdates: Sendable {
        let attrs: AttributeTable
        /// In position order.
        public let updates: [MetadataUpdate]
        /// As `tracefold.warnings` values.
        public let warnings: [String: JSONValue]
    }

    public func mapUpdates(_ span: Span, context: Context) -> MappedUpdates {
        // Filtered only when there is something to drop: a filtered copy
        // of every span's attributes retained each key and value again.
        // A key at a time, with no closure taking each attribute, which
        // copied it (a retain and a release of its key and its value).
        let hasInternal = span.attributes.withUnsafeBufferPointer { a in a.indices.contains { Self.isInternal(a[$0].key) } }
        let attrs = AttributeTable(hasInternal ? span.attributes.filter { !Self.isInternal($0.key) } : span.attributes)
        var warnings = [String: JSONValue]()
        // Updates, in position order: Langfuse trace metadata, Langfuse
        // observation metadata, tracefold.metadata events, system extractors.
        var updates = [MetadataUpdate]()
        // Room for the request's, both Langfuse ones, the events' and both
        // extractors': grown one by one, it was three allocations a span.
        updates.reserveCapacity(5 + span.events.count)
        if let u = context.requestUpdate { updates.append(u) }
        var position = 0
        func add(_ scope: MetadataScope, _ target: SpanID?, _ kind: String, _ values: [String: JSONText], time: UInt64) {
            position += 1
            // Size limits are the fold's to enforce: the cumulative one needs
            // the trace's state.
            updates.append(
                MetadataUpdate(
                    id: UpdateID(span: span.spanID, position: UInt64(position)), scope: scope, target: target, kind: kind, values: values,
                    order: OrderKey(time: time, spanID: span.spanID.value, position: position)
                )
            )
        }
        let sorted = Self.metadataSources(attrs, warnings: &warnings, spanID: span.spanID)
        if !sorted.trace.isEmpty { add(.trace, nil, "userland.default", sorted.trace, time: span.startTimeUnixNano) }
        if !sorted.observation.isEmpty { add(.observation, span.spanID, "userland.default", sorted.observation, time: span.startTimeUnixNano) }
        for (index, event) in span.events.enumerated() where event.name == Self.metadataEventName {
            switch Self.eventUpdate(event, span: span) {
            case .success(let (scope, target, kind, values)):
                add(scope, target, kind, values.mapValues(JSONText.init), time: event.timeUnixNano)
            case .failure(let reason):
                warnings["\(span.spanID.hex)/event/\(index)"] = .string(reason.message)
            }
        }
        if !sorted.ai.isEmpty { add(.extendedTrace, span.spanID, "tracefold.ai", sorted.ai, time: span.startTimeUnixNano) }
        if !sorted.http.isEmpty { add(.extendedTrace, span.spanID, "tracefold.http", sorted.http, time: span.startTimeUnixNano) }
        return MappedUpdates(attrs: attrs, updates: updates, warnings: warnings)
    }

    /// `updates`: what `mapUpdates` gave for this span and context, if it
    /// ran already.
    public func map(_ span: Span, context: Context, updates mappedUpdates: MappedUpdates? = nil) -> MappedSpan {
        let pre = mappedUpdates ?? mapUpdates(span, context: context)
        let attrs = pre.attrs
        let res = context.resource
        let order = OrderKey(time: span.startTimeUnixNano, spanID: span.spanID.value, position: 0)

        let type = Self.observationType(attrs)
        let model = Self.model(attrs)
        let (input, output, ioKeys) = Self.inputOutput(attrs, events: span.events, scopeName: context.scopeName)
        var system = context.systemMetadata
        if !context.scopeName.hasPrefix("langfuse-sdk") {
            // R26: the remaining span attributes, typed (SPEC §2.4), without
            // metadata-prefix keys and the input/output keys consumed.
            var remaining = [String: JSONValue]()
            for a in attrs.ordered where !Self.isMetadataKey(a.key) && !ioKeys.contains(a.key) {
                remaining[a.key] = a.value.json
            }
            system["attributes"] = JSONText(.object(remaining))
        }

        let level: ObservationLevel =
            attrs["langfuse.observation.level"]?.stringValue.flatMap(ObservationLevel.init(alias:))
            ?? (span.status.code == .error ? .error : .default)
        let statusMessage = attrs["langfuse.observation.status_message"]?.text ?? (span.status.message.isEmpty ? nil : span.status.message)
        let environment = Self.environment(attrs, res)
        let usage = Self.usage(attrs)
        let clientCost = Self.clientCost(attrs)
        // Priced once, when first folded; a stored span keeps that decision.
        let decision = context.costStamp ?? pricer?.decide(model: model, hasUsage: !usage.isEmpty, start: span.startTimeUnixNano)
        let priced = decision?.price(usage: usage, clientCost: clientCost)

        let version = attrs["langfuse.version"]?.text ?? res["service.version"]?.text
        let release = attrs["langfuse.release"]?.text ?? res["langfuse.release"]?.text
        let isGeneration = type == .generation
        let newCostStamp = context.costStamp == nil ? priced.flatMap { p in decision?.stamp(used: p.used) } : nil
        // The observation and the trace's part are made in the result, from
        // values worked out above: built in locals and then passed, both
        // were copied into the result (a retain of each of their
        // references) and the locals destroyed, and a field set on the
        // local afterwards copied the whole observation once more.
        return MappedSpan(
            observation: Observation(
                id: span.spanID, traceID: span.traceID, parentID: span.parentSpanID, type: type, name: Self.name(span, attrs),
                // A span with only an end starts there.
                startTimeUnixNano: span.startTimeUnixNano == 0 && span.endTimeUnixNano != 0 ? span.endTimeUnixNano : span.startTimeUnixNano,
                // R8: a missing end is the start; an end before the start is clamped.
                endTimeUnixNano: span.endTimeUnixNano == 0 ? span.startTimeUnixNano : max(span.endTimeUnixNano, span.startTimeUnixNano),
                completionStartTime: Self.completionStart(attrs),
                model: model, modelParameters: Self.modelParameters(attrs), inputText: input, outputText: output,
                usageDetails: usage, costDetails: priced?.details ?? CostDetails(Self.withTotal(clientCost)), systemMetadata: system,
                level: level, statusMessage: statusMessage, version: version, release: release, environment: environment ?? "default",
                promptName: isGeneration ? (attrs["langfuse.observation.prompt.name"] ?? attrs["langfuse.prompt.name"])?.text : nil,
                promptVersion: isGeneration ? Self.int((attrs["langfuse.observation.prompt.version"] ?? attrs["langfuse.prompt.version"])) : nil,
                modelID: decision?.modelID
            ),
            trace: TraceContribution(
                name: attrs["langfuse.trace.name"]?.text.flatMap(Self.nonEmpty),
                userID: Self.firstText(attrs, LookupKeys.userID),
                sessionID: Self.firstText(attrs, LookupKeys.sessionID),
                version: version, release: release, environment: environment, tags: Self.tags(attrs),
                isPublic: Self.truthy(attrs["langfuse.trace.public"] ?? attrs["langfuse.public"]),
                input: attrs["langfuse.trace.input"]?.decodedJSON,
                output: attrs["langfuse.trace.output"]?.decodedJSON,
                asRoot: Self.truthy(attrs["langfuse.internal.as_root"])
            ),
            updates: pre.updates, warnings: pre.warnings, order: order, request: context.request, newCostStamp: newCostStamp
        )
    }

    /// SPEC §5.1: the request's header metadata is one trace-scope update,
    /// ordered by receive time. Every span of the request carries the same
    /// update id, so it is applied and counted once per request.
    static func requestUpdate(_ request: RequestMetadata) -> MetadataUpdate? {
        guard !request.metadata.isEmpty else { return nil }
        let values = request.metadata.mapValues(JSONText.string)
        var canonical = JSONWriter()
        canonical.writeObject(values)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the canonical values
        for b in canonical.bytes {
            hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return MetadataUpdate(
            id: UpdateID("request/\(request.receivedAtUnixNano)/\(String(hash, radix: 16))"), scope: .trace, target: nil, kind: "userland.default",
            values: values, order: OrderKey(time: request.receivedAtUnixNano, spanID: 0, position: 0)
        )
    }

    // MARK: R11–R12 name and type

    static func name(_ span: Span, _ a: AttributeTable) -> String {
        for key in LookupKeys.name {
            if let v = a[key]?.text, !v.isEmpty { return v }
        }
        if let op = a["ai.operationId"]?.text, !op.isEmpty {
            if let fn = a["ai.telemetry.functionId"]?.text, !fn.isEmpty { return fn + ":" + op }
            return op
        }
        return span.name
    }

    static func observationType(_ a: AttributeTable) -> ObservationType {
        if let t = a["langfuse.observation.type"]?.text, let type = ObservationType(rawValue: t.uppercased()) { return type }
        if let k = a["openinference.span.kind"]?.text?.uppercased() {
            switch k {
            case "LLM": return .generation
            case "CHAIN": return .chain
            case "RETRIEVER": return .retriever
            case "EMBEDDING": return .embedding
            case "AGENT": return .agent
            case "TOOL": return .tool
            case "GUARDRAIL": return .guardrail
            case "EVALUATOR": return .evaluator
            default: break
            }
        }
        if let op = a["gen_ai.operation.name"]?.text {
            switch op {
            case "chat", "completion", "text_completion", "generate_content", "generate": return .generation
            case "embeddings": return .embedding
            case "invoke_agent", "create_agent": return .agent
            case "execute_tool": return .tool
            default: break
            }
        }
        if a["gen_ai.tool.name"] != nil || a["gen_ai.tool.call.id"] != nil { return .tool }
        for key in LookupKeys.generationModel where a[key] != nil {
            return .generation
        }
        return .span
    }

    // MARK: R16 environment

    static func environment(_ a: AttributeTable, _ r: AttributeTable) -> String? {
        // The span's attribute, then the resource's, key by key (without an
        // array of the two tables built for every key of every span).
        for key in LookupKeys.environment {
            if let v = a[key]?.text, !v.isEmpty { return normaliseEnvironment(v) }
            if let v = r[key]?.text, !v.isEmpty { return normaliseEnvironment(v) }
        }
        return nil
    }

    /// Lower-cased, leading `langfuse-`/`langfuse_` stripped, at most 40
    /// characters of `[a-z0-9_-]`; anything else is "default".
    public static func normaliseEnvironment(_ raw: String) -> String {
        // Most environments are already normal ("production", "bench"):
        // those come back as they are, decided on bytes, without the
        // lower-cased copy and the walk over its characters.
        if raw.utf8.count <= 40, !raw.utf8.starts(with: "langfuse".utf8), raw.utf8.allSatisfy(isEnvironmentByte) { return raw.isEmpty ? "default" : raw }
        var v = Substring(raw.lowercased())
        while v.hasPrefix("langfuse-") || v.hasPrefix("langfuse_") { v = v.dropFirst(9) }
        let s = String(v.prefix(40))
        guard !s.isEmpty, s.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }) else {
            return "default"
        }
        return s
    }

    /// `[a-z0-9_-]`: a byte that normalising leaves as it is.
    private static func isEnvironmentByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
            || b == UInt8(ascii: "-")
    }

    // MARK: R17–R22 generation fields

    static func model(_ a: AttributeTable) -> String? {
        firstText(a, LookupKeys.model)
    }

    static func modelParameters(_ a: AttributeTable) -> [String: JSONValue]? {
        func scalarsOnly(_ o: [String: JSONValue]) -> [String: JSONValue] {
            o.mapValues { v in
                switch v {
                case .string, .int, .double: v
                default: .string(JSONWriter.serialize(v))
                }
            }
        }
        for key in LookupKeys.modelParameters {
            if let s = a[key]?.stringValue, case .object(let o)? = try? JSONParser.parse(s) { return scalarsOnly(o) }
        }
        var out = [String: JSONValue]()
        a.withAttributes { attributes in
            for i in attributes.indices {
                for prefix in modelParameterPrefixes where attributes[i].key.hasASCIIPrefix(prefix) {
                    // After an ASCII prefix, by bytes, as in `metadata`:
                    // `dropFirst` walked the key's characters.
                    let name = String(Substring(attributes[i].key.utf8.dropFirst(prefix.utf8.count)))
                    if name != "model" { out[name] = attributes[i].value.json }
                }
            }
        }
        return out.isEmpty ? nil : scalarsOnly(out)
    }

    static let modelParameterPrefixes = ["gen_ai.request.", "llm.invocation_parameters."]

    /// The keys each field is looked up under, in order. Built once: as
    /// literals where they are used, each list was an array made for every
    /// span.
    enum LookupKeys {
        static let userID = ["langfuse.user.id", "user.id", "langfuse.observation.metadata.langfuse_user_id", "langfuse.trace.metadata.langfuse_user_id", "ai.telemetry.metadata.userId"]
        static let sessionID = ["langfuse.session.id", "session.id", "gen_ai.conversation.id", "langfuse.observation.metadata.langfuse_session_id", "langfuse.trace.metadata.langfuse_session_id", "ai.telemetry.metadata.sessionId"]
        static let name = ["gen_ai.tool.name", "genkit:name", "logfire.msg", "ai.toolCall.name"]
        static let generationModel = ["langfuse.observation.model.name", "gen_ai.request.model", "gen_ai.response.model", "llm.model_name", "model"]
        static let environment = ["langfuse.environment", "deployment.environment.name", "deployment.environment"]
        static let model = ["langfuse.observation.model.name", "gen_ai.response.model", "ai.model.id", "gen_ai.request.model", "llm.response.model", "llm.model_name", "model"]
        static let modelParameters = ["langfuse.observation.model.parameters", "llm.invocation_parameters", "model_config"]
        static let tags = ["langfuse.trace.tags", "langfuse.tags", "langfuse.observation.metadata.langfuse_tags", "langfuse.trace.metadata.langfuse_tags", "ai.telemetry.metadata.tags", "tag.tags"]
    }

    /// Where each usage type is read from, first found wins. Built once:
    /// as literals in `usage`, the seven arrays were made for every span.
    enum UsageKeys {
        static let input = ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"]
        static let output = ["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"]
        static let total = ["gen_ai.usage.total_tokens", "llm.token_count.total"]
        static let cacheRead = ["gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.input_tokens_details.cached_tokens", "llm.token_count.prompt_details.cache_read"]
        static let cacheCreation = ["gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write"]
        static let reasoning = ["gen_ai.usage.reasoning_tokens", "gen_ai.usage.output_tokens_details.reasoning_tokens", "llm.token_count.completion_details.reasoning"]
        static let audio = ["gen_ai.usage.output_tokens_details.audio_tokens", "llm.token_count.completion_details.audio"]
    }

    static func usage(_ a: AttributeTable) -> UsageDetails {
        if let s = a["langfuse.observation.usage_details"]?.stringValue, let parsed = try? JSONParser.parse(s) {
            guard case .object(let o) = parsed else { return [:] }
            return UsageDetails(withTotal(o))
        }
        func n(_ keys: [String]) -> Double? {
            for k in keys { if let v = number(a[k]) { return v } }
            return nil
        }
        let u = UsageKeys.self
        let input = n(u.input)
        let output = n(u.output)
        let total = n(u.total)
        let cacheRead = n(u.cacheRead)
        let cacheCreation = n(u.cacheCreation)
        let reasoning = n(u.reasoning)
        let audio = n(u.audio)
        guard input ?? output ?? total ?? cacheRead ?? cacheCreation ?? reasoning ?? audio != nil else { return [:] }
        var out = UsageDetails(other: [:])
        // The total `addTotal` would fill in, summed as each type is put.
        var sum = 0.0
        var allInts = true
        func counted(_ count: Double) -> JSONValue {
            let value = numberJSON(count)
            switch value {
            case .int(let i): sum += Double(i)
            case .double(let d): (sum, allInts) = (sum + d, false)
            default: break
            }
            return value
        }
        // The usual types in their fields; the others, which few spans
        // report, in `other`.
        if let input { out.input = counted(input - (cacheRead ?? 0) - (cacheCreation ?? 0)) }
        if let output { out.output = counted(output - (reasoning ?? 0) - (audio ?? 0)) }
        if let cacheRead { out.other["input_cached_tokens"] = counted(cacheRead) }
        if let cacheCreation { out.other["input_cache_creation"] = counted(cacheCreation) }
        if let reasoning { out.other["output_reasoning_tokens"] = counted(reasoning) }
        if let audio { out.other["output_audio_tokens"] = counted(audio) }
        out.total = total.map(numberJSON) ?? totalJSON(sum: sum, allInts: allInts)
        return out
    }

    /// The costs the client sent, as it sent them (no total filled in).
    static func clientCost(_ a: AttributeTable) -> [String: JSONValue] {
        if let s = a["langfuse.observation.cost_details"]?.stringValue, let parsed = try? JSONParser.parse(s) {
            guard case .object(let o) = parsed else { return [:] }
            return o
        }
        if let v = number(a["gen_ai.usage.cost"] ?? a["llm.cost.total"]) { return ["total": numberJSON(v)] }
        return [:]
    }

    /// SPEC §2.2: fill in `total` as the sum of the numeric values when absent.
    public static func withTotal(_ o: [String: JSONValue]) -> [String: JSONValue] {
        var out = o
        addTotal(&out)
        return out
    }

    /// `withTotal` in place: returning a copy with the total added copied
    /// the dictionary and grew it past its capacity, on every span with
    /// token counts.
    static func addTotal(_ o: inout [String: JSONValue]) {
        guard !o.isEmpty, o["total"] == nil else { return }
        var sum = 0.0
        var allInts = true
        for v in o.values {
            switch v {
            case .int(let i): sum += Double(i)
            case .double(let d): sum += d; allInts = false
            default: break
            }
        }
        o["total"] = totalJSON(sum: sum, allInts: allInts)
    }

    /// A total of numeric values as `addTotal` writes it.
    static func totalJSON(sum: Double, allInts: Bool) -> JSONValue {
        // Decimal sums like 0.001 + 0.002 are rounded to 12 places so that the
        // total reads 0.003, not 0.0030000000000000001.
        // Int64 totals only while the sum fits: two huge counts must not trap.
        allInts && abs(sum) < 9.2e18 ? .int(Int64(sum)) : .double((sum * 1e12).rounded() / 1e12)
    }

    static func completionStart(_ a: AttributeTable) -> UInt64? {
        guard let raw = a["langfuse.observation.completion_start_time"]?.stringValue else { return nil }
        if let t = ISOTime.parse(raw) { return t }
        if case .string(let inner)? = try? JSONParser.parse(raw) { return ISOTime.parse(inner) }
        return nil
    }

    // MARK: R23–R24 input and output

    /// (input, output, the attribute keys they were taken from): the first
    /// source of R23–R24 that has either side. An attribute's text becomes
    /// the JSON text without a `JSONValue` in between (`JSONText.decoding`).
    static func inputOutput(_ a: AttributeTable, events: [SpanEvent], scopeName: String) -> (JSONText?, JSONText?, ConsumedKeys) {
        func pair(_ inKey: String, _ outKey: String) -> (JSONText?, JSONText?, ConsumedKeys)? {
            guard a[inKey] != nil || a[outKey] != nil else { return nil }
            return (a[inKey]?.decodedJSONText, a[outKey]?.decodedJSONText, ConsumedKeys(inKey, outKey))
        }
        func first(_ keys: [String]) -> (JSONText?, String?) {
            for k in keys { if let v = a[k] { return (v.decodedJSONText, k) } }
            return (nil, nil)
        }
        if let io = pair("langfuse.observation.input", "langfuse.observation.output") { return io }
        if scopeName == "genkit-tracer", let io = pair("genkit:input", "genkit:output") { return io }
        if scopeName == "ai" {
            let (i, ik) = first(["ai.prompt.messages", "ai.prompt"])
            let (o, ok) = first(["ai.response.text", "ai.response.object", "ai.response.toolCalls", "ai.result.text", "ai.result.object"])
            if i != nil || o != nil { return (i, o, ConsumedKeys(ik, ok)) }
        }
        if let (i, o, keys) = genAIEvents(events) { return (i.map(JSONText.init), o.map(JSONText.init), ConsumedKeys(keys)) }
        for (inKey, outKey) in [
            ("gcp.vertex.agent.llm_request", "gcp.vertex.agent.llm_response"),
            ("prompt", "all_messages_events"),
            ("mlflow.spanInputs", "mlflow.spanOutputs"),
            ("traceloop.entity.input", "traceloop.entity.output"),
            ("input.value", "output.value"),
            ("input", "output"),
            ("tool_arguments", "tool_response"),
        ] {
            if let io = pair(inKey, outKey) { return io }
        }
        // Flattened message lists: gen_ai.prompt.N.*, llm.input_messages.N.*.
        for (inPrefix, outPrefix) in [("gen_ai.prompt.", "gen_ai.completion."), ("llm.input_messages.", "llm.output_messages.")] {
            let (i, ik) = FlattenedAttributes.rebuild(a.ordered, prefix: inPrefix)
            let (o, ok) = FlattenedAttributes.rebuild(a.ordered, prefix: outPrefix)
            if i != nil || o != nil { return (i.map(JSONText.init), o.map(JSONText.init), ConsumedKeys(ik.union(ok))) }
        }
        if a["gen_ai.input.messages"] != nil || a["gen_ai.output.messages"] != nil {
            var input = a["gen_ai.input.messages"]?.decodedJSON
            var keys: Set<String> = ["gen_ai.input.messages", "gen_ai.output.messages"]
            // System instructions come first in the conversation.
            if let sys = a["gen_ai.system_instructions"]?.decodedJSON {
                keys.insert("gen_ai.system_instructions")
                let instructions: [JSONValue] = sys.arrayValue ?? [sys]
                let system: JSONValue = .object(["role": .string("system"), "parts": .array(instructions)])
                input = .array([system] + (input?.arrayValue ?? (input.map { [$0] } ?? [])))
            }
            return (input.map(JSONText.init), a["gen_ai.output.messages"]?.decodedJSONText, ConsumedKeys(keys))
        }
        if let io = pair("gen_ai.tool.call.arguments", "gen_ai.tool.call.result") { return io }
        return (nil, nil, ConsumedKeys([]))
    }

    /// The attribute keys that input and output were taken from, which R26
    /// leaves out of the observation's attributes. Nearly always a pair of
    /// keys: kept as the two strings, not a set hashed and allocated for
    /// every span (0.7% of the collector's CPU); the flattened lists keep
    /// a set, as they can name thousands of keys.
    struct ConsumedKeys {
        var first: String?
        var second: String?
        var more: Set<String>

        init(_ first: String?, _ second: String?) {
            (self.first, self.second, more) = (first, second, [])
        }

        init(_ keys: Set<String>) {
            (first, second, more) = (nil, nil, keys)
        }

        func contains(_ key: String) -> Bool {
            key == first || key == second || (!more.isEmpty && more.contains(key))
        }
    }

    /// GenAI semantic-convention span events: one
    /// `gen_ai.client.inference.operation.details` event, or per-message
    /// `gen_ai.{system,user,assistant,tool}.message` events with `gen_ai.choice`
    /// for the output.
    static func genAIEvents(_ events: [SpanEvent]) -> (JSONValue?, JSONValue?, Set<String>)? {
        if let details = events.first(where: { $0.name == "gen_ai.client.inference.operation.details" }) {
            let t = AttributeTable(details.attributes)
            let i = t["gen_ai.input.messages"]?.decodedJSON
            let o = t["gen_ai.output.messages"]?.decodedJSON
            if i != nil || o != nil { return (i, o, []) }
        }
        let roles = ["gen_ai.system.message": "system", "gen_ai.user.message": "user", "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"]
        var input = [JSONValue]()
        var output = [JSONValue]()
        for e in events {
            var message = AttributeTable(e.attributes).decodedObject
            if let role = roles[e.name] {
                if message["role"] == nil { message["role"] = .string(role) }
                input.append(.object(message))
            } else if e.name == "gen_ai.choice" {
                output.append(.object(message))
            }
        }
        guard !input.isEmpty || !output.isEmpty else { return nil }
        return (input.isEmpty ? nil : .array(input), output.isEmpty ? nil : (output.count == 1 ? output[0] : .array(output)), [])
    }

    // MARK: R25–R30 metadata

    static let metadataPrefixes = ["langfuse.observation.metadata", "langfuse.trace.metadata", "langfuse.metadata", "ai.telemetry.metadata"]

    /// The prefixes with their dot, built once: concatenating them per call
    /// allocated four strings for every attribute.
    static let dottedMetadataPrefixes = metadataPrefixes.map { $0 + "." }

    static func isMetadataKey(_ key: String) -> Bool {
        metadataPrefixes.contains(key) || dottedMetadataPrefixes.contains { key.hasASCIIPrefix($0) }
    }

    /// Where each domain's metadata comes from (R25-R30): its JSON blob,
    /// the first of its blob keys the span has (an observation's falls back
    /// to `langfuse.metadata`), and the prefixes of its flattened keys.
    /// Lists built once, not per span.
    static let traceBlobKeys = ["langfuse.trace.metadata"]
    static let observationBlobKeys = ["langfuse.observation.metadata", "langfuse.metadata"]
    static let traceMetadataPrefix = "langfuse.trace.metadata."
    /// The observation's prefixes that start with "l", as the trace's does;
    /// its third is `telemetryMetadataPrefix`.
    static let observationLangfusePrefixes = ["langfuse.observation.metadata.", "langfuse.metadata."]
    static let telemetryMetadataPrefix = "ai.telemetry.metadata."
    /// Keys of the Vercel AI SDK's metadata that are trace fields, not metadata.
    static let telemetryFieldKeys: Set<String> = ["userId", "sessionId", "tags", "langfusePrompt"]

    /// What `mapUpdates` makes updates of, from one walk over the span's
    /// attributes: the user metadata of each domain (R25-R30: the JSON
    /// blob, then `<prefix>.<k>` keys, which win; a dotted remainder stays
    /// one flat key; values decoded at ingest, SPEC §2.3), the AI keys
    /// (`isAIKey`) and the `http.`/`url.` keys. A key's first byte decides
    /// which prefixes it can have, so most keys are compared with one
    /// prefix or none: four walks, one per update, compared every key with
    /// a dozen prefixes and names, about a third of `mapUpdates` on the
    /// bench load.
    struct MetadataSources {
        var trace: [String: JSONText]
        var observation: [String: JSONText]
        var ai = [String: JSONText]()
        var http = [String: JSONText]()
    }

    static func metadataSources(_ a: AttributeTable, warnings: inout [String: JSONValue], spanID: SpanID) -> MetadataSources {
        var out = MetadataSources(
            trace: blobMetadata(a, keys: traceBlobKeys, warnings: &warnings, spanID: spanID),
            observation: blobMetadata(a, keys: observationBlobKeys, warnings: &warnings, spanID: spanID)
        )
        /// Sets `dict[key]`, with room made on the first key for every
        /// attribute left (once, rather than grown key by key).
        /// Made at that size rather than reserved: `reserveCapacity` is not
        /// specialized (the standard library's generic code, which looks up
        /// the dictionary's type at run time and then moves nothing).
        func put(_ dict: inout [String: JSONText], _ key: String, _ value: JSONText, left: Int) {
            if dict.isEmpty { dict = Dictionary(minimumCapacity: left) }
            dict[key] = value
        }
        /// The key after a prefix it has: the prefixes are ASCII and end
        /// in ".", so a key that has one (as characters, `hasASCIIPrefix`)
        /// starts with its bytes, and its UTF-8 length is a character
        /// boundary: no walk over the key's characters.
        func after(_ key: String, _ prefix: String) -> String {
            String(Substring(key.utf8.dropFirst(prefix.utf8.count)))
        }
        a.withAttributes { attributes in
            for i in attributes.indices {
                let key = attributes[i].key
                let left = attributes.count - i
                switch key.utf8.first {
                case UInt8(ascii: "l"):
                    // The trace's prefix and the observation's exclude each other.
                    if key.hasASCIIPrefix(traceMetadataPrefix) {
                        let k = after(key, traceMetadataPrefix)
                        if !k.isEmpty { put(&out.trace, k, attributes[i].value.decodedJSONText, left: left) }
                    } else {
                        for p in observationLangfusePrefixes where key.hasASCIIPrefix(p) {
                            let k = after(key, p)
                            if !k.isEmpty { put(&out.observation, k, attributes[i].value.decodedJSONText, left: left) }
                        }
                    }
                case UInt8(ascii: "a"):
                    if key.hasASCIIPrefix(telemetryMetadataPrefix) {
                        let k = after(key, telemetryMetadataPrefix)
                        if !k.isEmpty && !telemetryFieldKeys.contains(k) { put(&out.observation, k, attributes[i].value.decodedJSONText, left: left) }
                    }
                case UInt8(ascii: "g"):
                    if isAIKey(key) { put(&out.ai, key, attributes[i].value.jsonText, left: left) }
                case UInt8(ascii: "h"), UInt8(ascii: "u"):
                    if key.hasASCIIPrefix("http.") || key.hasASCIIPrefix("url.") { put(&out.http, key, attributes[i].value.jsonText, left: left) }
                default:
                    break
                }
            }
        }
        return out
    }

    /// A domain's JSON blob spread into keys, from the first of `keys`
    /// the span has.
    private static func blobMetadata(_ a: AttributeTable, keys: [String], warnings: inout [String: JSONValue], spanID: SpanID) -> [String: JSONText] {
        var out = [String: JSONText]()
        if let blobKey = keys.first(where: { a[$0] != nil }), let blob = a[blobKey] {
            switch blob.decodedJSON {
            case .object(let o): out = o.mapValues(JSONText.init)
            case .array(let items):
                // R30: an array blob spreads as {"0": …, "1": …}.
                for (i, v) in items.enumerated() { out[String(i)] = JSONText(v) }
            default:
                warnings["\(spanID.hex)/\(blobKey)"] = .string("\(blobKey) is not a JSON object; dropped")
            }
        }
        return out
    }

    // MARK: SPEC §4.2 tracefold.metadata events

    struct EventError: Error { var message: String }

    static func eventUpdate(_ event: SpanEvent, span: Span) -> Result<(MetadataScope, SpanID?, String, [String: JSONValue]), EventError> {
        let a = AttributeTable(event.attributes)
        let scopeText = a["tracefold.metadata.scope"]?.text ?? "observation"
        guard let scope = MetadataScope(wire: scopeText) else { return .failure(EventError(message: "unknown metadata scope \"\(scopeText)\"")) }
        if let op = a["tracefold.metadata.op"]?.text, op.lowercased() != "merge" {
            return .failure(EventError(message: "unsupported op \"\(op)\""))
        }
        let kind: String
        switch MetadataKind.normalise(a["tracefold.metadata.kind"]?.text ?? "", fromClient: true) {
        case .success(let k): kind = k
        case .failure(let e): return .failure(EventError(message: e.message))
        }
        guard let raw = a["tracefold.metadata.values"]?.stringValue, case .object(let values)? = try? JSONParser.parse(raw) else {
            return .failure(EventError(message: "tracefold.metadata.values must be a JSON object"))
        }
        switch scope {
        case .trace: return .success((.trace, nil, kind, values))
        case .observation: return .success((.observation, span.spanID, kind, values))
        case .extendedTrace:
            guard let hex = a["tracefold.metadata.span_id"]?.text, let target = SpanID(hex: hex), !target.isZero else {
                return .failure(EventError(message: "extended_trace metadata needs tracefold.metadata.span_id (16 hex digits)"))
            }
            return .success((.extendedTrace, target, kind, values))
        }
    }

    // MARK: system extractors

    static func isAIKey(_ key: String) -> Bool {
        key.hasASCIIPrefix("gen_ai.request.") || key.hasASCIIPrefix("gen_ai.usage.") || key == "gen_ai.response.model"
            || key == "gen_ai.response.finish_reasons" || key == "gen_ai.response.id" || key == "gen_ai.system"
            || key == "gen_ai.provider.name" || key == "gen_ai.operation.name"
    }

    // MARK: R36–R39 helpers

    static func tags(_ a: AttributeTable) -> [String] {
        for key in LookupKeys.tags {
            guard let v = a[key] else { continue }
            let parsed = parseTags(v)
            if !parsed.isEmpty { return parsed }
        }
        return []
    }

    static func parseTags(_ v: AttributeValue) -> [String] {
        switch v {
        case .array(let items): return items.compactMap(\.text).filter { !$0.isEmpty }
        case .string(let s):
            let t = s.trimmed
            if t.hasPrefix("["), case .array(let items)? = try? JSONParser.parse(t) {
                return items.compactMap { if case .string(let x) = $0 { x } else { $0 == .null ? nil : JSONWriter.serialize($0) } }
            }
            if t.contains(",") { return t.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty } }
            return t.isEmpty ? [] : [t]
        default:
            return v.text.map { [$0] } ?? []
        }
    }

    static func truthy(_ v: AttributeValue?) -> Bool {
        switch v {
        case .bool(true): true
        case .string(let s): s.lowercased() == "true"
        default: false
        }
    }

    static func firstText(_ a: AttributeTable, _ keys: [String]) -> String? {
        for key in keys {
            guard let v = a[key] else { continue }
            // v5 JSON-encodes metadata values; a quoted string reads unquoted.
            let text: String? = isMetadataKey(key) ? (v.decodedJSON.stringValue ?? v.text) : v.text
            if let text, !text.isEmpty { return text }
        }
        return nil
    }

    static func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }

    static func number(_ v: AttributeValue?) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        case .string(let s): Double(s.trimmed)
        default: nil
        }
    }

    static func numberJSON(_ d: Double) -> JSONValue {
        d == d.rounded() && abs(d) < 9e15 ? .int(Int64(d)) : .double(d)
    }

    static func int(_ v: AttributeValue?) -> Int64? {
        switch v {
        case .int(let i): i
        case .double(let d): Int64(exactly: d)
        case .string(let s): Int64(s.trimmed)
        default: nil
        }
    }
}

/// Attributes by key (the last of duplicate keys wins), keeping wire order.
struct AttributeTable: Sendable {
    let ordered: [Attribute]
    /// Nil up to `scanLimit` attributes: the mapper looks up some forty keys
    /// a span, nearly all absent, and a dictionary cost a hash of each (and
    /// the dictionary itself) where comparing a few lengths finds the miss.
    private let index: [String: AttributeValue]?

    /// Bit `n % 64` is set when some key is `n` bytes long. Most of the
    /// keys looked up are absent and differ in length from every key the
    /// span has, so most misses end at this bit instead of a scan.
    private let lengths: UInt64

    static let scanLimit = 32

    init(_ attributes: [Attribute]) {
        ordered = attributes
        if attributes.count <= Self.scanLimit {
            index = nil
            var lengths: UInt64 = 0
            attributes.withUnsafeBufferPointer { a in
                for i in a.indices { lengths |= 1 &<< UInt64(a[i].key.utf8.count & 63) }
            }
            self.lengths = lengths
        } else {
            index = Self.dictionary(attributes)
            lengths = ~0
        }
    }

    /// The last value of `key`, as a dictionary keeping the last would give.
    subscript(key: String) -> AttributeValue? {
        if let index { return index[key] }
        let length = key.utf8.count
        guard lengths & (1 &<< UInt64(length & 63)) != 0 else { return nil }
        return withAttributes { attributes in
            var i = attributes.endIndex
            while i > attributes.startIndex {
                i -= 1
                if attributes[i].key.utf8.count == length && attributes[i].key == key { return attributes[i].value }
            }
            return nil
        }
    }

    /// The attributes in wire order, read in place. A for-in loop over
    /// `ordered` copied each attribute it visited (a retain and a release
    /// of its key and its value), and the mapper walks a span's attributes
    /// some ten times.
    @inline(__always)
    func withAttributes<R>(_ body: (UnsafeBufferPointer<Attribute>) throws -> R) rethrows -> R {
        try ordered.withUnsafeBufferPointer(body)
    }

    private static func dictionary(_ attributes: [Attribute]) -> [String: AttributeValue] {
        Dictionary(attributes.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Attributes as an object with string values decoded (`"content"` etc.).
    var decodedObject: [String: JSONValue] { (index ?? Self.dictionary(ordered)).mapValues(\.decodedJSON) }

    var object: JSONValue { .object((index ?? Self.dictionary(ordered)).mapValues(\.json)) }
}

extension String {
    /// `hasPrefix(prefix)` for an ASCII `prefix`, decided on bytes. The
    /// mapper asks some seventy of these a span, nearly all false, and
    /// `hasPrefix` compares characters. A key has the prefix as characters
    /// exactly when it starts with the prefix's bytes and the byte after
    /// them does not begin a character that could join the prefix's last
    /// one (a combining mark after "." makes another character): when that
    /// byte is not ASCII, `hasPrefix` decides.
    ///
    /// The first two bytes are compared first, through the UTF-8 views'
    /// indices, which read the key in place: most keys differ there, and
    /// the comparison of the whole prefix below takes a copy of the key (a
    /// retain and a release) for its closure. An ASCII prefix has no other
    /// spelling, so a key that differs in those bytes does not have it.
    @inline(__always)
    func hasASCIIPrefix(_ prefix: String) -> Bool {
        if let lead = prefix.firstTwoBytes, lead != firstTwoBytes { return false }
        // nil: not decided by bytes (or not contiguous UTF-8).
        let decided = utf8.withContiguousStorageIfAvailable { k -> Bool? in
            prefix.utf8.withContiguousStorageIfAvailable { p -> Bool? in
                guard p.count <= k.count else { return false }
                for i in 0..<p.count where k[i] != p[i] { return false }
                return p.count == k.count || k[p.count] < 0x80 ? true : nil
            } ?? nil
        }
        return (decided ?? nil) ?? hasPrefix(prefix)
    }

    /// The first two UTF-8 bytes; nil when there are fewer.
    @inline(__always)
    var firstTwoBytes: UInt16? {
        let u = utf8
        guard u.count >= 2 else { return nil }
        return UInt16(u[u.startIndex]) << 8 | UInt16(u[u.index(after: u.startIndex)])
    }

    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Rebuilds `prefix.N.field[.M.sub…]` attributes into nested JSON
/// (`gen_ai.prompt.0.role`, `gen_ai.prompt.0.content` → `[{"role":…,
/// "content":…}]`), as Langfuse does for flattened message lists.
enum FlattenedAttributes {
    /// Langfuse caps the rebuilt arrays at this many slots.
    static let maxIndex = 10_000

    indirect enum Node {
        case leaf(JSONValue)
        case branch([String: Node])
    }

    static func rebuild(_ attributes: [Attribute], prefix: String) -> (JSONValue?, Set<String>) {
        var root = [String: Node]()
        var keys = Set<String>()
        for attr in attributes where attr.key.hasASCIIPrefix(prefix) {
            let path = attr.key.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let head = path.first, Int(head) != nil, !path.contains("__proto__"), !path.contains("") else { continue }
            keys.insert(attr.key)
            insert(&root, path[...], attr.value.decodedJSON)
        }
        guard !root.isEmpty else { return (nil, []) }
        return (json(.branch(root)), keys)
    }

    static func insert(_ node: inout [String: Node], _ path: ArraySlice<String>, _ value: JSONValue) {
        guard let head = path.first else { return }
        if path.count == 1 {
            node[head] = .leaf(value)
            return
        }
        var child: [String: Node] = [:]
        if case .branch(let existing)? = node[head] { child = existing }
        insert(&child, path.dropFirst(), value)
        node[head] = .branch(child)
    }

    /// A branch whose keys are all indexes becomes an array.
    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .leaf(let v): return v
        case .branch(let children):
            let indexes = children.keys.compactMap { Int($0) }
            if indexes.count == children.count, let top = indexes.max(), top <= maxIndex, indexes.allSatisfy({ $0 >= 0 }) {
                var items = [JSONValue](repeating: .null, count: top + 1)
                for (k, v) in children { items[Int(k)!] = json(v) }
                return .array(items)
            }
            return .object(children.mapValues(json))
        }
    }
}
