// The worker's coordinator client against a broken or hostile coordinator on real loopback
// sockets (issue 19, class 3): a silent coordinator costs a report nothing and loses no record,
// and no response, however malformed, traps the client.

import CoordinatorClient
import Foundation
import PerformanceRecords
import Testing
import _TestSupport

@Suite("The coordinator client survives a silent or hostile coordinator", .serialized)
struct HostileCoordinatorTests {
    static let created = Array(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".utf8)

    func record(epoch: Int) -> PerformanceRecord {
        PerformanceRecord(
            workerID: "0", rank: 0, epoch: epoch, step: 10 * epoch,
            performance: PerformanceMetrics([(key: "accuracy_top1", value: 0.5 + 0.1 * Double(epoch))]),
            timestamp: 1_700_000_000 + Double(epoch))
    }

    /// A client with short bounds: an attempt against a silent server ends after 0.5 s.
    func client(for server: ScriptedServer, job: String, in directory: URL) -> CoordinatorClient {
        var configuration = CoordinatorClientConfiguration(
            endpoint: server.endpoint, job: job, spoolPath: directory.appendingPathComponent("records.spool").path)
        configuration.requestTimeout = 0.5
        configuration.connectTimeout = 0.5
        configuration.maximumAttempts = 2
        configuration.initialBackoff = 0.05
        configuration.retryInterval = 0.2
        return CoordinatorClient(configuration: configuration)
    }

    @Test("a coordinator that accepts and never answers costs submit nothing; the records arrive once it answers")
    func silentCoordinator() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ScriptedServer(.silent)
        defer { server.stop() }
        let client = client(for: server, job: "silent", in: directory)

        // Before the background sender, each submit waited for every attempt: at least 2 × 0.5 s here.
        let started = ContinuousClock.now
        for epoch in 0..<3 { try client.submit(record(epoch: epoch)) }
        let submitting = started.duration(to: .now)
        #expect(submitting < .milliseconds(500), "three submits took \(submitting)")

        let waiting = client.flush(timeout: 1.5)
        #expect(waiting.delivered == 0 && waiting.pending == 3 && waiting.unavailableRounds >= 1, "\(waiting)")
        #expect(waiting.lastError?.contains("no progress waiting for the answer within 0.5 s") == true, "\(waiting)")

        server.behave(.answer(Self.created))
        let recovered = client.flush(timeout: 30)
        #expect(recovered.delivered == 3 && recovered.pending == 0, "\(recovered)")
        #expect(!FileManager.default.fileExists(atPath: client.configuration.spoolPath))
        let posted = server.requests
        #expect(posted.count == 3 && posted.allSatisfy { $0.hasPrefix("POST /v1/jobs/silent/records HTTP/1.1\r\n") })
        // Oldest first, each record once.
        #expect(posted.map { $0.contains("\"epoch\":0") } == [true, false, false], "\(posted)")
    }

    /// The bytes after a chunk-size line in ``hostileChunkSize(size:expected:)``'s response.
    static let afterSize = "abc\r\n0\r\n\r\n"

    @Test(arguments: [
        ("7FFFFFFFFFFFFFFF", "chunk size '7FFFFFFFFFFFFFFF' is not a hexadecimal byte count of at most 15 digits"),
        ("-5", "chunk size '-5' is not a hexadecimal byte count of at most 15 digits"),
        ("0x10", "chunk size '0x10' is not a hexadecimal byte count of at most 15 digits"),
        ("\u{1B}[2J", "chunk size '\\e[2J' is not a hexadecimal byte count of at most 15 digits"),
        ("FFFFFFFFFFFFFF", "a chunk declares 72057594037927935 bytes but only \(afterSize.utf8.count) follow"),
    ])
    func hostileChunkSize(size: String, expected: String) throws {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\n\(Self.afterSize)"
        let server = try ScriptedServer(.answer(Array(response.utf8)))
        defer { server.stop() }
        let error = #expect(throws: HTTPClientError.self) {
            try HTTPExchange.send("GET", "/healthz", to: server.endpoint, timeout: 5)
        }
        #expect(error?.code == .malformedResponse)
        #expect(error?.description == "coordinator \(server.endpoint): \(expected)")
    }

    @Test("a record answered with a hostile chunk size stays spooled with the reason")
    func hostileAnswerKeepsTheRecord() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ScriptedServer(
            .answer(Array("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\n{}\r\n".utf8)))
        defer { server.stop() }
        let client = client(for: server, job: "hostile", in: directory)
        try client.submit(record(epoch: 1))
        let report = client.flush(timeout: 1)
        #expect(report.delivered == 0 && report.pending == 1, "\(report)")
        #expect(report.lastError?.contains("chunk size '7FFFFFFFFFFFFFFF'") == true, "\(report)")
        #expect(try client.spool.withLock { try client.spool.entriesLocked() }.map(\.record) == [record(epoch: 1)])
    }
}

