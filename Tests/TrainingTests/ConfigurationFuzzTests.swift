// A fuzz test of the configuration reader: deterministic mutations of the shipped conf/*.yml files,
// each of which must end in a configuration or a thrown ConfigurationError, quickly, never a signal.

import Foundation
import TensorEngine
import Testing
import Training
import _TestSupport

@Suite struct ConfigurationFuzzTests {
    /// Fragments that have broken YAML readers: anchors, aliases, tags, YAML 1.1 forms, huge and
    /// non-finite numbers, indicators, control characters and directives.
    static let fragments = [
        "&a ", "*a", "!!python/object ", "!x ", "1:30", "\n", ": ", "- ", "[", "]", "{", "}", "'", "\"", " #", "? ",
        "|", ">", "\t", "<<: ", "%YAML 1.1\n", "---\n", "...\n", "\u{0}", "\u{7}", "é", "\u{FEFF}", "0x1F", "010",
        "9223372036854775807", "99999999999999999999", "1e300", "-1", ".inf", ".nan", "~", "null", "yes", ",",
        String(repeating: "[", count: 1200),
    ]

    @Test func mutatedShippedFilesEndInAConfigurationOrAnError() throws {
        let folder = BuiltProducts.packageRoot.appendingPathComponent("conf")
        let seeds = try ["demo.yml", "eval.yml", "ghostnet_d.yml"].map {
            try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8)
        }
        var random = SeededRandom(seed: 19)
        var accepted = 0
        var refused = 0
        var slowest = Duration.zero
        for index in 0..<1000 {
            var text = Array(seeds[index % seeds.count].utf8)
            for _ in 0...Int(random.next() % 3) { mutate(&text, &random) }
            let yaml = String(decoding: text, as: UTF8.self)
            let start = ContinuousClock.now
            do {
                _ = try TrainingConfiguration.parse(
                    yaml: yaml, file: "fuzz-\(index).yml", currentDirectory: URL(fileURLWithPath: "/work/run"))
                accepted += 1
            } catch {
                #expect(error.description.contains("fuzz-\(index).yml"), "\(error)")
                refused += 1
            }
            slowest = max(slowest, ContinuousClock.now - start)
        }
        #expect(accepted + refused == 1000)
        #expect(refused > 0 && accepted > 0, "accepted \(accepted), refused \(refused)")
        #expect(slowest < .seconds(2), "slowest input took \(slowest)")
    }

    /// One mutation: delete a span, insert a fragment, repeat a line, or swap a number for a huge one.
    private func mutate(_ text: inout [UInt8], _ random: inout SeededRandom) {
        guard !text.isEmpty else { return }
        let position = Int(random.next() % UInt64(text.count))
        switch random.next() % 4 {
        case 0:
            text.removeSubrange(position..<min(text.count, position + 1 + Int(random.next() % 20)))
        case 1:
            let fragment = Self.fragments[Int(random.next() % UInt64(Self.fragments.count))]
            text.insert(contentsOf: fragment.utf8, at: position)
        case 2:
            let lineStart = text[..<position].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let lineEnd = text[position...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            text.insert(contentsOf: text[lineStart..<lineEnd] + [UInt8(ascii: "\n")], at: lineStart)
        default:
            guard let digit = text[position...].firstIndex(where: { (48...57).contains($0) }) else { return }
            let end = text[digit...].firstIndex { !(48...57).contains($0) } ?? text.count
            text.replaceSubrange(digit..<end, with: "9223372036854775807".utf8)
        }
    }
}
