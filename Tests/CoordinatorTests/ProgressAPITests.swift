// Progress reports end to end: the endpoint's answers and bounds on a live coordinator, the job
// views, `/metrics`, the CSV exports, and state changes stored in SQLite across a restart with a
// stall decided on an injected clock.

import Coordinator
import CoordinatorClient
import Foundation
import Logging
import PerformanceRecords
import StrictJSON
import Synchronization
import Testing
import _TestSupport

@Suite("Progress reports on a live coordinator", .serialized)
struct ProgressAPITests {
    func post(_ report: ProgressUpdate, job: String, to coordinator: RunningCoordinator) async throws
        -> HTTPExchangeResponse
    {
        try await coordinator.send("POST", "/v1/jobs/\(job)/progress", body: report.json.serialized)
    }

    @Test("a report sets the state, shows in the job views, /metrics and the CSVs, and logs its line")
    func endToEnd() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var times = Array(repeating: 0.5, count: 8)
        times[3] = 0.8
        for _ in 0..<JobProgress.stragglerReports {
            let answer = try await post(
                makeReport(step: 1200, rankSeconds: times), job: "ghostnet101-imagenet", to: coordinator)
            #expect(answer.status == 200 && answer.bodyText.contains(#""state":"running""#), "\(answer.bodyText)")
        }
        #expect(
            try await coordinator.post(makeRecord([("accuracy_top1", 0.5)]), job: "ghostnet101-imagenet").status == 201)

        let job = try await coordinator.send("GET", "/v1/jobs/ghostnet101-imagenet")
        #expect(job.status == 200)
        #expect(job.bodyText.contains(#""state":"running""#) && job.bodyText.contains(#""median_step_seconds":0.5"#))
        #expect(job.bodyText.contains(#"{"rank":3,"host":"node0","step_seconds":0.8,"median_seconds":0.5}"#))
        let list = try await coordinator.send("GET", "/v1/jobs")
        #expect(
            list.bodyText.contains(
                #""line":"job ghostnet101-imagenet running: epoch 3/120 step 1200/10009 400 img/s ETA 9d 4h""#))
        #expect(try await coordinator.send("GET", "/v1/jobs/nobody").status == 404)

        let metrics = try await coordinator.send("GET", "/metrics").bodyText
        for sample in [
            #"ghostnet_job_state{job="ghostnet101-imagenet",state="running"} 1"#,
            #"ghostnet_job_state{job="ghostnet101-imagenet",state="stalled"} 0"#,
            #"ghostnet_images_per_second{job="ghostnet101-imagenet"} 400.0"#,
            #"ghostnet_eta_seconds{job="ghostnet101-imagenet"} 792059.0"#,
            #"ghostnet_slowest_rank_step_seconds{job="ghostnet101-imagenet"} 0.8"#,
            #"ghostnet_median_rank_step_seconds{job="ghostnet101-imagenet"} 0.5"#,
            #"ghostnet_straggler{job="ghostnet101-imagenet",rank="3",host="node0"} 1"#,
        ] {
            #expect(metrics.contains(sample + "\n"), "\(sample)")
        }
        let progressCSV = try await coordinator.send("GET", "/v1/jobs/ghostnet101-imagenet/progress.csv")
        #expect(progressCSV.status == 200 && progressCSV.bodyText.split(separator: "\r\n").count == 6)
        let recordsCSV = try await coordinator.send("GET", "/v1/jobs/ghostnet101-imagenet/records.csv")
        #expect(
            recordsCSV.bodyText == "worker_id,rank,epoch,step,timestamp,accuracy_top1\r\n0,0,0,0,1700000000.0,0.5\r\n")
        #expect(try await coordinator.send("GET", "/v1/jobs/nobody/progress.csv").status == 404)
        await coordinator.stop()

        let lines = coordinator.logText.split(separator: "\n")
        #expect(
            lines.contains {
                $0.hasSuffix(" INFO job ghostnet101-imagenet running: epoch 3/120 step 1200/10009 400 img/s ETA 9d 4h")
            })
        #expect(lines.filter { $0.contains("straggler: rank 3 on node0") }.count == 1)
    }

    @Test("bad reports: 422 naming the field, 400 for bad JSON or job name, 413 past the body limit; nothing applied")
    func refusedAtEntry() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        let valid = makeReport().json.serialized
        let stalled = valid.replacingOccurrences(of: #""state":"running""#, with: #""state":"stalled""#)
        #expect(try await coordinator.send("POST", "/v1/jobs/j/progress", body: stalled).status == 422)
        #expect(try await coordinator.send("POST", "/v1/jobs/j/progress", body: "{").status == 400)
        #expect(try await coordinator.send("POST", "/v1/jobs/bad!name/progress", body: valid).status == 400)
        let hosts = Array(repeating: String(repeating: "h", count: 128), count: ProgressUpdate.maximumRanks)
        var huge = makeReport(rankSeconds: Array(repeating: 0.5, count: ProgressUpdate.maximumRanks))
        huge.rankHosts = hosts
        #expect(try await coordinator.send("POST", "/v1/jobs/j/progress", body: huge.json.serialized).status == 413)
        #expect(try await coordinator.send("GET", "/v1/jobs/j").status == 404)
        await coordinator.stop()
    }

    @Test(
        "`follow` prints progress, Best values and state lines and exits 0 when the job finishes; `jobs` lists it"
    )
    func followAndJobs() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = "follow-token-0123456789"
        let tokenFile = directory.appendingPathComponent("token")
        try Data((token + "\n").utf8).write(to: tokenFile)
        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory.appendingPathComponent("coordinator"), token: token)
        let url = "http://127.0.0.1:\(coordinator.endpoint.port)"
        let body = makeReport(step: 1200).json.serialized
        #expect(try await coordinator.send("POST", "/v1/jobs/run-a/progress", body: body, token: token).status == 200)
        #expect(try await coordinator.post(makeRecord([("accuracy_top1", 0.5)]), job: "run-a").status == 201)

        let arguments = ["follow", "run-a", "--coordinator", url, "--token-file", tokenFile.path, "--interval", "0.2"]
        async let followed = offCooperativePool { try BuiltProducts.runGhostnet(arguments, timeout: 60) }
        try await Task.sleep(for: .seconds(1.5))
        let finished = makeReport(.finished, step: 1300).json.serialized
        #expect(
            try await coordinator.send("POST", "/v1/jobs/run-a/progress", body: finished, token: token).status == 200)
        let result = try await followed
        #expect(result.status == 0, "\(result.standardError)")
        #expect(
            result.standardOutput == """
                Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.5}}]
                job run-a running: epoch 3/120 step 1200/10009 400 img/s ETA 9d 4h
                job run-a finished: epoch 3/120 step 1300/10009 400 img/s ETA 9d 4h

                """)

        let jobs = try BuiltProducts.runGhostnet(["jobs", "--coordinator", url, "--token-file", tokenFile.path])
        let lines = jobs.standardOutput.split(separator: "\n")
        #expect(jobs.status == 0 && lines.count == 2, "\(jobs.standardOutput)\(jobs.standardError)")
        #expect(
            lines.first?.hasPrefix("JOB    STATE     FOR") == true && lines.last?.hasPrefix("run-a  finished  ") == true
        )
        #expect(
            lines.last?.hasSuffix("  1        job run-a finished: epoch 3/120 step 1300/10009 400 img/s ETA 9d 4h")
                == true)
        let unauthorized = try BuiltProducts.runGhostnet(["jobs", "--coordinator", url])
        #expect(unauthorized.status != 0 && unauthorized.standardError.contains("401"))
        await coordinator.stop()
    }

    @Test("state changes are stored: a stall decided on the injected clock is the state after a restart")
    func stallSurvivesRestart() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = CoordinatorConfiguration(dataDirectory: directory.path, logsToStandardOutput: false)
        let sink = try LogSink(path: directory.appendingPathComponent("c.log").path, writesToStandardOutput: false)
        let logger = Logger(label: "test") { _ in CoordinatorLogHandler(sink: sink) }
        let now = Mutex(1000.0)
        let service = try CoordinatorService(configuration: configuration, logger: logger) { now.withLock { $0 } }
        #expect(try await service.receive(makeReport(.starting), job: "j") == .starting)
        #expect(try await service.receive(makeReport(.running, interval: 10), job: "j") == .running)
        now.withLock { $0 = 1031 }
        await service.checkStalls()
        #expect(service.progress("j")?.state == .stalled)
        try service.store.close()

        let reopened = try CoordinatorService(configuration: configuration, logger: logger) { 1032 }
        let restored = try #require(reopened.progress("j"))
        #expect(restored.state == .stalled && restored.stateSince == 1031 && restored.history.count == 2)
        #expect(try await reopened.receive(makeReport(.finished), job: "j") == .finished)
        try reopened.store.close()
        let log = try String(contentsOfFile: directory.appendingPathComponent("c.log").path, encoding: .utf8)
        #expect(log.contains("INFO job j stalled: no progress for 31s (a report was expected every 10s)"))
        #expect(log.contains("INFO job j finished: epoch 3/120"))
    }
}
