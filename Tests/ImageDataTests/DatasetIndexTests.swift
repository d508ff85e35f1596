// Dataset indexes: labels and counts for both validation layouts, the flat labels file, broken layouts named
// with what was expected, and the cache reused until a folder changes.

import Foundation
import ImageData
import Testing
import _TestSupport

@Suite struct DatasetIndexTests {
    @Test(arguments: SyntheticDataset.ValidationLayoutKind.allCases)
    func labelsAndCountsForBothValidationLayouts(layout: SyntheticDataset.ValidationLayoutKind) throws {
        let root = try Fixtures.synthetic(classes: 3, train: 4, val: 2, layout: layout)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: root + "/train/n00000001/README.txt"))
        try Data().write(to: URL(fileURLWithPath: root + "/train/n00000002/photo.JpG"))

        let index = try DatasetIndex.scan(dataPath: root)
        #expect(index.classNames == ["n00000000", "n00000001", "n00000002"])
        #expect(index.train.count == 13)
        #expect(index.train.ignoredFileCount == 1)
        #expect(index.train.ignoredExamples == ["train/n00000001/README.txt"])
        #expect(index.validation.count == 6)
        for (path, label) in zip(index.train.relativePaths, index.train.labels) {
            #expect(path.hasPrefix("train/\(index.classNames[Int(label)])/"), "\(path) labelled \(label)")
        }
        // Validation images are numbered round-robin over the classes by the generator.
        for (path, label) in zip(index.validation.relativePaths, index.validation.labels) {
            let number = Int(path.suffix(13).prefix(8))!
            #expect(Int(label) == (number - 1) % 3, "\(path) labelled \(label)")
        }
        switch (layout, index.validationLayout) {
        case (.folders, .classFolders): break
        case (.flat, .flat(let labelsFile)): #expect(labelsFile == root + "/LOC_val_solution.csv")
        default: Issue.record("layout \(layout) scanned as \(index.validationLayout)")
        }
    }

    @Test func flatLabelsFileInTheParentFolder() throws {
        let parent = try Fixtures.synthetic(layout: .flat)
        let nested = parent + "/Data/CLS-LOC"
        try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: true)
        for name in ["train", "val"] {
            try FileManager.default.moveItem(atPath: parent + "/" + name, toPath: nested + "/" + name)
        }
        try FileManager.default.moveItem(
            atPath: parent + "/LOC_val_solution.csv", toPath: parent + "/Data/LOC_val_solution.csv")
        let index = try DatasetIndex.scan(dataPath: nested)
        #expect(index.validation.count == 6)
        #expect(index.validationLayout == .flat(labelsFile: parent + "/Data/LOC_val_solution.csv"))
    }

    @Test func brokenLayoutsSayWhatWasExpected() throws {
        let empty = try Fixtures.folder()
        var error = #expect(throws: DataError.self) { try DatasetIndex.scan(dataPath: empty) }
        #expect(error?.kind == .layout)
        #expect(error?.description.contains("expected train/<wnid>/*.JPEG") == true)

        let flat = try Fixtures.synthetic(layout: .flat)
        try FileManager.default.removeItem(atPath: flat + "/LOC_val_solution.csv")
        error = #expect(throws: DataError.self) { try DatasetIndex.scan(dataPath: flat) }
        #expect(error?.description.contains("LOC_val_solution.csv") == true)

        let unknownClass = try Fixtures.synthetic()
        try FileManager.default.createDirectory(
            atPath: unknownClass + "/val/n99999999", withIntermediateDirectories: true)
        error = #expect(throws: DataError.self) { try DatasetIndex.scan(dataPath: unknownClass) }
        #expect(error?.path == unknownClass + "/val/n99999999")
        #expect(error?.description.contains("is not a class of train/") == true)
    }

    @Test func cacheIsReusedUntilAFolderChanges() throws {
        let root = try Fixtures.synthetic()
        let cache = IndexCache.directory(try Fixtures.folder())
        let first = try DatasetIndex.load(dataPath: root, cache: cache)
        #expect(!first.fromCache)
        let second = try DatasetIndex.load(dataPath: root, cache: cache)
        #expect(second.fromCache)
        #expect(second.index.train.relativePaths == first.index.train.relativePaths)
        #expect(second.index.train.labels == first.index.train.labels)
        #expect(second.index.validation.relativePaths == first.index.validation.relativePaths)

        // A new image changes its class folder's modification time: the cache is stale.
        try FileManager.default.copyItem(
            atPath: root + "/" + first.index.train.relativePaths[0], toPath: root + "/train/n00000002/extra.jpeg")
        let third = try DatasetIndex.load(dataPath: root, cache: cache)
        #expect(!third.fromCache)
        #expect(third.index.train.count == first.index.train.count + 1)
        #expect(try DatasetIndex.load(dataPath: root, cache: cache).fromCache)
    }
}