@Suite struct HTTPResponseParserTests {
    static let endpoint = HTTPEndpoint(host: "127.0.0.1", port: 8470)

    static func withLength(_ head: String, _ body: String) -> [UInt8] {
        Array("\(head)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    /// Valid responses of the kinds a coordinator sends, the seeds of the fuzz test.
    static let valid: [[UInt8]] = [
        withLength("HTTP/1.1 201 Created\r\nContent-Type: application/json", "{\"duplicate\":false}"),
        Array(
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n").utf8),
        Array("HTTP/1.0 409 Conflict\r\nContent-Length: 0\r\n\r\n".utf8),
        Array("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\nbusy".utf8),
    ]

    @Test func validResponsesKeepStatusHeadersAndBody() throws {
        let parsed = try Self.valid.map { try HTTPResponseParser.parse($0, from: Self.endpoint) }
        #expect(parsed.map(\.status) == [201, 200, 409, 503])
        #expect(parsed.map(\.bodyText) == ["{\"duplicate\":false}", "Wikipedia", "", "busy"])
        #expect(parsed[0].header("content-type") == "application/json")
        // Bytes past Content-Length are not part of the body.
        let longer = Self.withLength("HTTP/1.1 200 OK", "{}") + Array("trailing".utf8)
        #expect(try HTTPResponseParser.parse(longer, from: Self.endpoint).bodyText == "{}")
    }

    @Test(arguments: [
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
            "Content-Length '99999999999999999999' is not a decimal byte count"
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", "Content-Length '-1' is not a decimal byte count"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", "the body has 2 bytes, fewer than its Content-Length 5"),
        ("HTTP/1.1 2000 OK\r\n\r\n", "status line 'HTTP/1.1 2000 OK' is not 'HTTP/1.x NNN reason'"),
        ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header line 'no colon' has no 'name:' before its value"),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "Transfer-Encoding 'gzip' is not supported (expected chunked)"
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd",
            "chunk data ending at byte 5 of the body is not followed by CRLF"
        ),
        ("HTTP/1.1 200 OK\r\n", "no complete header (expected a blank line after the header fields)"),
    ])
    func malformedResponsesNameTheirDefect(response: String, expected: String) {
        let error = #expect(throws: HTTPClientError.self) {
            try HTTPResponseParser.parse(Array(response.utf8), from: Self.endpoint)
        }
        #expect(error?.code == .malformedResponse)
        #expect(error?.message == expected)
    }

    @Test("2,000 deterministic mutations of valid responses each end in a response or an error, never a trap")
    func mutatedResponses() {
        let tokens = [
            "\r\n", "\r\n\r\n", ":", ";", "7FFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFFFFFF", "-1", "0\r\n\r\n",
            "Transfer-Encoding: chunked\r\n", "Content-Length: 99999999999999999999\r\n", "HTTP/1.1 ",
        ].map { Array($0.utf8) }
        var mutator = ByteMutator(seed: 0x4854_5450, tokens: tokens)
        var parsed = 0
        var refused = 0
        for input in mutator.mutants(of: Self.valid, count: 2000) {
            // The framing check a kept connection runs on the same bytes never traps or overruns either.
            if let length = HTTPResponseParser.responseLength(input) { #expect(length <= input.count) }
            do {
                let response = try HTTPResponseParser.parse(input, from: Self.endpoint)
                #expect((100...599).contains(response.status) && response.body.count <= input.count)
                parsed += 1
            } catch {
                #expect(error.code == .malformedResponse)
                refused += 1
            }
        }
        // Both outcomes occur, so the mutations reach past the status line.
        #expect(parsed > 100 && refused > 100, "parsed \(parsed), refused \(refused)")
    }
}
