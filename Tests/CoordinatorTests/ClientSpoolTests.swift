//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator tests
//===----------------------------------------------------------------------===//

import Coordinator
import Foundation
import PerformanceRecords
import Testing
import _TestSupport

@Suite("The workers' client delivers spooled records in order", .serialized)
struct ClientSpoolTests {
    @Test("records made while the coordinator is down arrive in order after it starts")
    func spoolDeliveredAfterStart() async throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeLoopbackPort()
        var configuration = CoordinatorClientConfiguration(
            endpoint: HTTPEndpoint(host: "127.0.0.1", port: port), job: "spooled",
            spoolPath: directory.appendingPathComponent("worker/records.spool").path)
        configuration.maximumAttempts = 2
        configuration.initialBackoff = 0.01
        let client = CoordinatorClient(configuration: configuration)
        let records = (0..<4).map { epoch in makeRecord(worker: "0", epoch: epoch, step: epoch * 10, [("accuracy_top1", 0.1 + 0.2 * Double(epoch))]) }

        for (index, record) in records.enumerated() {
            let report = try await offCooperativePool { try client.submit(record) }
            #expect(report.delivered == 0 && report.pending == index + 1)
            #expect(report.lastError?.contains("cannot connect") == true, "\(report.lastError ?? "")")
        }
        #expect(try client.spool.withLock { try client.spool.entriesLocked() }.map(\.record) == records)

        let coordinator = try await RunningCoordinator.start(dataDirectory: directory.appendingPathComponent("coordinator"), port: port)
        let report = try await offCooperativePool { try client.deliverPending() }
        #expect(report.delivered == 4 && report.rejected == 0 && report.pending == 0 && report.lastError == nil)
        #expect(!FileManager.default.fileExists(atPath: configuration.spoolPath))
        #expect(try await coordinator.records(job: "spooled") == records)

        // A new record goes straight through; a conflicting one is set aside, not retried forever.
        let fifth = makeRecord(worker: "0", epoch: 4, step: 40, [("accuracy_top1", 0.95)])
        #expect(try await offCooperativePool { try client.submit(fifth) }.delivered == 1)
        var conflicting = records[0]
        conflicting.performance = PerformanceMetrics([("accuracy_top1", 0.0)])
        let conflictingRecord = conflicting
        let refused = try await offCooperativePool { try client.submit(conflictingRecord) }
        #expect(refused.rejected == 1 && refused.pending == 0)
        #expect(try String(contentsOfFile: client.spool.rejectedPath, encoding: .utf8).contains("\"accuracy_top1\":0.0"))
        #expect(try await coordinator.records(job: "spooled") == records + [fifth])
        await coordinator.stop()
        #expect(coordinator.bestValuesMessages.last == "Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.95}}]")
    }

    @Test("the client's URL comes from the configuration, else GHOSTNET_COORDINATOR")
    func configurationResolution() throws {
        let fromEnvironment = try CoordinatorClientConfiguration.resolve(
            configuredURL: nil, job: "j", spoolPath: "/tmp/s", environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:8470"])
        #expect(fromEnvironment?.endpoint == HTTPEndpoint(host: "127.0.0.1", port: 8470))
        let configured = try CoordinatorClientConfiguration.resolve(
            configuredURL: "http://[::1]:9000/", job: "j", spoolPath: "/tmp/s", environment: ["GHOSTNET_COORDINATOR": "http://127.0.0.1:8470"])
        #expect(configured?.endpoint == HTTPEndpoint(host: "::1", port: 9000))
        #expect(try CoordinatorClientConfiguration.resolve(configuredURL: nil, job: "j", spoolPath: "/tmp/s", environment: [:]) == nil)
        #expect(throws: HTTPClientError.self) {
            try CoordinatorClientConfiguration.resolve(configuredURL: "https://x:1", job: "j", spoolPath: "/tmp/s", environment: [:])
        }
    }
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw CoordinatorError("cannot bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
