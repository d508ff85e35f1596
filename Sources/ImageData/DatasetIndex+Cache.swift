// The on-disk cache of dataset indexes, so a 1.28 M-file dataset is listed once: where it lives, when a
// cached index is still valid (folder fingerprints), and its file format.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where scanned dataset indexes are kept, so 1.28 M files are listed once, not on every start.
///
/// A cached index is used only while every folder it came from (the data path, `train/`, each
/// class folder, `val/` and its subfolders) and the validation labels file have the modification
/// time, size and link count recorded when it was written; otherwise the folders are scanned
/// again and the cache rewritten.
package enum IndexCache: Sendable {
    case disabled
    /// Cache files live in this folder, one per data path.
    case directory(String)

    /// `$GHOSTNET_CACHE_DIR`, else `$XDG_CACHE_HOME/ghostnet-d`, else `~/.cache/ghostnet-d`.
    package static var defaultDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["GHOSTNET_CACHE_DIR"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/ghostnet-d" }
        return NSHomeDirectory() + "/.cache/ghostnet-d"
    }

    /// The cache in `defaultDirectory`.
    package static var standard: IndexCache { .directory(defaultDirectory) }
}

extension DatasetIndex {
    /// The index of the dataset at `dataPath`, from `cache` when it is still valid, else scanned
    /// (and then cached; a cache that cannot be written only costs the next start a rescan).
    ///
    /// - Returns: the index, and whether it came from the cache.
    /// - Throws: `DataError` of kind `.layout` when the folders do not form an ImageNet layout.
    package static func load(dataPath: String, cache: IndexCache = .standard) throws(DataError) -> (
        index: DatasetIndex, fromCache: Bool
    ) {
        let root = normalizedRoot(dataPath)
        guard case .directory(let cacheFolder) = cache else { return (try scan(dataPath: root), false) }
        let cacheFile = cacheFolder + "/index-" + stableHash(root) + ".txt"
        let fingerprint = currentFingerprint(root: root)
        if let text = try? String(contentsOfFile: cacheFile, encoding: .utf8),
            let cached = IndexCacheFormat.decode(text, root: root, fingerprint: fingerprint)
        {
            return (cached, true)
        }
        let index = try scan(dataPath: root)
        if let text = IndexCacheFormat.encode(index, fingerprint: fingerprint) {
            try? FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
            // Atomic (temporary file + rename), so ranks scanning at once never read half a file.
            try? text.write(toFile: cacheFile, atomically: true, encoding: .utf8)
        }
        return (index, false)
    }

    /// One line per folder (and labels file) the index depends on: path, mtime, size, link count.
    static func currentFingerprint(root: String) -> [String] {
        var folders = ["", "train", "val"]
        for split in ["train", "val"] {
            if let contents = try? listing(of: root + "/" + split) {
                folders += contents.directories.map { split + "/" + $0 }
            }
        }
        var lines = folders.map { folder in "\(folder)\t\(statusSummary(root + "/" + folder))" }
        for labels in [
            root + "/" + validationLabelsFileName,
            (root as NSString).deletingLastPathComponent + "/" + validationLabelsFileName,
        ] {
            lines.append("\(labels)\t\(statusSummary(labels))")
        }
        return lines
    }

    private static func statusSummary(_ path: String) -> String {
        var status = stat()
        guard stat(path, &status) == 0 else { return "absent" }
        return "\(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec) \(status.st_size) \(status.st_nlink)"
    }

    /// FNV-1a of the UTF-8 bytes, hex: a file name stable across runs (unlike `hashValue`).
    static func stableHash(_ text: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return String(hash, radix: 16)
    }
}

/// The line-based text format of a cached index (fast to parse for 1.28 M entries).
///
/// ```
/// ghostnet-d dataset index 1
/// root <TAB> /path
/// fingerprint <TAB> n, then n lines
/// classes <TAB> n, then n wnids
/// layout <TAB> classFolders | layout <TAB> flat <TAB> /path/LOC_val_solution.csv
/// split <TAB> train|val <TAB> count <TAB> ignored count <TAB> example count,
///   then the examples, then count lines "label <TAB> relative path"
/// ```
enum IndexCacheFormat {
    static let magic = "ghostnet-d dataset index 1"

    /// The text, or nil when a path contains a newline or tab (such an index is not cached).
    static func encode(_ index: DatasetIndex, fingerprint: [String]) -> String? {
        let splits = [("train", index.train), ("val", index.validation)]
        let allPaths = splits.flatMap { $0.1.relativePaths + $0.1.ignoredExamples } + index.classNames + [index.root]
        guard !allPaths.contains(where: { $0.contains("\n") || $0.contains("\t") }) else { return nil }
        var lines = [magic, "root\t\(index.root)", "fingerprint\t\(fingerprint.count)"]
        lines += fingerprint
        lines.append("classes\t\(index.classNames.count)")
        lines += index.classNames
        switch index.validationLayout {
        case .classFolders: lines.append("layout\tclassFolders")
        case .flat(let labelsFile): lines.append("layout\tflat\t\(labelsFile)")
        }
        for (name, split) in splits {
            lines.append("split\t\(name)\t\(split.count)\t\(split.ignoredFileCount)\t\(split.ignoredExamples.count)")
            lines += split.ignoredExamples
            for (label, path) in zip(split.labels, split.relativePaths) { lines.append("\(label)\t\(path)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The cached index, or nil when the text is malformed, for another root, or stale.
    static func decode(_ text: String, root: String, fingerprint: [String]) -> DatasetIndex? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        func next() -> Substring? { lines.popFirst() }
        func header(_ key: String) -> [Substring]? {
            guard let line = next() else { return nil }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            return fields.first == Substring(key) ? Array(fields.dropFirst()) : nil
        }
        func take(_ count: Int) -> [String]? {
            guard lines.count >= count else { return nil }
            defer { lines.removeFirst(count) }
            return lines.prefix(count).map(String.init)
        }
        guard next() == Substring(magic),
            header("root") == [Substring(root)],
            let fingerprintCount = header("fingerprint")?.first.flatMap({ Int($0) }),
            take(fingerprintCount) == fingerprint,
            let classCount = header("classes")?.first.flatMap({ Int($0) }),
            let classNames = take(classCount),
            let layoutFields = header("layout")
        else { return nil }
        let layout: ValidationLayout
        switch layoutFields.first {
        case "classFolders": layout = .classFolders
        case "flat" where layoutFields.count == 2: layout = .flat(labelsFile: String(layoutFields[1]))
        default: return nil
        }
        var splits: [SplitIndex] = []
        for name in ["train", "val"] {
            guard let fields = header("split"), fields.count == 4, fields[0] == Substring(name),
                let count = Int(fields[1]), let ignoredCount = Int(fields[2]), let exampleCount = Int(fields[3]),
                let examples = take(exampleCount), lines.count >= count
            else { return nil }
            var paths: [String] = []
            var labels: [Int32] = []
            paths.reserveCapacity(count)
            labels.reserveCapacity(count)
            for line in lines.prefix(count) {
                guard let tab = line.firstIndex(of: "\t"), let label = Int32(line[..<tab]),
                    label >= 0, Int(label) < classNames.count
                else { return nil }
                labels.append(label)
                paths.append(String(line[line.index(after: tab)...]))
            }
            lines.removeFirst(count)
            splits.append(
                SplitIndex(
                    relativePaths: paths, labels: labels, ignoredFileCount: ignoredCount, ignoredExamples: examples))
        }
        return DatasetIndex(
            root: root, classNames: classNames, train: splits[0], validation: splits[1], validationLayout: layout)
    }
}
