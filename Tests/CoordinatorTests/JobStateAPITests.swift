// The supervisor's job-state endpoint: a restart or preemption stored, logged as one line, shown
// by the job views and kept across a coordinator restart; refusals at entry; the stall clock
// restarting at a state change; and the client's newest-wins delivery of state changes.

import Coordinator
import CoordinatorClient
import Foundation
import Logging
import PerformanceRecords
import StrictJSON
import Synchronization
import Testing
import _TestSupport

@Suite("The supervisor's job state changes", .serialized)
struct JobStateAPITests {
    @Test("a restart is stored, logged as one line, shown by the job and kept across a coordinator restart")
    func restartStoredAndShown() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        var coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        let running = try await coordinator.send(
            "POST", "/v1/jobs/ghostnet101-imagenet/progress", body: makeReport(step: 1200).json.serialized)
        #expect(running.status == 200)
        let change = JobStateReport(state: .restarting, message: "rank 3 exited 69, restart 2/5", step: 21_218)
        let answer = try await coordinator.send(
            "POST", "/v1/jobs/ghostnet101-imagenet/state", body: change.json.serialized)
        #expect(answer.status == 200 && answer.bodyText.contains(#""state":"restarting""#), "\(answer.bodyText)")
        let line = "job ghostnet101-imagenet restarting: rank 3 exited 69, restart 2/5 (step 21218)"
        let job = try await coordinator.send("GET", "/v1/jobs/ghostnet101-imagenet").bodyText
        #expect(job.contains(#""state":"restarting""#) && job.contains(#""state_line":"\#(line)""#), "\(job)")
        // A job the coordinator knows only from its supervisor is listed too.
        let preempted = JobStateReport(state: .preempted, message: "SLURM sent SIGTERM")
        #expect(
            try await coordinator.send("POST", "/v1/jobs/other/state", body: preempted.json.serialized).status == 200)
        await coordinator.stop()
        #expect(coordinator.logText.split(separator: "\n").filter { $0.hasSuffix(" INFO \(line)") }.count == 1)
        #expect(coordinator.logText.contains(" INFO job other preempted: SLURM sent SIGTERM\n"))

        coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        let list = try await coordinator.send("GET", "/v1/jobs").bodyText
        await coordinator.stop()
        #expect(list.contains(#""state":"restarting""#) && list.contains(#""state_line":"\#(line)""#), "\(list)")
        #expect(list.contains(#""name":"other""#) && list.contains(#""state":"preempted""#), "\(list)")
    }

    @Test("bad state changes: 422 naming the field, 400 for bad JSON; nothing applied")
    func refusedAtEntry() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        for (body, status, reason) in [
            (#"{"state":"running","message":"m"}"#, 422, "field 'state' must be one of"),
            (#"{"state":"stalled","message":"m"}"#, 422, "field 'state' must be one of"),
            (#"{"state":"failed"}"#, 422, "missing field 'message'"),
            (#"{"state":"failed","message":""}"#, 422, "field 'message' must have 1 to 1024"),
            (#"{"state":"failed","message":"a\nb"}"#, 422, "control characters"),
            (#"{"state":"failed","message":"m","step":-1}"#, 422, "field 'step' must be an integer"),
            (#"{"state":"failed","message":"m","step":1.5}"#, 422, "field 'step' must be an integer"),
            (#"{"state":"failed","message":"m","why":1}"#, 422, "unknown field 'why'"),
            (#"{"state":"failed","#, 400, "malformed JSON"),
        ] {
            let answer = try await coordinator.send("POST", "/v1/jobs/j/state", body: body)
            #expect(answer.status == status && answer.bodyText.contains(reason), "\(body): \(answer.bodyText)")
        }
        #expect(try await coordinator.send("GET", "/v1/jobs/j").status == 404)
        await coordinator.stop()
    }

    @Test("a state change restarts the stall clock: restarting is not stalled until 3 intervals after it")
    func stateChangeRestartsStallClock() {
        var job = JobProgress(name: "j", now: 1000)
        _ = job.apply(makeReport(.running, interval: 10), now: 1000)
        let restarting = job.apply(JobStateReport(state: .restarting, message: "restart 1/5"), now: 1025)
        #expect(restarting.stateChange == .restarting && restarting.lines == ["job j restarting: restart 1/5"])
        // 30 s after the report but 15 s after the restart: not stalled; 30.1 s after the restart: stalled.
        #expect(job.checkStall(now: 1040.1).stateChange == nil && job.state == .restarting)
        #expect(job.checkStall(now: 1055.1).stateChange == .stalled)
        // The same state again is a new line (the next restart), and a report takes the job back.
        #expect(job.apply(JobStateReport(state: .restarting, message: "restart 2/5"), now: 1060).lines.count == 1)
        #expect(job.apply(makeReport(.running), now: 1070).stateChange == .running)
    }

    @Test("state changes made while the coordinator is down: only the newest is delivered, before progress")
    func clientDeliversNewestState() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try LoopbackSocket.freePort()
        var configuration = CoordinatorClientConfiguration(
            endpoint: HTTPEndpoint(host: "127.0.0.1", port: port), job: "supervised",
            spoolPath: directory.appendingPathComponent("supervisor/records.spool").path)
        configuration.maximumAttempts = 2
        configuration.initialBackoff = 0.01
        let client = CoordinatorClient(configuration: configuration)
        client.submit(JobStateReport(state: .restarting, message: "restart 1/5"))
        client.submit(JobStateReport(state: .restarting, message: "restart 2/5", step: 100))
        let down = try await offCooperativePool { client.flush(timeout: 1) }
        #expect(down.progressPending && down.unavailableRounds >= 1, "\(down)")

        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory.appendingPathComponent("coordinator"), port: port)
        let up = try await offCooperativePool { client.flush(timeout: 30) }
        #expect(!up.progressPending && up.lastError == nil, "\(up)")
        let job = try await coordinator.send("GET", "/v1/jobs/supervised").bodyText
        await coordinator.stop()
        #expect(job.contains(#""state_line":"job supervised restarting: restart 2/5 (step 100)""#), "\(job)")
        #expect(!coordinator.logText.contains("restart 1/5"))
    }
}
