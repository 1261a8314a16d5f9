import Foundation
import TracefoldFuzzing
import XCTest

/// Replays the committed seed corpora and every input a fuzzer once crashed
/// on (`Fuzz/regressions/<target>/`) through the fuzz targets' bodies, so a
/// fixed crash stays fixed without the fuzzing build.
final class FuzzCorpusTests: XCTestCase {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    func testSeedsAndRegressionsRunCleanly() throws {
        var replayed = [String: Int]()
        for (target, run) in FuzzTargets.all {
            for kind in ["corpus", "regressions"] {
                let dir = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
                let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
                for name in names.sorted() {
                    run(Array(try Data(contentsOf: dir.appendingPathComponent(name))))
                    replayed[target, default: 0] += 1
                }
            }
        }
        for target in FuzzTargets.all.keys {
            XCTAssertGreaterThan(replayed[target] ?? 0, 0, "\(target) has no seed corpus")
        }
    }
}
