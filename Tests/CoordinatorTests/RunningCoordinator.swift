// Test support: a coordinator running inside the test process on an ephemeral loopback port, with
// helpers to post records and read them back.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

/// A task executor with a thread of its own. The coordinator under test runs on it, so it answers
/// while other tests (numerical kernels, waits for child processes) hold every thread of the shared
/// cooperative pool; a serial dispatch queue is overcommitting, so it gets a thread regardless.
private final class DedicatedThreadExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "ghostnet-d.tests.coordinator")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A coordinator running in this test process on an ephemeral loopback port.
final class RunningCoordinator: Sendable {
    let configuration: CoordinatorConfiguration
    let endpoint: HTTPEndpoint
    private let task: Task<Void, any Error>

    private init(configuration: CoordinatorConfiguration, endpoint: HTTPEndpoint, task: Task<Void, any Error>) {
        self.configuration = configuration
        self.endpoint = endpoint
        self.task = task
    }

    /// Starts a coordinator (port 0 unless given; HTTPS with `tls`) and waits until it accepts connections.
    static func start(
        dataDirectory: URL, port: Int = 0, token: String? = nil, objectives: [Objective]? = nil,
        tls: TestCertificates? = nil, tensorBoardDirectory: String? = nil
    ) async throws -> RunningCoordinator {
        let configuration = CoordinatorConfiguration(
            host: "127.0.0.1", port: port, dataDirectory: dataDirectory.path,
            logFile: dataDirectory.appendingPathComponent("coordinator.log").path,
            token: token, tlsCertificatePath: tls?.serverCertificate, tlsKeyPath: tls?.serverKey,
            objectives: objectives,
            logsToStandardOutput: false, tensorBoardDirectory: tensorBoardDirectory)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task(executorPreference: DedicatedThreadExecutor()) {
            defer { continuation.finish() }
            try await CoordinatorDaemon.run(configuration: configuration, handlesSignals: false) { _, port in
                continuation.yield(port)
            }
        }
        for await port in ports {
            // With TLS every request of the tests goes over HTTPS, verified against the test CA.
            var endpoint = HTTPEndpoint(host: "127.0.0.1", port: port)
            endpoint.usesTLS = tls != nil
            endpoint.certificateAuthorityFile = tls?.authority
            return RunningCoordinator(configuration: configuration, endpoint: endpoint, task: task)
        }
        try await task.value
        throw CoordinatorError("the coordinator stopped before listening")
    }

    /// Shuts the coordinator down (graceful: open requests finish) and waits for it.
    func stop() async {
        task.cancel()
        _ = await task.result
    }

    var logText: String {
        (try? String(contentsOfFile: configuration.logFile!, encoding: .utf8)) ?? ""
    }

    /// The messages of all Best values lines in the log, timestamps removed.
    var bestValuesMessages: [String] {
        logText.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: " INFO Best values: ") else { return nil }
            return "Best values: " + line[range.upperBound...]
        }
    }

    /// Sends a request from a plain thread: the exchange blocks, and must not hold one of the few
    /// cooperative threads the server's handlers also run on.
    func send(
        _ method: String, _ path: String, body: String = "", token: String? = nil, timeout: Double = 10
    ) async throws -> HTTPExchangeResponse {
        try await Self.send(method, path, to: endpoint, body: Array(body.utf8), token: token, timeout: timeout)
    }

    static func send(
        _ method: String, _ path: String, to endpoint: HTTPEndpoint, body: [UInt8], token: String? = nil,
        headers extra: [(String, String)] = [], timeout: Double = 10
    ) async throws -> HTTPExchangeResponse {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")] + extra
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        let sendableHeaders = headers.map { [$0.name, $0.value] }
        return try await offCooperativePool {
            try HTTPExchange.send(
                method, path, to: endpoint, headers: sendableHeaders.map { ($0[0], $0[1]) }, body: body,
                timeout: timeout)
        }
    }

    /// POSTs `record` to `job` and returns the status.
    func post(_ record: PerformanceRecord, job: String = "job") async throws -> HTTPExchangeResponse {
        try await send("POST", "/v1/jobs/\(job)/records", body: record.json.serialized, token: configuration.token)
    }

    /// The stored records of `job`, read back through the API.
    func records(job: String) async throws -> [PerformanceRecord] {
        let response = try await send("GET", "/v1/jobs/\(job)/records", token: configuration.token)
        guard response.status == 200, case .object(let members) = try JSONValue(parsing: response.body),
            case .array(let records) = members.first(where: { $0.key == "records" })?.value
        else { throw CoordinatorError("unexpected answer \(response.status): \(response.bodyText)") }
        return try records.map { try PerformanceRecord(json: $0) }
    }
}

/// Runs blocking `work` on a new thread and resumes with its result.
func offCooperativePool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// A record with the given metrics (in that order) and key fields.
func makeRecord(worker: String = "0", epoch: Int = 0, step: Int = 0, _ metrics: [(String, Double)]) -> PerformanceRecord
{
    PerformanceRecord(
        workerID: worker, rank: 0, epoch: epoch, step: step,
        performance: PerformanceMetrics(metrics.map { (key: $0.0, value: $0.1) }),
        timestamp: 1_700_000_000 + Double(step))
}
