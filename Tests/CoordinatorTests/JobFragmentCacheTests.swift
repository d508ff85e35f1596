// The per-job fragment cache behind `/metrics`, `/v1/jobs` and the dashboard: after every kind of
// change its output equals a fresh full render, the metrics page stays valid exposition text, and on
// a live coordinator a read after a write sees the write even when the previous read filled the cache.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import TensorEngine
import Testing
import _TestSupport

@Suite("Job fragment cache for /metrics, /v1/jobs and the dashboard", .serialized)
struct JobFragmentCacheTests {
    /// The three pages from `cache` equal a fresh render of `state`, and parse: `/v1/jobs` as the JSON
    /// of every job's summary, `/metrics` with each family's HELP and TYPE once and its samples together.
    func expectFresh(_ cache: JobFragmentCache, _ state: CoordinatorState, after step: String) throws {
        // Two clocks: the ages in the job table follow `now`, the cached sections do not depend on it.
        for now in [5_000.0, 9_000.0] {
            #expect(cache.dashboardHTML(state, now: now) == DashboardPage.render(state, now: now), "after \(step)")
        }
        let metrics = cache.metricsText(state)
        #expect(metrics == MetricsText.render(state), "after \(step)")
        let jobs = cache.jobsJSON(state)
        #expect(jobs == JSONResponse.jobList(state).serialized, "after \(step)")
        #expect(try JSONValue(parsing: jobs) == JSONResponse.jobList(state), "after \(step)")
        var seen: Set<String> = []
        var current = ""
        for line in metrics.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let words = line.split(separator: " ")
            if line.hasPrefix("# HELP ") {
                current = String(words[2])
                #expect(seen.insert(current).inserted, "family \(current) twice after \(step)")
            } else if line.hasPrefix("# TYPE ") {
                #expect(words[2] == current && (words[3] == "gauge" || words[3] == "counter"), "\(line)")
            } else {
                // A sample belongs to the family whose header came last, so each family's samples are together.
                let name = line.prefix { $0 != "{" && $0 != " " }
                #expect(name == current, "sample \(line) outside its family \(current) after \(step)")
            }
        }
        #expect(metrics.hasSuffix("\n"))
    }

    @Test("after records, progress, stalls, state changes and new jobs the cache equals a fresh render")
    func equalsFreshRender() throws {
        var generator = SeededRandom(seed: 16)
        var state = CoordinatorState(objectives: nil)
        let cache = JobFragmentCache()
        try expectFresh(cache, state, after: "no jobs")
        let jobs = ["a", "b-progress", "c", "d-late"]
        var now = 1000.0
        var slow = Array(repeating: 0.5, count: 8)
        slow[5] = 0.9
        for round in 0..<40 {
            now += 10
            let job = jobs[Int(generator.next() % (round < 20 ? 3 : 4))]
            switch generator.next() % 5 {
            case 0, 1:
                let metrics = [("accuracy_top1", Double(generator.next() % 100) / 100), ("loss", Double(round))]
                state.append(makeRecord(worker: "0", epoch: round, step: round, metrics), job: job)
            case 2:
                // Straggler reports: rank 5 is flagged after 5 of them on the same job.
                _ = state.apply(makeReport(step: round, rankSeconds: slow), job: job, now: now)
            case 3:
                _ = state.apply(makeReport(step: round, imagesPerSecond: Double(round)), job: job, now: now)
            default:
                _ = state.apply(JobStateReport(state: .restarting, message: "restart \(round)"), job: job, now: now)
            }
            if round % 7 == 6 { _ = state.checkStalls(now: now + 1000) }
            // Reading only every other change leaves several jobs changed between two reads.
            if round % 2 == 1 { try expectFresh(cache, state, after: "change \(round) to \(job)") }
        }
        #expect(state.allJobNames == jobs)
        // Then, for certain: a straggler flagged after 5 slow reports, and every reporting job stalled.
        for _ in 0..<JobProgress.stragglerReports {
            now += 10
            _ = state.apply(makeReport(rankSeconds: slow), job: "b-progress", now: now)
        }
        #expect(state.progress["b-progress"]!.stragglers.map(\.rank) == [5])
        try expectFresh(cache, state, after: "the straggler")
        #expect(!state.checkStalls(now: now + 1000).isEmpty && state.progress["b-progress"]!.state == .stalled)
        try expectFresh(cache, state, after: "the stalls")
        // A repeated read of an unchanged state gives the same pages.
        #expect(cache.metricsText(state) == MetricsText.render(state))
    }

    @Test("a cache read of an older snapshot after a newer one still shows the older one")
    func olderSnapshot() throws {
        var state = CoordinatorState(objectives: nil)
        state.append(makeRecord(epoch: 0, [("accuracy_top1", 0.25)]), job: "j")
        let older = state
        state.append(makeRecord(epoch: 1, [("accuracy_top1", 0.75)]), job: "j")
        let cache = JobFragmentCache()
        try expectFresh(cache, state, after: "the newer snapshot")
        try expectFresh(cache, older, after: "the older snapshot")
        try expectFresh(cache, state, after: "the newer snapshot again")
    }

    @Test("on a live coordinator a read after a write sees the write, with the cache warm")
    func readYourWrites() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        for epoch in 0..<3 {
            // Both pages are read before each write, so the job's fragments are cached when it changes.
            _ = try await coordinator.send("GET", "/metrics")
            _ = try await coordinator.send("GET", "/v1/jobs")
            _ = try await coordinator.send("GET", "/")
            #expect(try await coordinator.post(makeRecord(epoch: epoch, [("accuracy_top1", 0.5)])).status == 201)
            let metrics = try await coordinator.send("GET", "/metrics").bodyText
            #expect(metrics.contains("ghostnet_coordinator_records_stored{job=\"job\"} \(epoch + 1)\n"), "\(metrics)")
            let jobs = try await coordinator.send("GET", "/v1/jobs").bodyText
            #expect(jobs.contains(#"{"name":"job","records":\#(epoch + 1),"#), "\(jobs)")
            let dashboard = try await coordinator.send("GET", "/").bodyText
            #expect(dashboard.contains("<p>\(epoch + 1) records; objectives "), "\(dashboard)")
        }
        let progress = try await coordinator.send(
            "POST", "/v1/jobs/job/progress", body: makeReport(.running, imagesPerSecond: 123).json.serialized)
        #expect(progress.status == 200)
        #expect(
            try await coordinator.send("GET", "/metrics").bodyText.contains(
                "ghostnet_images_per_second{job=\"job\"} 123.0\n"))
        #expect(try await coordinator.send("GET", "/v1/jobs").bodyText.contains(#""state":"running""#))
        let finished = try await coordinator.send(
            "POST", "/v1/jobs/job/progress", body: makeReport(.finished).json.serialized)
        #expect(finished.status == 200)
        #expect(try await coordinator.send("GET", "/v1/jobs").bodyText.contains(#""state":"finished""#))
        #expect(try await coordinator.send("GET", "/").bodyText.contains(">finished</span></h2>"))
        #expect(
            try await coordinator.send("GET", "/metrics").bodyText.contains(
                "ghostnet_job_state{job=\"job\",state=\"finished\"} 1\n"))
        await coordinator.stop()
    }
}
