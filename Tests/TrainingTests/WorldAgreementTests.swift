// The world verdict's wording (servers, ranks and values on each side), the kernel policy, and the
// agreement over a group of in-process ranks.

import Distributed
import Foundation
import Testing
import Training
import _TestSupport

@Suite struct WorldAgreementTests {
    /// A fingerprint whose dataset has one train file per class of `classNames`.
    static func fingerprint(
        classNames: [String], configuration: [String] = ["fully_train.trainer.epochs: 2"],
        kernels: WorldFingerprint.Kernels = .init(openBLAS: "Haswell", packed: "AVX2 6×16")
    ) -> WorldFingerprint {
        let paths = classNames.map { "train/\($0)/\($0)_0.JPEG" }
        let dataset = DatasetFingerprint(
            classNames: classNames,
            splits: [(name: "train", relativePaths: paths, labels: paths.indices.map(Int32.init))])
        return WorldFingerprint(
            dataset: dataset, configuration: configuration, build: .init(version: "0.1.0", executableChecksum: 7),
            kernels: kernels, threads: 4)
    }

    /// The verdict every rank reaches from `fingerprints` (indexed by rank) placed by `placements`.
    static func verdict(
        _ fingerprints: [WorldFingerprint], _ placements: [WorldPlacement], allowMixedKernels: Bool = false
    ) -> WorldVerdict {
        let digests = fingerprints.map(\.digest)
        let differing = WorldVerdict.differingFields(digests)
        let reports = zip(fingerprints, placements).map { fingerprint, placement in
            WorldReport(
                placement: placement,
                details: Dictionary(uniqueKeysWithValues: differing.map { ($0, fingerprint.detail($0)) }))
        }
        return WorldVerdict.judge(digests: digests, reports: reports, allowMixedKernels: allowMixedKernels)
    }

    /// Two servers of eight ranks: 0-7 on 10.0.0.1, 8-15 on 10.0.0.2.
    static let twoServers = (0..<16).map {
        WorldPlacement(rank: $0, serverIndex: $0 / 8, serverName: "10.0.0.\($0 / 8 + 1)")
    }

    /// The example: server 1's copy has class 977 under another name, the count unchanged.
    @Test func renamedClassNamesBothServersAndTheFirstDifference() {
        var names = (0..<1000).map { "n\(String(10_000_000 + $0).dropFirst())" }
        names[977] = "n04592741"
        var renamed = names
        renamed[977] = "n04592742"
        let fingerprints = (0..<16).map { Self.fingerprint(classNames: $0 < 8 ? names : renamed) }
        let verdict = Self.verdict(fingerprints, Self.twoServers)
        #expect(verdict.differingFields == [.dataset])
        #expect(
            verdict.errors == [
                "dataset differs: server 1 (10.0.0.2, ranks 8-15) and server 0 (10.0.0.1, ranks 0-7) list different "
                    + "train "
                    + "classes; first difference at class 977: n04592741 on server 0, n04592742 on server 1; "
                    + "only on server 0: n04592741; only on server 1: n04592742"
            ])
    }

    /// `mpirun -np 1 A : -np 1 B` on one host: the sides are ranks of the same server.
    @Test func configDifferenceWithinOneServerNamesRanks() {
        let placements = (0..<2).map { WorldPlacement(rank: $0, serverIndex: 0, serverName: "127.0.0.1") }
        let names = ["n01", "n02"]
        let fingerprints = [
            Self.fingerprint(classNames: names, configuration: ["a.b: 1", "fully_train.trainer.epochs: 2"]),
            Self.fingerprint(classNames: names, configuration: ["a.b: 1", "fully_train.trainer.epochs: 3"]),
        ]
        #expect(
            Self.verdict(fingerprints, placements).errors == [
                "config differs: server 0 (127.0.0.1, rank 1) and server 0 (127.0.0.1, rank 0) resolve different "
                    + "values: "
                    + "fully_train.trainer.epochs is 2 on rank 0, 3 on rank 1"
            ])
    }

    @Test func missingAndStrayClassesAreListed() {
        let placements = (0..<2).map { WorldPlacement(rank: $0, serverIndex: $0, serverName: "node\($0)") }
        let fingerprints = [
            Self.fingerprint(classNames: ["n01", "n02", "n03", "n04"]),
            Self.fingerprint(classNames: ["n01", "n02", "n04", "n05"]),
        ]
        let errors = Self.verdict(fingerprints, placements).errors
        #expect(
            errors == [
                "dataset differs: server 1 (node1, rank 1) and server 0 (node0, rank 0) list different train classes; "
                    + "first difference at class 2: n03 on server 0, n04 on server 1; "
                    + "only on server 0: n03; only on server 1: n05"
            ])
    }

    @Test func kernelDifferencesStopUnlessMixedKernelsAreAllowed() {
        let fingerprints = (0..<16).map {
            Self.fingerprint(
                classNames: ["n01", "n02"],
                kernels: $0 < 8
                    ? .init(openBLAS: "Haswell", packed: "AVX2 6×16")
                    : .init(openBLAS: "SkylakeX", packed: "AVX-512 6×32"))
        }
        let expected =
            "kernels differ: server 1 (10.0.0.2, ranks 8-15) and server 0 (10.0.0.1, ranks 0-7) load different "
            + "kernels: OpenBLAS Haswell with packed AVX2 6×16 on server 0, "
            + "OpenBLAS SkylakeX with packed AVX-512 6×32 on server 1"
        let strict = Self.verdict(fingerprints, Self.twoServers)
        #expect(!strict.isAgreed)
        #expect(
            strict.errors == [expected + "; set runtime.allow_mixed_kernels: true to accept this on a mixed cluster"])
        let mixed = Self.verdict(fingerprints, Self.twoServers, allowMixedKernels: true)
        #expect(mixed.isAgreed)
        #expect(mixed.warnings == [expected + " (accepted: runtime.allow_mixed_kernels is true)"])
    }

    /// Three in-process ranks: identical worlds agree; then rank 2 lacks one file, and every rank
    /// reaches the same verdict naming it.
    @Test func everyRankReachesTheSameVerdict() throws {
        let names = ["n01", "n02", "n03"]
        let same = Self.fingerprint(classNames: names)
        let short = WorldFingerprint(
            dataset: DatasetFingerprint(
                classNames: names,
                splits: [
                    (name: "train", relativePaths: ["train/n01/a.JPEG", "train/n03/c.JPEG"], labels: [0, 2])
                ]),
            configuration: same.configuration, build: same.build, kernels: same.kernels, threads: same.threads)
        for (worlds, expectedErrors) in [
            ([same, same, same], []),
            (
                [same, same, short],
                [
                    "dataset differs: server 0 (host, rank 2) and server 0 (host, ranks 0-1) hold different "
                        + "train files: "
                        + "3 on ranks 0-1, 2 on rank 2; first difference at class 1 (n02): 1 on ranks 0-1, 0 on rank 2"
                ]
            ),
        ] {
            let communicators = LocalCommunicator.group(size: 3, collectiveTimeout: .seconds(30))
            let results = runOnThreads(3) { rank in
                try WorldAgreement.reach(
                    worlds[rank], placement: WorldPlacement(rank: rank, serverIndex: 0, serverName: "host"),
                    communicator: communicators[rank], allowMixedKernels: false)
            }
            for result in results {
                let agreement = try result.get()
                #expect(agreement.verdict.errors == expectedErrors)
                #expect(agreement.digests == worlds.map(\.digest))
            }
        }
    }
}
