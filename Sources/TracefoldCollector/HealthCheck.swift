import Foundation
import NIOPosix
import TracefoldExport
import TracefoldIntake
import TracefoldStore

/// `/health/ready` (SPEC §9.2): not ready while a receiver is not
/// listening, while intake sheds load, while a
/// stage behind it cannot keep data, while the store does not answer, or
/// while a data directory's disk is nearly full. Each reason is named in the
/// answer, so an operator sees which one it is.
struct HealthCheck: Sendable {
    let pipeline: SpanPipeline
    let store: (any RecordStore)?
    let exporter: JSONLRecordExporter?
    let memoryLimiter: MemoryLimiter?
    /// Receivers that bind apart from the HTTP server (gRPC).
    let listeners: [ListenerStatus]
    let directories: [String]
    /// Below this much free space a directory counts as full: one more
    /// request may not fit.
    let minimumFreeBytes: UInt64

    func problems() async -> [String] {
        var out = [String]()
        for listener in listeners where !listener.isListening { out.append("the \(listener.name) receiver is not listening") }
        if pipeline.isFull { out.append("intake is shedding load: \(pipeline.queuedSpans) spans wait for the store") }
        if let memoryLimiter, memoryLimiter.isRefusing {
            out.append("memory is above the soft limit: \(memoryLimiter.lastResidentBytes >> 20) MiB resident, soft limit \(memoryLimiter.config.softLimitBytes >> 20) MiB")
        }
        if pipeline.isFailing { out.append("the store does not take batches; they wait in the intake log") }
        if exporter?.isFailing == true { out.append("the jsonl exporter cannot write its directory") }
        for dir in directories {
            var s = statvfs()
            if statvfs(dir, &s) == 0 {
                let free = UInt64(s.f_bavail) * UInt64(s.f_frsize)
                if free < minimumFreeBytes { out.append("\(dir) has \(free) bytes free") }
            }
        }
        if let store {
            do {
                _ = try await NIOThreadPool.singleton.runIfActive { try store.read { try $0.rows("SELECT 1", []) } }
            } catch {
                out.append("the store does not answer: \(error)")
            }
        }
        return out
    }
}
