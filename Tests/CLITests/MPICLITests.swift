// `mpirun -np 2` runs of the built binary: the gradient exchange, fail-fast launch checks, the watchdog, the
// benchmarks and the launch scripts, up to two servers in network namespaces.

import Foundation
import Testing
import _TestSupport

extension MPIJobs {
    /// `mpirun -np 2` runs of the built binary: the gradient exchange on known buffers, fail-fast
    /// launch checks, the watchdog, the benchmark and the launch scripts.
    @Suite(.serialized, .enabled(if: BuiltProducts.mpirun != nil, "needs mpirun"))
    struct MPICLITests {
        func mpirun(
            _ ranks: Int, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120
        ) throws -> ProcessResult {
            try BuiltProducts.run(
                BuiltProducts.mpirun!, BuiltProducts.mpirunArguments(ranks: ranks, arguments), environment: environment,
                timeout: timeout)
        }

        static let demoTable = BuiltProducts.packageRoot.appendingPathComponent("rank_tables/rank_table_1x2.json").path

        /// Odd sizes, many buckets, one bucket larger than the whole buffer, a one-element buffer.
        @Test(arguments: [(1_000_003, 100_000), (77_777, 4), (250_009, 1 << 30), (1, 4)])
        func exchangeAveragesKnownBuffers(elements: Int, bucketBytes: Int) throws {
            let result = try mpirun(
                2,
                [
                    "diagnose", "allreduce", "--rank-table", Self.demoTable,
                    "--elements", "\(elements)", "--bucket-bytes", "\(bucketBytes)", "--collective-timeout", "60",
                ])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardOutput.contains("exchange of \(elements) floats in"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("over 2 rank(s), 2 steps: ok"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("parameter checksums agree on 2 rank(s)"))
            #expect(result.standardError.contains("rank 1/2 server 0 '127.0.0.1' device 1"), "\(result.standardError)")
        }

        @Test func worldSizeNotMatchingTheTableFailsFast() throws {
            let table = BuiltProducts.packageRoot.appendingPathComponent("rank_tables/rank_table_1x8.json").path
            let result = try mpirun(2, ["diagnose", "allreduce", "--rank-table", table], timeout: 60)
            #expect(result.status != 0)
            #expect(result.standardError.contains("MPI world size 2 ≠ the rank table's 8 ranks"), "\(result.combined)")
        }

        @Test func rankIDContradictingMPIFailsFast() throws {
            let result = try mpirun(
                2, ["diagnose", "allreduce", "--rank-table", Self.demoTable], environment: ["RANK_ID": "0"], timeout: 60
            )
            #expect(result.status != 0)
            #expect(result.standardError.contains("MPI rank 1 ≠ RANK_ID 0"), "\(result.combined)")
        }

        @Test func divergedParametersStopTheJobNamingRanks() throws {
            let result = try mpirun(
                2, ["diagnose", "allreduce", "--elements", "1001", "--perturb-rank", "1"], timeout: 60)
            #expect(result.status != 0)
            #expect(
                result.standardError.contains("parameters differ across ranks at step 2: rank 0 has checksum"),
                "\(result.combined)")
            #expect(result.standardError.contains("rank 1 has checksum"))
        }

        @Test func watchdogAbortsAHungCollective() throws {
            let result = try mpirun(
                2,
                [
                    "diagnose", "allreduce", "--elements", "1001", "--stall-rank", "1", "--stall-seconds", "30",
                    "--collective-timeout", "1",
                ], timeout: 60)
            #expect(result.status != 0)
            #expect(
                result.standardError.contains(
                    "collective watchdog: rank 0, step 1: gradient bucket 0 of 1 (parameters 0-2, 4004 bytes) not "
                        + "complete after 1.0 s; aborting the MPI job"),
                "\(result.combined)")
        }

