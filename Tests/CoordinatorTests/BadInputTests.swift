// Hostile HTTP input to the coordinator: a matrix of malformed requests, fuzzed bodies and stalled
// connections over raw sockets, each answered with an error and never a crash or a hang.

import Coordinator
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import TensorEngine
import Testing
import _TestSupport

@Suite("Bad input gets a 4xx JSON error and never hurts the daemon", .serialized)
struct BadInputTests {
    static let valid =
        #"{"worker_id":"0","rank":0,"epoch":1,"step":2,"performance":{"accuracy_top1":0.5},"timestamp":1700000000}"#

    /// (path, body, expected status)
    static let matrix: [(String, String, Int)] = [
        ("/v1/jobs/j/records", "", 400),
        ("/v1/jobs/j/records", "{", 400),
        ("/v1/jobs/j/records", "null", 422),
        ("/v1/jobs/j/records", "[1,2]", 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "0.5", with: "\"NaN\""), 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "0.5", with: "NaN"), 400),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "0.5", with: "Infinity"), 400),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "0.5", with: "1e999"), 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "\"rank\":0,", with: ""), 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "\"rank\":0", with: "\"rank\":\"0\""), 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "\"epoch\":1", with: "\"epoch\":1.5"), 422),
        ("/v1/jobs/j/records", valid.replacingOccurrences(of: "{\"accuracy_top1\":0.5}", with: "{}"), 422),
        ("/v1/jobs/j/records", valid + "x", 400),
        ("/v1/jobs/j/records", String(repeating: "[", count: 10_000), 400),
        ("/v1/jobs/j/records", "{\"worker_id\":\"" + String(repeating: "a", count: 70_000) + "\"}", 413),
        ("/v1/jobs/../records", valid, 400),
        ("/v1/jobs/./records", valid, 400),
        ("/v1/jobs/a%2Fb/records", valid, 400),
        ("/v1/jobs/a%20b/records", valid, 400),
        ("/v1/jobs/" + String(repeating: "x", count: 129) + "/records", valid, 400),
        ("/v1/jobs/j/records/extra", valid, 404),
        ("/v1/nothing", valid, 404),
    ]

    @Test("the malformed-input matrix")
    func malformedInputMatrix() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (path, body, expected) in Self.matrix {
            let response = try await coordinator.send("POST", path, body: body)
            #expect(response.status == expected, "\(path) \(body.prefix(80)): \(response.bodyText)")
            let error = try? JSONValue(parsing: response.body)
            guard case .object(let members) = error, members.count == 1, members[0].key == "error",
                case .string(let message) = members[0].value, !message.isEmpty
            else {
                Issue.record("\(path) \(body.prefix(80)): not a JSON error: \(response.bodyText)")
                continue
            }
        }
        // A client that sends half a body and stalls must not hold up anyone else.
        let stalled = try openStalledRequest(endpoint: coordinator.endpoint)
        // Malformed requests at the HTTP level: the server closes or answers 400, and keeps going.
        for raw in [
            "GARBAGE\r\n\r\n", "POST /v1/jobs/j/records HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "\u{0}\u{1}\u{2}",
        ] {
            _ = try? await offCooperativePool { [endpoint = coordinator.endpoint] in
                try rawExchange(raw, endpoint: endpoint)
            }
        }
        #expect(try await coordinator.send("GET", "/healthz").status == 200)
        #expect(try await coordinator.send("POST", "/v1/jobs/j/records", body: Self.valid).status == 201)
        // Closed before the shutdown, which otherwise drains the stalled request until the idle timeout.
        close(stalled)
        await coordinator.stop()
        let warnings = coordinator.logText.split(separator: "\n").filter { $0.contains(" WARNING rejected request: ") }
        // Every matrix entry, and possibly the stalled request, whose body ended early.
        #expect(warnings.count >= Self.matrix.count && warnings.count <= Self.matrix.count + 1, "\(warnings)")
    }

    @Test("thousands of random and mutated bodies leave the daemon answering and the store intact")
    func fuzzBodies() async throws {
        let directory = try TemporaryDirectory.make()
        let coordinator = try await RunningCoordinator.start(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SeededRandom(seed: 0x5EED)
        let seeds = [
            Self.valid,
            #"{"worker_id":"7","rank":3,"epoch":12,"step":4500,"performance":{"params":3.5e4,"accuracy_top1":0.77,"flops":4.5,"loss":1.25},"timestamp":1.7e9}"#,
        ].map { Array($0.utf8) }
        var accepted: [PerformanceRecord] = []
        var statusCounts: [Int: Int] = [:]
        let bodies = 2500
        for index in 0..<bodies {
            let body = index % 10 == 0 ? randomBytes(&generator) : mutate(seeds[index % seeds.count], &generator)
            let response = try await RunningCoordinator.send(
                "POST", "/v1/jobs/fuzz/records", to: coordinator.endpoint, body: body)
            statusCounts[response.status, default: 0] += 1
            #expect(response.status < 500, "server error for \(String(decoding: body, as: UTF8.self))")
            if response.status == 201 { accepted.append(try PerformanceRecord(jsonText: body)) }
        }
        #expect(statusCounts.values.reduce(0, +) == bodies)
        #expect((statusCounts[400] ?? 0) + (statusCounts[422] ?? 0) > bodies / 2, "\(statusCounts)")
        #expect(try await coordinator.send("GET", "/healthz").status == 200)
        if accepted.isEmpty {
            #expect(try await coordinator.send("GET", "/v1/jobs/fuzz/records").status == 404)
        } else {
            #expect(try await coordinator.records(job: "fuzz") == accepted)
        }
        await coordinator.stop()

        // The database file reloads to exactly the accepted records.
        let reopened = try await RunningCoordinator.start(dataDirectory: directory)
        if !accepted.isEmpty { #expect(try await reopened.records(job: "fuzz") == accepted) }
        await reopened.stop()
    }

    private func randomBytes(_ generator: inout SeededRandom) -> [UInt8] {
        let alphabet = Array(#"{}[]":,0123456789.-+eE truefalsnul\"#.utf8)
        return (0..<Int(generator.next() % 120)).map { _ in
            generator.next() % 3 == 0
                ? UInt8(truncatingIfNeeded: generator.next()) : alphabet[Int(generator.next() % UInt64(alphabet.count))]
        }
    }

    private func mutate(_ seed: [UInt8], _ generator: inout SeededRandom) -> [UInt8] {
        var bytes = seed
        let tokens = Array(#"0123456789.-e"{}[],:"#.utf8)
        for _ in 0..<(1 + Int(generator.next() % 3)) where !bytes.isEmpty {
            let position = Int(generator.next() % UInt64(bytes.count))
            switch generator.next() % 4 {
            case 0: bytes[position] = tokens[Int(generator.next() % UInt64(tokens.count))]
            case 1: bytes.remove(at: position)
            case 2: bytes.insert(tokens[Int(generator.next() % UInt64(tokens.count))], at: position)
            default: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            }
        }
        return bytes
    }
}

/// A loopback TCP connection to `endpoint`; the caller closes it.
func connectedSocket(_ endpoint: HTTPEndpoint) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        close(descriptor)
        throw CoordinatorError("connect failed")
    }
    return descriptor
}

/// Sends the head of a POST and a tenth of its announced body, then leaves the connection open.
func openStalledRequest(endpoint: HTTPEndpoint) throws -> Int32 {
    let descriptor = try connectedSocket(endpoint)
    let partial = Array("POST /v1/jobs/j/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"worker_\"".utf8)
    _ = partial.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    return descriptor
}

/// Writes `raw` to the server as is and reads until it closes.
func rawExchange(_ raw: String, endpoint: HTTPEndpoint) throws -> String {
    let descriptor = try connectedSocket(endpoint)
    defer { close(descriptor) }
    let bytes = Array(raw.utf8)
    _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        answer += buffer[0..<count]
    }
    return String(decoding: answer, as: UTF8.self)
}
