// The index of an ImageNet-layout dataset: scanning `train/` and `val/` (class folders or the official flat
// layout with its labels file) into images and class indices in a fixed order.

import Foundation
import TensorEngine

/// The two splits of an ImageNet-layout dataset.
package enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case validation = "val"
}

/// How `val/` is organised.
package enum ValidationLayout: Sendable, Equatable {
    /// `val/<wnid>/*.JPEG`, like `train/`.
    case classFolders
    /// The official flat layout, `val/ILSVRC2012_val_00000001.JPEG` …, labelled by the
    /// `LOC_val_solution.csv` at `labelsFile`.
    case flat(labelsFile: String)
}

/// The images of one split and their class indices, in a fixed order (class, then file name).
package struct SplitIndex: Sendable {
    /// Image paths relative to the dataset root, e.g. `train/n01440764/n01440764_10026.JPEG`.
    package let relativePaths: [String]
    /// The class index of each image (position of its wnid in `DatasetIndex.classNames`).
    package let labels: [Int32]
    /// How many files were skipped because their extension is not .JPEG/.jpg/.jpeg (any case).
    package let ignoredFileCount: Int
    /// Up to `DatasetIndex.ignoredExampleLimit` of the skipped files, relative to the root.
    package let ignoredExamples: [String]

    package var count: Int { relativePaths.count }
}

