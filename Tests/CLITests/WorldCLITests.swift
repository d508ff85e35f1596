// `mpirun` jobs whose two ranks see different worlds (MPMD: `-np 1 A : -np 1 B`): each stops before
// step 1 naming the difference; an identical world passes and trains; `diagnose world` prints it.

import Foundation
import Testing
import _TestSupport

extension MPIJobs {
    @Suite(.serialized, .enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
    struct WorldCLITests {
        static let rankTable = BuiltProducts.packageRoot.appendingPathComponent("rank_tables/rank_table_1x2.json").path
        /// 4 classes (n00000000-n00000003) × 8 train JPEGs, 2 val each; copied and altered per test.
        static var dataset: String { TrainerCLITests.dataset }

        /// The tiny training configuration of ``TrainerCLITests`` in `folder`, copied to `name` with
        /// `epochs`.
        static func writeConfiguration(in folder: URL, name: String = "train.yml", epochs: Int = 1) throws -> String {
            let written = try TrainerCLITests.writeConfiguration(in: folder)
            let text = try String(contentsOfFile: written, encoding: .utf8)
            try FileManager.default.removeItem(atPath: written)
            let path = folder.appendingPathComponent(name).path
            try text.replacingOccurrences(of: "epochs: 1\n", with: "epochs: \(epochs)\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// A copy of ``dataset`` changed by `alter` (given the copy's path).
        static func alteredCopy(_ alter: (String) throws -> Void) throws -> String {
            let copy = try TemporaryDirectory.make(prefix: "ghostnet-world-copy").appendingPathComponent("data").path
            try FileManager.default.copyItem(atPath: dataset, toPath: copy)
            try alter(copy)
            return copy
        }

        /// Renames class folder `from` to `to` in train/ and val/ (and the files' prefixes stay).
        static func renameClass(_ from: String, to: String, in root: String) throws {
            for split in ["train", "val"] {
                try FileManager.default.moveItem(atPath: "\(root)/\(split)/\(from)", toPath: "\(root)/\(split)/\(to)")
            }
        }

        /// `mpirun` running `first` as rank 0 and `second` as rank 1.
        func mpmd(_ first: [String], _ second: [String], timeout: TimeInterval = 150) throws -> ProcessResult {
            let arguments =
                BuiltProducts.mpirunArguments(ranks: 1, first)
                + [":", "-np", "1", BuiltProducts.ghostnetExecutable.path] + second
            return try BuiltProducts.run(
                BuiltProducts.mpirun!, arguments, environment: ["GHOSTNET_COORDINATOR": ""], timeout: timeout)
        }

        /// Rank 0 trains on ``dataset``, rank 1 on `otherData`; the job must stop before step 1 with
        /// `message`.
        func expectRefusal(otherData: String, message: String, sourceLocation: SourceLocation = #_sourceLocation) throws
        {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-world-run")
            let config = try Self.writeConfiguration(in: folder)
            let train = ["train", "--config", config, "--rank-table", Self.rankTable]
            let result = try mpmd(train, train + ["--data-path", otherData])
            #expect(result.status != 0, "\(result.combined)", sourceLocation: sourceLocation)
            #expect(result.combined.contains(message), "\(result.combined)", sourceLocation: sourceLocation)
            let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: folder.path + "/checkpoints")) ?? []
            #expect(checkpoints.isEmpty, "a refused job wrote \(checkpoints)", sourceLocation: sourceLocation)
        }

        @Test func renamedClassFolderWithTheSameCountStops() throws {
            let copy = try Self.alteredCopy { try Self.renameClass("n00000003", to: "n00000009", in: $0) }
            try expectRefusal(
                otherData: copy,
                message:
                    "dataset differs: server 0 (127.0.0.1, rank 1) and server 0 (127.0.0.1, rank 0) list different "
                    + "train classes; first difference at class 3: n00000003 on rank 0, n00000009 on rank 1")
        }

        @Test func missingClassPlusStrayFolderStops() throws {
            let copy = try Self.alteredCopy { root in
                for split in ["train", "val"] {
                    try FileManager.default.removeItem(atPath: "\(root)/\(split)/n00000001")
                    try FileManager.default.copyItem(
                        atPath: "\(root)/\(split)/n00000000", toPath: "\(root)/\(split)/n00000007")
                }
            }
            try expectRefusal(
                otherData: copy,
                message: "list different train classes; first difference at class 1: n00000001 on rank 0, "
                    + "n00000002 on rank 1; only on rank 0: n00000001; only on rank 1: n00000007")
        }

        @Test func oneMissingFileStops() throws {
            let copy = try Self.alteredCopy { root in
                try FileManager.default.removeItem(atPath: "\(root)/train/n00000002/n00000002_3.JPEG")
            }
            try expectRefusal(
                otherData: copy,
                message:
                    "dataset differs: server 0 (127.0.0.1, rank 1) and server 0 (127.0.0.1, rank 0) hold different "
                    + "train files: 32 on rank 0, 31 on rank 1; first difference at class 2 (n00000002): 8 on rank 0, "
                    + "7 on rank 1")
        }

        @Test func configsDifferingInOneValueStop() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-world-run")
            let first = try Self.writeConfiguration(in: folder, name: "a.yml", epochs: 1)
            let second = try Self.writeConfiguration(in: folder, name: "b.yml", epochs: 2)
            let result = try mpmd(
                ["train", "--config", first, "--rank-table", Self.rankTable],
                ["train", "--config", second, "--rank-table", Self.rankTable])
            #expect(result.status != 0)
            #expect(
                result.combined.contains(
                    "config differs: server 0 (127.0.0.1, rank 1) and server 0 (127.0.0.1, rank 0) resolve different "
                        + "values: fully_train.trainer.epochs is 1 on rank 0, 2 on rank 1"),
                "\(result.combined)")
        }

        @Test func identicalWorldPassesAndTrains() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-world-run")
            let config = try Self.writeConfiguration(in: folder)
            let train = ["train", "--config", config, "--rank-table", Self.rankTable]
            let result = try mpmd(train, train)
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.combined.contains("world: 2 rank(s) agree on"), "\(result.combined)")
            #expect(result.standardOutput.contains("Best values"), "\(result.combined)")
        }

        @Test func diagnoseWorldPrintsEveryServerAndTheVerdict() throws {
            let folder = try TemporaryDirectory.make(prefix: "ghostnet-world-run")
            let config = try Self.writeConfiguration(in: folder)
            let diagnose = ["diagnose", "world", "--config", config, "--rank-table", Self.rankTable]
            let agreeing = try mpmd(diagnose, diagnose)
            #expect(agreeing.status == 0, "\(agreeing.combined)")
            let lines = agreeing.standardOutput.split(separator: "\n")
            #expect(
                lines.first?.hasPrefix(
                    "server 0 (127.0.0.1, ranks 0-1): dataset 4 classes, train 32 files, val 8 files")
                    == true, "\(agreeing.standardOutput)")
            #expect(lines.last == "verdict: every rank agrees; a job may start", "\(agreeing.standardOutput)")

            let copy = try Self.alteredCopy { try Self.renameClass("n00000003", to: "n00000009", in: $0) }
            let refusing = try mpmd(diagnose, diagnose + ["--data-path", copy])
            #expect(refusing.status != 0)
            #expect(refusing.standardOutput.contains("server 0 (127.0.0.1, rank 1): dataset 4 classes"))
            #expect(refusing.standardOutput.contains("error: dataset differs: server 0 (127.0.0.1, rank 1)"))
            #expect(refusing.standardOutput.contains("verdict: the ranks disagree; a job would stop before step 1"))
        }
    }
}
