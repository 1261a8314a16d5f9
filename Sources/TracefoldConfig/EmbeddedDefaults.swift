// Generated from collector.yaml by scripts/embed-default-config.sh; a test
// checks that the two stay equal.
extension CollectorConfig {
    /// The repository's collector.yaml, used when no config file is found.
    public static let embeddedDefaultYAML = #"""
# tracefold's embedded defaults. Runs as is: `tracefold serve` reads this file
# from the working directory. The shape follows the OpenTelemetry Collector.
# ${env:VAR:-default} reads the environment, so several instances can run side
# by side without editing the file.

receivers:
  otlp:
    protocols:
      # OTLP/gRPC (TraceService/Export), on the same intake path as HTTP and
      # with the same credentials and rate limit (those under http).
      grpc:
        endpoint: ${env:TRACEFOLD_GRPC_ENDPOINT:-127.0.0.1:4317}
        # After grpc-encoding decompression; past it RESOURCE_EXHAUSTED.
        max_recv_msg_size: 4MiB
        # TLS (either receiver; kill -HUP re-reads the files). With
        # client_ca_file a client certificate from that CA is required.
        # tls: {cert_file: server.pem, key_file: server.key, client_ca_file: ca.pem, min_version: "1.2"}
      http:
        endpoint: ${env:TRACEFOLD_ENDPOINT:-127.0.0.1:4318}
        # Applies after gzip/deflate decompression (SPEC §1.4).
        max_request_body_size: 64MiB
        # Body bytes all connections may hold at once (wire and inflated);
        # past it intake answers 503. At least twice max_request_body_size.
        max_in_flight_bytes: 256MiB
        idle_timeout: 60s
        # A request body must arrive within this, or it gets 408 and the
        # connection is closed (slow senders cannot hold connections).
        read_timeout: 30s
        # Per-credential limit in spans; past it intake answers 429 with
        # Retry-After. An API key's own rate_limit replaces it.
        # rate_limit: {spans_per_second: 50000, burst: 100000}
        # Off by default on loopback. To require credentials, list
        # Langfuse-style key pairs (sent as Basic auth) or bearer tokens:
        # auth:
        #   api_keys:
        #     - public_key: pk-lf-example
        #       secret_key: ${env:TRACEFOLD_SECRET_KEY}
        #       workspace: default          # governance layers (SPEC §5.3)
        #       metadata: {tier: free}
        #       rate_limit: {spans_per_second: 1000}
        #   bearer_tokens: [${env:TRACEFOLD_BEARER_TOKEN}]

processors:
  # Like otelcol's: resident memory is checked every check_interval; above
  # limit_mib - spike_limit_mib intake answers 503 with Retry-After until it
  # falls, and queries go on being served.
  memory_limiter:
    check_interval: 1s
    limit_mib: ${env:TRACEFOLD_MEMORY_LIMIT_MIB:-1024}
    spike_limit_mib: ${env:TRACEFOLD_MEMORY_SPIKE_LIMIT_MIB:-256}
  # Folds spans into trace and observation records (Langfuse mapping,
  # update_trace merge, metadata scopes and kinds).
  fold:
    # About 0.7 KB each beyond the 1,024 most recent; older ones are
    # rebuilt from the store when a late span arrives. A trace whose root
    # has arrived (of at most 64 spans) is not kept past the 1,024.
    max_open_traces: 20000
    metadata:
      max_update_bytes: 65536
      max_trace_bytes: 1048576
    # Generations that report tokens but no cost are priced from model
    # definitions: the built-in ones (pricing/models.json), these, and those
    # made through POST /api/public/models. These win over built-ins.
    # models:
    #   - model_name: my-llm
    #     match_pattern: "(?i)^my-llm$"      # regex on the generation's model
    #     start_date: 2026-01-01             # optional: applies from then on
    #     prices: {input: 0.000001, output: 0.000002}   # USD per token

exporters:
  # Trace and observation revisions as JSON lines (SPEC §6).
  jsonl:
    directory: ${env:TRACEFOLD_DATA_DIR:-./data}/export
    # A trace is written once it has been idle this long.
    flush_after: ${env:TRACEFOLD_FLUSH_AFTER:-5s}
    flush_interval: 1s
    rotation:
      max_megabytes: 100
      max_age: 1h
      compress: gzip
      # libdeflate's level for rotated files: 1, the fastest, to 12, the smallest.
      gzip_level: 1
  # A debug exporter, one span per line in OTLP/JSON field names, like
  # otelcol's file exporter. Add it to the pipeline to use it:
  # spans_jsonl:
  #   directory: ${env:TRACEFOLD_DATA_DIR:-./data}/spans

store:
  # Holds the intake log and tracefold.sqlite (SQLite, WAL mode).
  directory: ${env:TRACEFOLD_DATA_DIR:-./data}
  # fsync: every acknowledged span is in the fsynced intake log before the 200.
  # none: no intake log, for benchmarks only.
  durability: ${env:TRACEFOLD_DURABILITY:-fsync}
  # Accepted spans that may wait for the fold and the exporters; past it
  # intake answers 503 with Retry-After instead of growing memory. Spans are
  # acknowledged before the fold, so this is also how far visibility may lag:
  # about 0.7 s of fold work at 8192 (SPEC 7.6 asks for 1 s).
  max_pending_spans: 8192
  # A request that finds the queue full waits this long for the fold to make
  # room, before its body is read, and only then gets the 503; 0s answers at
  # once. At most 10s.
  max_pending_wait: 1s
  # Delete traces older than this with their observations and spans, e.g. 30d.
  # retention: 30d
  # PostgreSQL instead of SQLite (SPEC §8.2). Several tracefold processes,
  # each with its own directory above, may share one database:
  # postgres:
  #   url: ${env:TRACEFOLD_POSTGRES_URL}
  #   # A round trip PostgreSQL does not answer within this fails, and the
  #   # connection is closed (a frozen server must not stall the fold).
  #   request_timeout: 30s

# Request metadata and governance (SPEC §5). HEADERS_TO_METADATA in the
# environment (a comma list) replaces headers_to_metadata.
metadata:
  headers_to_metadata: []
  # workspaces:
  #   default:
  #     metadata: {team: platform}
  # schemas:
  #   api_key: {type: object, additionalProperties: true, properties: {tier: {type: string, enum: [free, pro]}}}

# The query API (Langfuse's reads, on the HTTP receiver's port) and the
# trace explorer, a web UI at http://127.0.0.1:4318/ui/; both need the
# receiver's credentials when auth is on.
query:
  project: tracefold
  explorer: true

service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, fold]
      exporters: [jsonl]
  # SIGTERM: finish requests in flight and write out what is pending within
  # this; anything left is in the intake log and replayed at the next start.
  shutdown_timeout: 30s
  telemetry:
    logs:
      level: ${env:TRACEFOLD_LOG_LEVEL:-info}

"""#
}
