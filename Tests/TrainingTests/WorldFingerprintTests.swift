// Fingerprints of the world a rank sees: stable for the same inputs, changed by one class folder,
// one file, one config value or the kernels, and the digest's wire form.

import Foundation
import ImageData
import Testing
import Training
import _TestSupport

/// A dataset of empty `.JPEG` files (the index lists names; nothing is decoded): `classes` train
/// folders of `perClass` files each and one val file per class.
func writeListingDataset(classes: [String], perClass: Int = 3) throws -> String {
    let root = try TemporaryDirectory.make(prefix: "ghostnet-world")
    for wnid in classes {
        for split in ["train", "val"] {
            let folder = root.appendingPathComponent("\(split)/\(wnid)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<(split == "train" ? perClass : 1) {
                _ = FileManager.default.createFile(
                    atPath: folder.appendingPathComponent("\(wnid)_\(index).JPEG").path, contents: nil)
            }
        }
    }
    return root.path
}

/// A training configuration with the given epochs and data path.
func worldConfiguration(epochs: Int = 2, dataPath: String = "/data/imagenet") throws -> TrainingConfiguration {
    let yaml = """
        pipeline: [fully_train]
        fully_train:
            model:
                model_desc:
                    type: ghostnet_d.ghostnet50
            trainer:
                epochs: \(epochs)
            dataset:
                common:
                    data_path: \(dataPath)
                    n_class: 4
        """
    return try TrainingConfiguration.parse(
        yaml: yaml, file: "world.yml", currentDirectory: URL(fileURLWithPath: "/work/run"))
}

func fingerprint(
    dataPath: String, epochs: Int = 2,
    kernels: WorldFingerprint.Kernels = .init(openBLAS: "Haswell", packed: "AVX2 6×16"),
    threads: Int = 2
) throws -> WorldFingerprint {
    WorldFingerprint(
        dataset: DatasetFingerprint(index: try DatasetIndex.scan(dataPath: dataPath)),
        configuration: WorldFingerprint.configurationLines(try worldConfiguration(epochs: epochs)),
        build: .init(version: "0.1.0", executableChecksum: 0x1234_5678), kernels: kernels, threads: threads)
}

/// The fields whose checksums differ between `a` and `b`.
func changedFields(_ a: WorldFingerprint, _ b: WorldFingerprint) -> [WorldFingerprint.Field] {
    WorldVerdict.differingFields([a.digest, b.digest])
}

@Suite struct WorldFingerprintTests {
    static let classes = ["n00000001", "n00000002", "n00000003", "n00000004"]

    @Test func sameInputsGiveTheSameDigest() throws {
        let first = try writeListingDataset(classes: Self.classes)
        let copy = try writeListingDataset(classes: Self.classes)
        let a = try fingerprint(dataPath: first)
        let b = try fingerprint(dataPath: copy)
        #expect(a == b)
        #expect(a.digest.bytes == b.digest.bytes)
        #expect(a.digest.bytes.count == WorldDigest.byteCount)
        #expect(a.dataset.splits.map(\.fileCount) == [12, 4])
    }

    @Test func renamedClassFolderChangesOnlyTheDataset() throws {
        let path = try writeListingDataset(classes: Self.classes)
        let before = try fingerprint(dataPath: path)
        try FileManager.default.moveItem(atPath: path + "/train/n00000003", toPath: path + "/train/n00000009")
        try FileManager.default.moveItem(atPath: path + "/val/n00000003", toPath: path + "/val/n00000009")
        let after = try fingerprint(dataPath: path)
        #expect(after.dataset.classNames.count == before.dataset.classNames.count)
        #expect(changedFields(before, after) == [.dataset])
    }

    @Test func missingFileChangesItsClassCount() throws {
        let path = try writeListingDataset(classes: Self.classes)
        let before = try fingerprint(dataPath: path)
        try FileManager.default.removeItem(atPath: path + "/train/n00000002/n00000002_1.JPEG")
        let after = try fingerprint(dataPath: path)
        #expect(changedFields(before, after) == [.dataset])
        #expect(after.dataset.splits[0].counts == [3, 2, 3, 3])
    }

    @Test func renamedFileChangesItsClassChecksumOnly() throws {
        let path = try writeListingDataset(classes: Self.classes)
        let before = try fingerprint(dataPath: path)
        try FileManager.default.moveItem(
            atPath: path + "/train/n00000004/n00000004_0.JPEG", toPath: path + "/train/n00000004/n00000004_7.JPEG")
        let after = try fingerprint(dataPath: path)
        #expect(changedFields(before, after) == [.dataset])
        #expect(after.dataset.splits[0].counts == before.dataset.splits[0].counts)
        let changed = zip(before.dataset.splits[0].pathChecksums, after.dataset.splits[0].pathChecksums).map {
            $0 != $1
        }
        #expect(changed == [false, false, false, true])
    }

    @Test func oneConfigValueChangesOnlyTheConfig() throws {
        let path = try writeListingDataset(classes: Self.classes)
        let a = try fingerprint(dataPath: path, epochs: 2)
        let b = try fingerprint(dataPath: path, epochs: 3)
        #expect(changedFields(a, b) == [.configuration])
        #expect(a.configuration.contains("fully_train.trainer.epochs: 2"))
        #expect(b.configuration.contains("fully_train.trainer.epochs: 3"))
    }

    /// The data path's contents are the dataset field; where a copy lives is not the config's business.
    @Test func dataPathAndThreadRequestAreLeftToOtherFields() throws {
        let lines = WorldFingerprint.configurationLines(try worldConfiguration(dataPath: "/elsewhere/imagenet"))
        #expect(lines == WorldFingerprint.configurationLines(try worldConfiguration()))
        #expect(!lines.contains { $0.contains("data_path") || $0.hasPrefix("runtime.threads:") })
        #expect(lines.contains("fully_train.trainer.epochs: 2"))
    }

    @Test func kernelsAndThreadsChangeTheirOwnFields() throws {
        let path = try writeListingDataset(classes: Self.classes)
        let haswell = try fingerprint(dataPath: path)
        let skylake = try fingerprint(dataPath: path, kernels: .init(openBLAS: "SkylakeX", packed: "AVX-512 6×32"))
        #expect(changedFields(haswell, skylake) == [.kernels])
        #expect(changedFields(haswell, try fingerprint(dataPath: path, threads: 4)) == [.threads])
    }

    @Test func digestRoundTripsThroughItsBytes() {
        let digest = WorldDigest(checksums: [1, 0xFFFF_FFFF, 3, 0x8000_0000, 5, 6])
        #expect(WorldDigest(bytes: digest.bytes) == digest)
        var foreign = digest.bytes
        foreign[0] = 9
        #expect(WorldDigest(bytes: foreign).format == 9)
        #expect(WorldVerdict.differingFields([digest, WorldDigest(bytes: foreign)]) == [.build])
    }

    /// The running executable is read and checksummed; the result is stable within the process.
    @Test func buildOfThisProcessHasAnExecutableChecksum() {
        let build = WorldFingerprint.Build.current
        #expect(build.executableChecksum != nil)
        #expect(build == WorldFingerprint.Build.current)
    }
}