        @Test func benchmarkPrintsTheRatioLast() throws {
            let result = try mpirun(
                2, ["bench", "allreduce", "--bytes", "4000000", "--bucket-mib", "1", "--iterations", "2"])
            #expect(result.status == 0, "\(result.combined)")
            let lines = result.standardOutput.split(separator: "\n")
            #expect(lines.count == 4, "\(result.standardOutput)")
            #expect(
                lines.first?.hasPrefix("allreduce benchmark: 2 rank(s), 1000000 floats (4000000 bytes), 4 bucket(s)")
                    == true)
            #expect(lines.last?.hasPrefix("exchange / plain bus bandwidth: ") == true)
            #expect(lines.last?.hasSuffix("%") == true)
        }

        /// A real two-rank training step with the gradient exchange: rank 0 alone prints, its report
        /// names the exchange's overhead and the memory model's prediction, and the JSON (last) carries
        /// the overhead of the two-rank exchange.
        @Test func benchTrainReportsTheExchangeOverhead() throws {
            let result = try mpirun(
                2,
                [
                    "bench", "train", "--arch", "ghostnet50", "--batch", "2", "--image-size", "32", "--threads", "1",
                    "--steps", "1", "--warmup", "0", "--bucket-mib", "1", "--json",
                ])
            #expect(result.status == 0, "\(result.combined)")
            let lines = result.standardOutput.split(separator: "\n")
            #expect(
                lines.filter { $0.hasPrefix("bench train: ghostnet50, batch 2") }.count == 1, "\(result.standardOutput)"
            )
            #expect(lines.filter { $0.hasPrefix("exchange adds ") }.count == 1, "\(result.standardOutput)")
            #expect(
                lines.contains { $0.hasPrefix("memory model (1 pass(es) of at most 2 images): predicted peak ") },
                "\(result.standardOutput)")
            #expect(lines.contains { $0.hasPrefix("exchange over 2 ranks: ") }, "\(result.standardOutput)")
            let json = try #require(lines.last.map(String.init))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            #expect(object["ranks"] as? Int == 2, "\(json)")
            #expect(try #require(object["exchange_overhead_fraction"] as? Double) >= 0, "\(json)")
            #expect(try #require(object["exchange_exposed_seconds"] as? Double) >= 0, "\(json)")
        }

        @Test func runDistributedLaunchesOneProcessPerRank() throws {
            let script = BuiltProducts.packageRoot.appendingPathComponent("deploy/run_distributed.sh")
            let result = try BuiltProducts.run(
                URL(fileURLWithPath: "/bin/bash"), [script.path, Self.demoTable],
                environment: [
                    "GHOSTNET_BIN": BuiltProducts.ghostnetExecutable.path,
                    "GHOSTNET_COMMAND": "diagnose allreduce --elements 4099 --bucket-bytes 1000",
                ],
                timeout: 120)
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardError.contains("ghostnet-d: 2 rank(s) on 1 server(s)"))
            #expect(result.standardOutput.contains("over 2 rank(s), 2 steps: ok"), "\(result.combined)")
        }

        @Test func runDistributedRefusesAMissingTable() throws {
            let script = BuiltProducts.packageRoot.appendingPathComponent("deploy/run_distributed.sh")
            let result = try BuiltProducts.run(
                URL(fileURLWithPath: "/bin/bash"), [script.path, "/nonexistent.json"], timeout: 30)
            #expect(result.status == 1)
            #expect(result.standardError.contains("error: RANK_TABLE_FILE=/nonexistent.json is not a file"))
        }

        @Test func runStandaloneRunsOneProcess() throws {
            let script = BuiltProducts.packageRoot.appendingPathComponent("deploy/run_standalone.sh")
            let result = try BuiltProducts.run(
                URL(fileURLWithPath: "/bin/bash"), [script.path],
                environment: [
                    "GHOSTNET_BIN": BuiltProducts.ghostnetExecutable.path,
                    "GHOSTNET_COMMAND": "diagnose allreduce --elements 99",
                    "RANK_TABLE_FILE": Self.demoTable,
                ],
                timeout: 60)
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.standardOutput.contains("over 1 rank(s), 2 steps: ok"), "\(result.combined)")
        }

        /// Two network namespaces joined by a veth pair stand for two servers (skipped without root).
        @Test func twoServersInNetworkNamespaces() throws {
            let script = BuiltProducts.packageRoot.appendingPathComponent("deploy/test_netns_multinode.sh")
            let result = try BuiltProducts.run(
                URL(fileURLWithPath: "/bin/bash"), [script.path, BuiltProducts.ghostnetExecutable.path], timeout: 150)
            #expect(result.status == 0, "\(result.combined)")
            #expect(
                result.standardOutput.contains("PASSED") || result.standardOutput.contains("SKIPPED"),
                "\(result.combined)")
        }
    }
}
