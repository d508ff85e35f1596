// The job lifecycle as pure state on an injected clock (stalled and back, terminal states),
// straggler detection on synthetic step times, min/max-preserving downsampling, the CSV exports
// and the bounds of a progress report at entry.

import Coordinator
import Foundation
import PerformanceRecords
import StrictJSON
import TensorEngine
import Testing
import _TestSupport

/// A report of `state` with the given per-rank step times (8 ranks of 0.5 s unless given).
func makeReport(
    _ state: JobState = .running, step: Int = 100, loss: Double = 2.5, imagesPerSecond: Double = 400,
    interval: Double = 10, rankSeconds: [Double] = Array(repeating: 0.5, count: 8)
) -> ProgressUpdate {
    ProgressUpdate(
        state: state, epoch: 2, epochs: 120, step: step, stepsPerEpoch: 10009, trainLoss: loss, learningRate: 0.1,
        imagesPerSecond: imagesPerSecond, dataSeconds: 0.05, computeSeconds: 0.4, communicationSeconds: 0.05,
        etaSeconds: 9 * 86_400 + 4 * 3600 + 59, intervalSeconds: interval, rankStepSeconds: rankSeconds,
        rankHosts: rankSeconds.indices.map { "node\($0 / 4)" }, timestamp: 1_700_000_000)
}