/// The scanned folder structure of an ImageNet-layout dataset: `train/<wnid>/*.JPEG` and `val/`
/// (class folders, or flat with `LOC_val_solution.csv` in the data path or its parent).
///
/// Class index = position of the wnid in the sorted list of train class folders (the
/// `ImageFolder` convention), so labels agree with other frameworks.
package struct DatasetIndex: Sendable {
    /// The dataset root (the `data_path` holding `train/` and `val/`).
    package let root: String
    /// Train class folder names (wnids), sorted; a label is an index into this list.
    package let classNames: [String]
    package let train: SplitIndex
    package let validation: SplitIndex
    package let validationLayout: ValidationLayout

    /// How many ignored files are remembered by name for reports.
    package static let ignoredExampleLimit = 20
    /// The file that labels a flat `val/`.
    package static let validationLabelsFileName = "LOC_val_solution.csv"

    package subscript(split: DatasetSplit) -> SplitIndex {
        switch split {
        case .train: train
        case .validation: validation
        }
    }

    /// The absolute path of image `index` of `split`.
    package func path(of index: Int, in split: DatasetSplit) -> String {
        root + "/" + self[split].relativePaths[index]
    }

    /// Whether `name` has one of the extensions ImageNet uses (.JPEG, .jpg, .jpeg in any case).
    package static func isImageFileName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return false }
        let ext = name[name.index(after: dot)...].lowercased()
        return ext == "jpeg" || ext == "jpg"
    }

    // MARK: - Scanning

    /// Scans the folders under `dataPath` (no cache).
    ///
    /// - Throws: `DataError` of kind `.layout` naming the folder or file that breaks the layout and
    ///   what was expected.
    package static func scan(dataPath: String) throws(DataError) -> DatasetIndex {
        let root = normalizedRoot(dataPath)
        guard isDirectory(root) else {
            throw DataError(
                .layout, path: root, "no such folder; expected a data path holding train/<wnid>/*.JPEG and val/")
        }
        let trainFolder = root + "/train"
        guard isDirectory(trainFolder) else {
            throw DataError(
                .layout, path: trainFolder, "missing; expected train/<wnid>/*.JPEG class folders (ImageNet layout)")
        }
        let trainListing = try listing(of: trainFolder)
        let classNames = trainListing.directories
        guard !classNames.isEmpty else {
            throw DataError(.layout, path: trainFolder, "holds no class folders; expected train/<wnid>/*.JPEG")
        }
        var builder = SplitBuilder(ignored: trainListing.files.map { "train/" + $0 })
        for (label, wnid) in classNames.enumerated() {
            try builder.addClassFolder(root: root, relative: "train/" + wnid, label: Int32(label))
        }
        let train = builder.finish()
        guard train.count > 0 else {
            throw DataError(
                .layout, path: trainFolder, "holds \(classNames.count) class folders but no .JPEG/.jpg/.jpeg images")
        }

        let (validation, layout) = try scanValidation(root: root, classNames: classNames)
        return DatasetIndex(
            root: root, classNames: classNames, train: train, validation: validation, validationLayout: layout)
    }

    private static func scanValidation(
        root: String, classNames: [String]
    ) throws(DataError) -> (SplitIndex, ValidationLayout) {
        let valFolder = root + "/val"
        let expectation =
            "expected val/<wnid>/*.JPEG class folders, or flat val/*.JPEG with "
            + "\(validationLabelsFileName) in the data path or its parent"
        guard isDirectory(valFolder) else { throw DataError(.layout, path: valFolder, "missing; \(expectation)") }
        let valListing = try listing(of: valFolder)
        let classIndex = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, Int32($0)) })

        if !valListing.directories.isEmpty {
            let strayImages = valListing.files.filter(isImageFileName)
            if !strayImages.isEmpty {
                throw DataError(
                    .layout, path: valFolder,
                    "mixes class folders with \(strayImages.count) images at the top level (e.g. "
                        + "\(strayImages[0])); \(expectation)")
            }
            var builder = SplitBuilder(ignored: valListing.files.map { "val/" + $0 })
            for wnid in valListing.directories {
                guard let label = classIndex[wnid] else {
                    throw DataError(
                        .layout, path: valFolder + "/" + wnid,
                        "is not a class of train/ (\(classNames.count) classes, \(classNames.first!) … "
                            + "\(classNames.last!))")
                }
                try builder.addClassFolder(root: root, relative: "val/" + wnid, label: label)
            }
            return (builder.finish(), .classFolders)
        }

        let images = valListing.files.filter(isImageFileName)
        guard !images.isEmpty else { throw DataError(.layout, path: valFolder, "holds no images; \(expectation)") }
        let candidates = [
            root + "/" + validationLabelsFileName,
            (root as NSString).deletingLastPathComponent + "/" + validationLabelsFileName,
        ]
        guard let labelsFile = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DataError(
                .layout, path: valFolder,
                "holds \(images.count) images directly but neither \(candidates[0]) nor \(candidates[1]) "
                    + "exists; \(expectation)")
        }
        let wnidByImage = try readValidationLabels(labelsFile)
        var builder = SplitBuilder(ignored: valListing.files.filter { !isImageFileName($0) }.map { "val/" + $0 })
        for name in images {
            let stem = (name as NSString).deletingPathExtension
            guard let wnid = wnidByImage[stem] else {
                throw DataError(.layout, path: valFolder + "/" + name, "has no row \(stem) in \(labelsFile)")
            }
            guard let label = classIndex[wnid] else {
                throw DataError(
                    .layout, path: labelsFile, "labels \(stem) as \(wnid), which is not a class folder of train/")
            }
            builder.add(relativePath: "val/" + name, label: label)
        }
        return (builder.finish(), .flat(labelsFile: labelsFile))
    }

    /// Parses `LOC_val_solution.csv`: a header `ImageId,PredictionString`, then one row per image
    /// whose prediction string starts with the wnid.
    static func readValidationLabels(_ path: String) throws(DataError) -> [String: String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DataError(.unreadable, path: path, "cannot read: \(FileErrorText.reason(error))")
        }
        var result: [String: String] = [:]
        for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
            if number == 0 {
                guard fields.first?.trimmingCharacters(in: .whitespaces) == "ImageId" else {
                    throw DataError(
                        .layout, path: path, "first line is \"\(line)\"; expected the header ImageId,PredictionString")
                }
                continue
            }
            guard fields.count == 2, let wnid = fields[1].split(separator: " ").first, !fields[0].isEmpty else {
                throw DataError(
                    .layout, path: path, "line \(number + 1) is \"\(line)\"; expected ImageId,<wnid> <box> …")
            }
            result[String(fields[0])] = String(wnid)
        }
        return result
    }

    /// Accumulates one split's images in order.
    private struct SplitBuilder {
        var paths: [String] = []
        var labels: [Int32] = []
        var ignored: [String]
        var ignoredCount: Int

        init(ignored: [String]) {
            self.ignored = Array(ignored.prefix(DatasetIndex.ignoredExampleLimit))
            self.ignoredCount = ignored.count
        }

        mutating func add(relativePath: String, label: Int32) {
            paths.append(relativePath)
            labels.append(label)
        }

        mutating func addClassFolder(root: String, relative: String, label: Int32) throws(DataError) {
            let contents = try DatasetIndex.listing(of: root + "/" + relative, classifyEntries: false)
            for name in contents.files {
                if DatasetIndex.isImageFileName(name) {
                    add(relativePath: relative + "/" + name, label: label)
                } else {
                    ignoredCount += 1
                    if ignored.count < DatasetIndex.ignoredExampleLimit { ignored.append(relative + "/" + name) }
                }
            }
        }

        func finish() -> SplitIndex {
            SplitIndex(relativePaths: paths, labels: labels, ignoredFileCount: ignoredCount, ignoredExamples: ignored)
        }
    }

    /// The sorted entries of `folder`, split into subfolders and other entries. Without
    /// `classifyEntries` every entry counts as a file (no `stat` per entry: class folders hold
    /// only images, and this is the loop that runs 1.28 M times).
    static func listing(of folder: String, classifyEntries: Bool = true) throws(DataError) -> (
        directories: [String], files: [String]
    ) {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw DataError(.unreadable, path: folder, "cannot list the folder: \(FileErrorText.reason(error))")
        }
        var directories: [String] = []
        var files: [String] = []
        for name in names.sorted() {
            if classifyEntries && isDirectory(folder + "/" + name) {
                directories.append(name)
            } else {
                files.append(name)
            }
        }
        return (directories, files)
    }

    static func isDirectory(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }

    static func normalizedRoot(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }
}
