// The dataset part of the world fingerprint: the class list, and per split and class the file count
// and a CRC-32C of the relative paths, taken from the (cached) index rather than the folders.

import Checkpoints
import ImageData
import StrictJSON

/// What one rank's copy of the dataset holds, small enough to exchange: about 45 KB for ImageNet.
///
/// The class index of an image is its folder's position in ``classNames``, so two copies label
/// alike only when their lists are equal; per-class counts and path checksums then catch a missing,
/// extra or renamed file, and name its class.
package struct DatasetFingerprint: Sendable, Equatable {
    /// One split's files per class.
    package struct Split: Sendable, Equatable {
        /// `train` or `val`.
        package var name: String
        /// Files of each class (index = label).
        package var counts: [Int]
        /// CRC-32C of each class's relative paths in index order (sorted), each followed by a newline.
        package var pathChecksums: [UInt32]

        package var fileCount: Int { counts.reduce(0, +) }

        /// - Precondition: every label is in `0..<classCount`.
        init(name: String, relativePaths: [String], labels: [Int32], classCount: Int) {
            var counts = [Int](repeating: 0, count: classCount)
            var checksums = [CRC32C](repeating: CRC32C(), count: classCount)
            let newline: [UInt8] = [0x0A]
            newline.withUnsafeBytes { newline in
                for (path, label) in zip(relativePaths, labels) {
                    let label = Int(label)
                    counts[label] += 1
                    var path = path
                    path.withUTF8 { checksums[label].update(UnsafeRawBufferPointer($0)) }
                    checksums[label].update(newline)
                }
            }
            self.name = name
            self.counts = counts
            self.pathChecksums = checksums.map(\.value)
        }

        init(name: String, counts: [Int], pathChecksums: [UInt32]) {
            self.name = name
            self.counts = counts
            self.pathChecksums = pathChecksums
        }
    }

    /// Train class folder names, sorted (a label is an index into this list).
    package var classNames: [String]
    /// `train`, then `val`.
    package var splits: [Split]

    /// The fingerprint of a loaded index.
    package init(index: DatasetIndex) {
        self.init(
            classNames: index.classNames,
            splits: DatasetSplit.allCases.map {
                (name: $0.rawValue, relativePaths: index[$0].relativePaths, labels: index[$0].labels)
            })
    }

    /// The fingerprint of splits given as parallel path and label lists (an index's contents).
    package init(classNames: [String], splits: [(name: String, relativePaths: [String], labels: [Int32])]) {
        self.classNames = classNames
        self.splits = splits.map {
            Split(name: $0.name, relativePaths: $0.relativePaths, labels: $0.labels, classCount: classNames.count)
        }
    }

    init(classNames: [String], splits: [Split]) {
        self.classNames = classNames
        self.splits = splits
    }

    // MARK: - Exchange

    /// `{"classes": [...], "splits": [{"name": "train", "counts": [...], "crc32c": [...]}, ...]}`.
    var json: JSONValue {
        .object([
            ("classes", .array(classNames.map(JSONValue.string))),
            (
                "splits",
                .array(
                    splits.map { split in
                        .object([
                            ("name", .string(split.name)),
                            ("counts", .array(split.counts.map(JSONValue.integer))),
                            ("crc32c", .array(split.pathChecksums.map { .integer(Int($0)) })),
                        ])
                    })
            ),
        ])
    }

    /// Reads ``json``; nil when `json` does not have its shape.
    init?(json: JSONValue) {
        guard let classNames = json.member("classes")?.strings, case .array(let items)? = json.member("splits")
        else { return nil }
        var splits: [Split] = []
        for item in items {
            guard case .string(let name)? = item.member("name"), let counts = item.member("counts")?.integers,
                let checksums = item.member("crc32c")?.integers, counts.count == classNames.count,
                checksums.count == classNames.count
            else { return nil }
            splits.append(
                Split(name: name, counts: counts, pathChecksums: checksums.map { UInt32(truncatingIfNeeded: $0) }))
        }
        self.init(classNames: classNames, splits: splits)
    }

    // MARK: - Explaining a difference

    /// How this copy (`label`, e.g. `server 1`) differs from `reference` (`referenceLabel`), as
    /// the end of a sentence whose subject names both sides: ` list different train classes; …`.
    func difference(from reference: DatasetFingerprint, referenceLabel: String, label: String) -> String {
        if classNames != reference.classNames {
            return classDifference(from: reference, referenceLabel: referenceLabel, label: label)
        }
        for (split, referenceSplit) in zip(splits, reference.splits) {
            let classes = split.counts.indices
            if let wrong = classes.first(where: { split.counts[$0] != referenceSplit.counts[$0] }) {
                return " hold different \(split.name) files: \(referenceSplit.fileCount) on \(referenceLabel), "
                    + "\(split.fileCount) on \(label); first difference at class \(wrong) (\(classNames[wrong])): "
                    + "\(referenceSplit.counts[wrong]) on \(referenceLabel), \(split.counts[wrong]) on \(label)"
            }
            if let wrong = classes.first(where: { split.pathChecksums[$0] != referenceSplit.pathChecksums[$0] }) {
                return " hold different \(split.name) file names in class \(wrong) (\(classNames[wrong])), "
                    + "\(split.counts[wrong]) files on each"
            }
        }
        let names = { (fingerprint: DatasetFingerprint) in fingerprint.splits.map(\.name).joined(separator: ", ") }
        return " have different splits: \(names(reference)) on \(referenceLabel), \(names(self)) on \(label)"
    }

    private func classDifference(from reference: DatasetFingerprint, referenceLabel: String, label: String) -> String {
        let common = min(classNames.count, reference.classNames.count)
        let first = (0..<common).first { classNames[$0] != reference.classNames[$0] } ?? common
        func name(_ list: [String]) -> String { first < list.count ? list[first] : "(none)" }
        var text = " list different train classes"
        if classNames.count != reference.classNames.count {
            text += " (\(reference.classNames.count) on \(referenceLabel), \(classNames.count) on \(label))"
        }
        text +=
            "; first difference at class \(first): \(name(reference.classNames)) on \(referenceLabel), "
            + "\(name(classNames)) on \(label)"
        let missing = Set(reference.classNames).subtracting(classNames)
        let extra = Set(classNames).subtracting(reference.classNames)
        if !missing.isEmpty { text += "; only on \(referenceLabel): \(Self.sample(missing))" }
        if !extra.isEmpty { text += "; only on \(label): \(Self.sample(extra))" }
        return text
    }

    /// Up to three names, sorted, and how many more.
    private static func sample(_ names: Set<String>) -> String {
        let sorted = names.sorted()
        let shown = sorted.prefix(3).joined(separator: ", ")
        return sorted.count > 3 ? "\(shown) and \(sorted.count - 3) more" : shown
    }

    /// One line for `diagnose world`, e.g. `1000 classes, train 1281167 files, val 50000 files`.
    package var summary: String {
        (["\(classNames.count) classes"] + splits.map { "\($0.name) \($0.fileCount) files" }).joined(separator: ", ")
    }
}
