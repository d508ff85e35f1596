// TLS between workers and the coordinator (issue 19, class 10), with a CA and a server certificate
// made by the openssl CLI at test time: the server speaks only HTTPS, and the workers' client reports
// over it, verifying the server against the CA it is given.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Testing
import _TestSupport

@Suite("TLS between workers and the coordinator", .serialized)
struct CoordinatorTLSTests {
    @Test("with --tls-cert/--tls-key the coordinator speaks only HTTPS, verified against the test CA")
    func tlsServer() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificates = try TestCertificates.make(in: directory)
        let token = "tls-token-\(UUID().uuidString)"
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory, token: token, tls: certificates)
        let url = "https://127.0.0.1:\(coordinator.endpoint.port)"
        func curl(_ arguments: [String]) throws -> ProcessResult {
            try BuiltProducts.run(
                URL(fileURLWithPath: "/usr/bin/env"), ["curl", "-sS", "--max-time", "10"] + arguments, timeout: 30)
        }
        let record = makeRecord([("accuracy_top1", 0.5)]).json.serialized
        let posted = try curl([
            "--cacert", certificates.authority, "-H", "Authorization: Bearer \(token)", "-H",
            "Content-Type: application/json",
            "--data-binary", record, "\(url)/v1/jobs/tls/records",
        ])
        #expect(posted.status == 0 && posted.standardOutput.contains("\"duplicate\":false"), "\(posted.combined)")
        // Without the CA the server is not trusted; plain HTTP gets no HTTP answer.
        let untrusted = try curl(["\(url)/healthz"])
        #expect(
            untrusted.status != 0 && untrusted.standardError.lowercased().contains("certificate"),
            "\(untrusted.combined)")
        let plain = try? await RunningCoordinator.send(
            "GET", "/healthz", to: HTTPEndpoint(host: "127.0.0.1", port: coordinator.endpoint.port), body: [],
            token: token,
            timeout: 5)
        #expect(plain == nil || plain?.status != 200)
        await coordinator.stop()
        #expect(coordinator.logText.contains("coordinator listening on 127.0.0.1:\(coordinator.endpoint.port) (https;"))
    }

    @Test("a kept-open TLS connection is released at once, without waiting for a close_notify the server never sends")
    func keptTLSConnectionIsReleased() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificates = try TestCertificates.make(in: directory)
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory, tls: certificates)
        let endpoint = coordinator.endpoint
        let (statuses, released) = try await offCooperativePool { () throws -> ([Int], Bool) in
            nonisolated(unsafe) var session: HTTPSession? = HTTPSession(endpoint: endpoint)
            let statuses = try (1...2).map { _ in try session!.send("GET", "/healthz").status }
            // The server keeps the connection open, so releasing the session closes TLS first.
            let done = DispatchSemaphore(value: 0)
            Thread {
                session = nil
                done.signal()
            }.start()
            return (statuses, done.wait(timeout: .now() + 30) == .success)
        }
        #expect(statuses == [200, 200])
        #expect(released, "releasing a session with a kept TLS connection did not return within 30 s")
        await coordinator.stop()
    }

    @Test("a worker's client reports over TLS when it trusts the CA, and refuses a server signed by another")
    func workerReportsOverTLS() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificates = try TestCertificates.make(in: directory)
        let strangerDirectory = directory.appendingPathComponent("stranger")
        try FileManager.default.createDirectory(at: strangerDirectory, withIntermediateDirectories: true)
        let stranger = try TestCertificates.make(in: strangerDirectory)
        let tokenFile = directory.appendingPathComponent("token")
        try Data("worker-tls-token-0123456789\n".utf8).write(to: tokenFile)
        let coordinator = try await RunningCoordinator.start(
            dataDirectory: directory, token: "worker-tls-token-0123456789", tls: certificates)
        let url = "https://127.0.0.1:\(coordinator.endpoint.port)"

        func client(job: String, authority: String?, environment: [String: String]) throws -> CoordinatorClient {
            var configuration = try #require(
                try CoordinatorClientConfiguration.resolve(
                    configuredURL: url, job: job, spoolPath: directory.appendingPathComponent("\(job).spool").path,
                    configuredCertificateAuthority: authority,
                    environment: environment.merging([CoordinatorClientConfiguration.tokenFileVariable: tokenFile.path])
                    { a, _ in a }))
            configuration.maximumAttempts = 1
            return CoordinatorClient(configuration: configuration)
        }
        let records = (0..<3).map { makeRecord(epoch: $0, step: $0, [("accuracy_top1", 0.2 * Double($0 + 1))]) }
        // The CA from the configuration key, and from GHOSTNET_COORDINATOR_CA.
        for (job, authority, environment) in [
            ("tls-key", certificates.authority, [:]),
            ("tls-env", nil, [CoordinatorClientConfiguration.certificateAuthorityVariable: certificates.authority]),
        ] as [(String, String?, [String: String])] {
            let worker = try client(job: job, authority: authority, environment: environment)
            for record in records { try worker.submit(record) }
            let report = try await offCooperativePool { worker.flush(timeout: 20) }
            #expect(report.delivered == 3 && report.pending == 0, "\(report)")
            #expect(try await coordinator.records(job: job) == records)
        }
        // A server signed by another CA is not trusted: nothing is delivered, the records wait.
        let wary = try client(job: "tls-stranger", authority: stranger.authority, environment: [:])
        try wary.submit(records[0])
        let refused = try await offCooperativePool { wary.flush(timeout: 3) }
        #expect(refused.delivered == 0 && refused.pending == 1, "\(refused)")
        #expect(refused.lastError?.contains("TLS") == true, "\(refused)")
        await coordinator.stop()

        // A CA only makes sense for https.
        #expect(throws: HTTPClientError.self) {
            try CoordinatorClientConfiguration.resolve(
                configuredURL: "http://127.0.0.1:1", job: "j", spoolPath: "/nonexistent",
                configuredCertificateAuthority: certificates.authority, environment: [:])
        }
        #expect(try HTTPEndpoint(url: "https://[::1]:8470/").description == "https://[::1]:8470")
    }
}
