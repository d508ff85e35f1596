// Matching a weights file to the run's network the way PyTorch's `load_state_dict(strict=False)`
// reports it (matched, missing, unexpected, shape-mismatched), with the classifier of another class
// count re-initialised; the summary `train --init-from` logs, and the error that lists the mismatches.

import GhostNet
import TensorEngine

/// How a weights file's tensors matched a network: what `train --init-from` logs.
package struct InitialWeightsReport: Sendable {
    package let file: String
    package let format: InitialWeights.Format
    /// Names loaded from the file, in the network's order.
    package internal(set) var matched: [String] = []
    /// Classifier tensors of another class count, left at the seed's initialisation.
    package internal(set) var reinitialized: [String] = []
    /// Network tensors the file lacks.
    package internal(set) var missing: [String] = []
    /// File tensors the network lacks (as the file names them).
    package internal(set) var unexpected: [String] = []
    /// `name: found, expected` for tensors of another shape or dtype.
    package internal(set) var misShaped: [String] = []
    /// Counters and optimizer state the file holds besides the weights.
    package let skipped: Int
    /// The class counts when the classifier was re-initialised: the file's and the network's.
    package internal(set) var classes: (file: Int, network: Int)?

    /// True when nothing but the classifier differs.
    package var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty }

    /// Names shown per list; the count is always given.
    static let shownNames = 20

    /// The summary lines: the counts, then each non-empty list by name.
    package var summary: [String] {
        var lines = [
            "init-from \(file) (\(format)): \(matched.count) matched, \(reinitialized.count) re-initialised, "
                + "\(missing.count) missing, \(unexpected.count) unexpected, \(misShaped.count) with wrong shape"
                + (skipped > 0 ? "; \(skipped) counters or optimizer values skipped" : "")
        ]
        if let classes {
            lines.append(
                "init-from: classifier re-initialised from the seed (\(classes.file) → \(classes.network) classes): "
                    + reinitialized.joined(separator: ", "))
        }
        for (title, names) in mismatchLists where !names.isEmpty {
            let shown = names.prefix(Self.shownNames).joined(separator: ", ")
            let more = names.count > Self.shownNames ? ", … (\(names.count - Self.shownNames) more)" : ""
            lines.append("init-from: \(names.count) \(title): \(shown)\(more)")
        }
        return lines
    }

    private var mismatchLists: [(String, [String])] {
        [
            ("missing", missing), ("unexpected", unexpected), ("with wrong shape", misShaped),
        ]
    }
}

extension InitialWeights {
    /// The parameter-name prefix of the classifier, re-initialised when the class count differs.
    package static let classifierPrefix = "fc."

    /// `base` with every tensor the file holds under the same name and shape replaced by the
    /// file's; the rest stays as in `base` (the seed's initialisation).
    ///
    /// A classifier tensor (``classifierPrefix``) whose first dimension alone differs is the
    /// classifier of another class count: it keeps `base`'s values and is reported as re-initialised.
    ///
    /// - Parameters:
    ///   - base: The run's freshly initialised network.
    ///   - partial: Accept missing, unexpected and mis-shaped tensors (`--init-partial`).
    /// - Throws: ``InteropError`` `.mismatch` naming the file and listing every mismatch, unless
    ///   `partial`; also when not one tensor matched. The readers' errors for unusable values.
    package func apply(to base: ModelParameters, partial: Bool) throws -> (ModelParameters, InitialWeightsReport) {
        var report = InitialWeightsReport(file: path, format: format, skipped: skipped)
        var byName: [String: Entry] = [:]
        for entry in entries {
            if byName[entry.name] == nil {
                byName[entry.name] = entry
            } else {
                report.unexpected.append(entry.fileName == entry.name ? entry.name : "\(entry.fileName) (duplicate)")
            }
        }
        let specs = Set(base.structure.tensors.map(\.name))
        report.unexpected += entries.filter { !specs.contains($0.name) }.map {
            $0.fileName == $0.name ? $0.name : "\($0.fileName) (as \($0.name))"
        }
        var parameters = base
        var loads: [(TensorSpec, Entry)] = []
        for spec in base.structure.tensors {
            guard let entry = byName[spec.name] else {
                report.missing.append(spec.name)
                continue
            }
            if entry.unreadable == nil, entry.shape == spec.shape {
                report.matched.append(spec.name)
                loads.append((spec, entry))
            } else if entry.unreadable == nil, Self.isOtherClassCount(spec, entry) {
                report.reinitialized.append(spec.name)
                report.classes = (entry.shape[0], spec.shape[0])
            } else {
                let found = entry.unreadable.map { "\($0) \(entry.shape)" } ?? "\(entry.shape)"
                report.misShaped.append("\(entry.fileName): \(found), expected \(spec.shape)")
            }
        }
        guard report.isComplete || partial, !report.matched.isEmpty else {
            throw InteropError(.mismatch, file: path, mismatchMessage(report, partial: partial, base.structure))
        }
        for (spec, entry) in loads { parameters[spec] = try entry.read() }
        return (parameters, report)
    }

    /// A classifier tensor whose class dimension alone differs.
    private static func isOtherClassCount(_ spec: TensorSpec, _ entry: Entry) -> Bool {
        spec.name.hasPrefix(classifierPrefix) && entry.shape.count == spec.shape.count
            && entry.shape.dropFirst() == spec.shape.dropFirst()
    }

    private func mismatchMessage(
        _ report: InitialWeightsReport, partial: Bool, _ structure: GhostNetStructure
    ) -> String {
        let network = structure.configuration
        let advice =
            report.matched.isEmpty
            ? "not one tensor matched; is it a GhostNet-D of this layout?"
            : "pass --init-partial (runtime.init_partial) to load the \(report.matched.count) matching tensors "
                + "and keep the seed's initialisation for the rest"
        return
            ([
                "(\(format)) does not match the network (\(network.architectureName) blocks \(network.blocksText), "
                    + "width \(network.width), \(network.classes) classes); \(advice)"
            ] + report.summary.dropFirst()).joined(separator: "\n")
    }
}
