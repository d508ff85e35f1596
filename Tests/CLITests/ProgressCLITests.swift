// A real training run reporting progress to a real coordinator: the job is announced, its
// progress arrives (only the newest when reports come faster than they are sent), and its end
// is stored and logged as `finished`, or `failed` when the run stops on an error.

import CoordinatorClient
import Foundation
import Testing
import _TestSupport

extension MPIJobs.TrainerCLITests {
    @Test func progressReachesTheCoordinatorAndTheRunEndsFinished() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-progress")
        defer { try? FileManager.default.removeItem(at: folder) }
        let daemon = try CoordinatorProcess(directory: folder)
        let config = try Self.writeConfiguration(in: folder)
        let train = try BuiltProducts.runGhostnet(
            ["train", "--config", config, "--set", "runtime.job_name=progress-run"],
            environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:\(daemon.endpoint.port)"], timeout: 120)
        #expect(train.status == 0, "\(train.combined)")

        let job = try HTTPExchange.send("GET", "/v1/jobs/progress-run", to: daemon.endpoint, timeout: 10).bodyText
        #expect(job.contains(#""state":"finished""#) && job.contains(#""rank_hosts":["#), "\(job)")
        let csv = try HTTPExchange.send("GET", "/v1/jobs/progress-run/progress.csv", to: daemon.endpoint, timeout: 10)
        let rows = csv.bodyText.split(separator: "\r\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        // Columns 2, 3, 5 and 6: state, epoch, step and steps per epoch (8 = 32 images / batch 4).
        #expect(rows.count >= 2 && rows.allSatisfy { ["starting", "running", "finished"].contains($0[2]) })
        #expect(rows.last.map { [$0[2], $0[3], $0[5], $0[6]] } == ["finished", "0", "8", "8"], "\(csv.bodyText)")
        #expect(daemon.terminate() == 0)
        #expect(daemon.log.contains(" INFO job progress-run finished: epoch 1/1 step 8/8 "), "\(daemon.log)")
    }

    @Test func aRunThatStopsOnAnErrorEndsFailed() throws {
        let folder = try TemporaryDirectory.make(prefix: "ghostnet-cli-progress-failed")
        defer { try? FileManager.default.removeItem(at: folder) }
        let daemon = try CoordinatorProcess(directory: folder)
        let blocker = folder.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: blocker)
        let config = try Self.writeConfiguration(in: folder)
        let train = try BuiltProducts.runGhostnet(
            [
                "train", "--config", config, "--set", "runtime.job_name=failing-run", "--set",
                "runtime.checkpoint_dir=\(blocker.path)/checkpoints",
            ],
            environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:\(daemon.endpoint.port)"], timeout: 120)
        #expect(train.status != 0, "\(train.combined)")
        let job = try HTTPExchange.send("GET", "/v1/jobs/failing-run", to: daemon.endpoint, timeout: 10).bodyText
        #expect(job.contains(#""state":"failed""#), "\(job)")
        #expect(daemon.terminate() == 0)
        #expect(daemon.log.contains(" INFO job failing-run failed: epoch 1/1 step 8/8 "), "\(daemon.log)")
    }
}