@Suite("Job lifecycle, stragglers, downsampling and CSV")
struct JobProgressTests {
    @Test("running, stalled after 3 missed intervals, running again when reports resume; terminal states never stall")
    func stalledAndBack() {
        var job = JobProgress(name: "ghostnet101-imagenet", now: 1000)
        #expect(job.state == .starting)
        let started = job.apply(makeReport(.starting), now: 1000)
        #expect(started.stateChange == nil && job.state == .starting)
        let running = job.apply(makeReport(.running, step: 1200, imagesPerSecond: 412.4), now: 1010)
        #expect(running.stateChange == .running)
        #expect(running.lines == ["job ghostnet101-imagenet running: epoch 3/120 step 1200/10009 412 img/s ETA 9d 4h"])
        // interval 10 s: 29.9 s of silence is still running, 30.1 s is stalled, logged once.
        #expect(job.checkStall(now: 1039.9).stateChange == nil && job.state == .running)
        let stalled = job.checkStall(now: 1040.1)
        #expect(stalled.stateChange == .stalled && job.state == .stalled && job.stateSince == 1040.1)
        #expect(
            stalled.lines == ["job ghostnet101-imagenet stalled: no progress for 30s (a report was expected every 10s)"]
        )
        let quiet = job.checkStall(now: 5000)
        #expect(quiet.stateChange == nil && quiet.lines.isEmpty)
        let resumed = job.apply(makeReport(.running), now: 5001)
        #expect(resumed.stateChange == .running && job.state == .running)
        // A report in the same state logs a progress line at most once a minute.
        #expect(job.apply(makeReport(.running), now: 5002).lines.isEmpty)
        #expect(job.apply(makeReport(.running), now: 5061).lines.count == 1)
        for terminal in [JobState.finished, .failed, .preempted] {
            var ended = JobProgress(name: "j", now: 0)
            #expect(ended.apply(makeReport(terminal), now: 1).stateChange == terminal)
            let later = ended.checkStall(now: 1_000_000)
            #expect(later.stateChange == nil && later.lines.isEmpty && ended.state == terminal)
        }
    }

    @Test("a zero interval waits 3 s, not 0, before a job counts as stalled")
    func zeroInterval() {
        var job = JobProgress(name: "j", now: 0)
        _ = job.apply(makeReport(interval: 0), now: 0)
        #expect(job.checkStall(now: 2.9).stateChange == nil)
        #expect(job.checkStall(now: 3.1).stateChange == .stalled)
    }

    @Test("a rank 30 % over the median for 5 reports is flagged once; 19 % or an interrupted run is not")
    func stragglers() {
        var job = JobProgress(name: "j", now: 0)
        var times = Array(repeating: 0.5, count: 8)
        times[5] = 0.65  // 30 % over the median 0.5
        times[2] = 0.595  // 19 %: never a straggler
        for report in 1...4 {
            let events = job.apply(makeReport(rankSeconds: times), now: Double(report))
            #expect(events.lines.allSatisfy { !$0.contains("straggler") } && job.stragglers.isEmpty)
        }
        let fifth = job.apply(makeReport(rankSeconds: times), now: 5).lines.filter { $0.contains("straggler") }
        #expect(fifth == ["job j straggler: rank 5 on node1 steps in 0.65 s, 30 % over the median 0.5 s for 5 reports"])
        #expect(
            job.stragglers.map { "\($0.rank) \($0.host) \($0.stepSeconds) \($0.medianSeconds)" } == ["5 node1 0.65 0.5"]
        )
        // Still slow: still flagged, not logged again.
        #expect(job.apply(makeReport(rankSeconds: times), now: 6).lines.allSatisfy { !$0.contains("straggler") })
        #expect(job.stragglers.map(\.rank) == [5])
        // Back within 20 %: unflagged; then 4 slow reports, one normal, 4 slow: never 5 in a row.
        _ = job.apply(makeReport(), now: 7)
        #expect(job.stragglers.isEmpty)
        for report in 0..<9 {
            _ = job.apply(makeReport(rankSeconds: report == 4 ? Array(repeating: 0.5, count: 8) : times), now: 8)
        }
        #expect(job.stragglers.isEmpty)
    }

    @Test(
        "downsampling keeps at most 2,000 points (2,500 while running), the ends and every series' extremes",
        arguments: [1, 2] as [UInt64])
    func downsamplingKeepsExtremes(seed: UInt64) {
        var generator = SeededRandom(seed: seed)
        var job = JobProgress(name: "j", now: 0)
        for index in 0..<9_973 {
            let noise = Double(generator.next() % 1000) / 10_000
            let loss = index == 4321 ? 57.7 : 3.0 - Double(index) / 5000 + noise
            let speed = 400 + Double(generator.next() % 100) - (index == 777 ? 390 : 0)
            _ = job.apply(makeReport(loss: loss, imagesPerSecond: speed), now: Double(index))
            #expect(job.history.count <= JobProgress.maximumRunningHistory)
        }
        let kept = JobProgress.downsampled(job.history)
        // At least the two ends of each of the 333 buckets survive.
        #expect(kept.count <= JobProgress.maximumHistory && kept.count >= 2 * 333 + 2)
        #expect(kept.first?.receivedAt == 0 && kept.last?.receivedAt == 9_972)
        #expect(zip(kept, kept.dropFirst()).allSatisfy { $0.receivedAt < $1.receivedAt })
        #expect(kept.contains { $0.receivedAt == 4321 && $0.report.trainLoss == 57.7 })
        #expect(kept.contains { $0.receivedAt == 777 && $0.report.imagesPerSecond < 110 })
        // An ended job keeps only what is shown, spikes included.
        _ = job.apply(makeReport(.finished), now: 9_973)
        #expect(job.history.count <= JobProgress.maximumHistory)
        #expect(job.history.contains { $0.receivedAt == 4321 && $0.report.trainLoss == 57.7 })
        // The global extremes of the raw series equal those of the kept points.
        let values: [Double] = (0..<5000).map { _ in Double(generator.next() % 100_000) }
        let indices = Downsampling.keptIndices(count: values.count, maximum: 100, values: [{ values[$0] }])
        #expect(indices.count <= 100)
        #expect(indices.map { values[$0] }.max() == values.max() && indices.map { values[$0] }.min() == values.min())
        #expect(Downsampling.keptIndices(count: 50, maximum: 100, values: [{ values[$0] }]) == Array(0..<50))
    }

    @Test(
        "records.csv: one column per key, empty cells, quoted and formula-safe texts; progress.csv: one row per sample")
    func csvContent() {
        let records = [
            makeRecord(worker: "0", epoch: 1, step: 10, [("accuracy_top1", 0.5), ("loss", 1.25)]),
            makeRecord(worker: "=cmd,\"x\"", epoch: 2, step: 20, [("loss", 1e-05), ("flops", 4.0)]),
        ]
        #expect(
            JobCSV.records(records) == "worker_id,rank,epoch,step,timestamp,accuracy_top1,loss,flops\r\n"
                + "0,0,1,10,1700000010.0,0.5,1.25,\r\n" + #""'=cmd,""x""",0,2,20,1700000020.0,,1e-05,4.0"# + "\r\n")
        var job = JobProgress(name: "j", now: 0)
        _ = job.apply(makeReport(rankSeconds: [0.5, 0.75, 1.0]), now: 1_700_000_001.5)
        let lines = JobCSV.progress(job.history).split(separator: "\r\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("received_at,timestamp,state,epoch,epochs,step,steps_per_epoch,train_loss,lr,"))
        #expect(
            lines[1]
                == "1700000001.5,1700000000.0,running,2,120,100,10009,2.5,0.1,400.0,0.05,0.4,0.05,792059.0,1.0,0.75")
    }

    @Test("the dashboard shows the job table with state badge and age, log-scale loss, and the straggler in red")
    func dashboard() {
        var state = CoordinatorState(objectives: nil)
        var times = Array(repeating: 0.5, count: 4)
        times[2] = 0.9
        for index in 0..<JobProgress.stragglerReports {
            _ = state.apply(
                makeReport(loss: 57.7 / Double(index + 1), rankSeconds: times), job: "live", now: Double(index))
        }
        state.append(makeRecord([("accuracy_top1", 0.5)]), job: "records-only")
        let page = DashboardPage.render(state, now: 3604)
        #expect(
            page.contains(
                "<td><a href=\"#job-live\">live</a></td>"
                    + "<td><span class=\"badge\" style=\"background:#2e7d32\">running</span></td><td>1h 0m</td>"
            ))
        #expect(
            page.contains("train loss (log scale)") && page.contains(">57.7</text>") && page.contains(">11.54</text>"))
        #expect(page.contains("fill=\"#d62728\"><title>rank 2 node0: 0.9 s</title>"))
        #expect(page.contains("<td><a href=\"#job-records-only\">records-only</a></td><td>-</td>"))
        #expect(!page.contains("src=") && !page.contains("<script") && !page.contains("<link"))
    }

    @Test("a report round-trips through JSON")
    func roundTrip() throws {
        let report = makeReport(rankSeconds: [0.25, 0.5])
        #expect(try ProgressUpdate(jsonText: Array(report.json.serialized.utf8)) == report)
    }

    @Test(
        "out-of-bounds reports are refused naming the field",
        arguments: [
            (#""state":"running""#, #""state":"stalled""#, "field 'state' must be one of"),
            (#""step":100"#, #""step":10010"#, "field 'step' must be an integer in 0...10009"),
            (#""epoch":2"#, #""epoch":9223372036854775807"#, "field 'epoch' must be an integer"),
            (#""train_loss":2.5"#, #""train_loss":-1"#, "field 'train_loss' must be in 0"),
            (#""interval_seconds":10.0"#, #""interval_seconds":1e9"#, "field 'interval_seconds' must be in 0"),
            (#""lr":0.1"#, #""lr":"0.1""#, "field 'lr' must be a finite number"),
            (#""rank_hosts":["node0","node0"]"#, #""rank_hosts":["node0"]"#, "must be arrays of the same length"),
            (#""rank_hosts":["node0","node0"]"#, #""rank_hosts":["node0","a\nb"]"#, "rank_hosts[1] must not contain"),
            (#""lr":0.1"#, #""lr":0.1,"extra":1"#, "unknown field 'extra'"),
        ])
    func bounds(_ change: (original: String, replacement: String, message: String)) throws {
        let (original, replacement, message) = change
        let text = makeReport(rankSeconds: [0.5, 0.5]).json.serialized
        #expect(text.contains(original))
        let error = #expect(throws: RecordValidationError.self) {
            try ProgressUpdate(jsonText: Array(text.replacingOccurrences(of: original, with: replacement).utf8))
        }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("more than 1,024 ranks are refused")
    func tooManyRanks() {
        let report = makeReport(rankSeconds: Array(repeating: 0.5, count: ProgressUpdate.maximumRanks + 1))
        #expect(throws: RecordValidationError.self) { try ProgressUpdate(json: report.json) }
    }
}
