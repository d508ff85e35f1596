// `ghostnet-d coordinator` as a real background process: start, serve and stop, the token rule for
// non-loopback addresses, bad options, and a token read from a file.

import CoordinatorClient
import Foundation
import PerformanceRecords
import Testing
import _TestSupport

/// `ghostnet-d coordinator` started as a real background process on an ephemeral loopback port.
final class CoordinatorProcess {
    let process = Process()
    let directory: URL
    let outputFile: URL
    private(set) var endpoint = HTTPEndpoint(host: "127.0.0.1", port: 0)

    var logFile: URL { directory.appendingPathComponent("coordinator.log") }
    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Starts the daemon with its data in `directory` and waits (at most 60 s) for the line
    /// `coordinator listening on 127.0.0.1:PORT`.
    init(directory: URL, extraArguments: [String] = []) throws {
        self.directory = directory
        outputFile = directory.appendingPathComponent("stdout-\(UUID().uuidString.prefix(6)).txt")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        process.executableURL = BuiltProducts.ghostnetExecutable
        process.arguments =
            [
                "coordinator", "--listen", "127.0.0.1:0", "--data-dir", directory.appendingPathComponent("data").path,
                "--log", logFile.path,
            ] + extraArguments
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        process.standardError = process.standardOutput
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        let listening = try Regex(#"coordinator listening on 127\.0\.0\.1:(\d+)"#)
        while Date() < deadline && process.isRunning {
            if let match = output.firstMatch(of: listening), let port = Int(match.output[1].substring ?? "") {
                endpoint.port = port
                return
            }
            usleep(20_000)
        }
        process.terminate()
        throw HTTPClientError(.unreachable, location: "coordinator \(endpoint)", "did not start listening: \(output)")
    }

    /// Sends SIGTERM and waits for the exit status (SIGKILL after 30 s).
    func terminate() -> Int32 {
        process.terminate()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func post(job: String, _ body: String) throws -> HTTPExchangeResponse {
        try HTTPExchange.send("POST", "/v1/jobs/\(job)/records", to: endpoint, body: Array(body.utf8), timeout: 10)
    }
}

@Suite(.serialized) struct CoordinatorCLITests {
    static let records = [
        #"{"worker_id":"0","rank":0,"epoch":0,"step":10,"performance":{"accuracy_top1":0.7735977564102564,"flops":4.539,"params":38216.872},"timestamp":1700000000}"#,
        #"{"worker_id":"1","rank":1,"epoch":0,"step":10,"performance":{"accuracy_top1":0.5,"flops":5,"params":40000},"timestamp":1700000001}"#,
    ]
    static let expectedBest =
        "INFO Best values: [{'worker_id': '0', 'performance': {'accuracy_top1': 0.7735977564102564, 'flops': 4.539, "
        + "'params': 38216.872}}]"

    @Test("the daemon logs the Best values line, exits 0 on SIGTERM and re-logs the best after a restart")
    func daemonLifecycle() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try CoordinatorProcess(directory: directory)
        for body in Self.records {
            let response = try first.post(job: "demo", body)
            #expect(response.status == 201, "\(response.bodyText)")
        }
        #expect(first.terminate() == 0, "\(first.output)")
        // Worker 1's record is dominated, so only worker 0's changed the best set.
        let bestLines = first.log.split(separator: "\n").filter { $0.contains("Best values") }
        #expect(bestLines.count == 1)
        #expect(bestLines.allSatisfy { $0.dropFirst(24) == Self.expectedBest }, "\(bestLines)")
        #expect(first.output.contains(Self.expectedBest), "standard output carries the log too")
        #expect(first.log.contains("INFO coordinator stopped"))

        let second = try CoordinatorProcess(directory: directory)
        let records = try HTTPExchange.send("GET", "/v1/jobs/demo/records", to: second.endpoint)
        #expect(records.bodyText.contains(#""worker_id":"1""#))
        #expect(second.terminate() == 0)
        let reloaded = second.log.split(separator: "\n").filter { $0.contains("Best values") }
        #expect(reloaded.count == 2 && reloaded.last?.dropFirst(24) == Self.expectedBest[...], "\(reloaded)")
    }

    @Test("a non-loopback address without --token-file is refused before binding")
    func nonLoopbackNeedsToken() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try BuiltProducts.runGhostnet(
            ["coordinator", "--listen", "0.0.0.0:0", "--data-dir", directory.path], timeout: 60)
        #expect(result.status != 0)
        #expect(result.standardError.contains("requires --token-file"), "\(result.combined)")
    }

    @Test("bad options name what was expected")
    func badOptions() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let shortToken = directory.appendingPathComponent("short-token")
        let longToken = directory.appendingPathComponent("long-token")
        try Data("fifteen-bytes!!\n".utf8).write(to: shortToken)
        try Data("sixteen-bytes!!!\n".utf8).write(to: longToken)
        for (arguments, message) in [
            (["--objective", "accuracy"], "KEY:max or KEY:min"),
            (["--listen", "localhost"], "HOST:PORT"),
            (["--token-file", directory.appendingPathComponent("missing").path], "missing: cannot be read"),
            (
                ["--tls-cert", directory.appendingPathComponent("cert.pem").path],
                "--tls-cert and --tls-key must be given together"
            ),
            (
                ["--listen", "0.0.0.0:0", "--token-file", shortToken.path],
                "the token must have at least 16 bytes, got 15"
            ),
            (["--listen", "0.0.0.0:0", "--token-file", longToken.path], "requires --tls-cert and --tls-key"),
        ] {
            let result = try BuiltProducts.runGhostnet(
                ["coordinator", "--data-dir", directory.path] + arguments, timeout: 60)
            #expect(result.status != 0)
            #expect(result.standardError.contains(message), "\(result.combined)")
        }
    }

    @Test("with --token-file the daemon answers 401 without the token and 201 with it")
    func tokenFile() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenFile = directory.appendingPathComponent("token")
        try Data("cli-token-1234567\n".utf8).write(to: tokenFile)
        let daemon = try CoordinatorProcess(
            directory: directory, extraArguments: ["--token-file", tokenFile.path, "--insecure-http"])
        #expect(try daemon.post(job: "t", Self.records[0]).status == 401)
        let authorised = try HTTPExchange.send(
            "POST", "/v1/jobs/t/records", to: daemon.endpoint, headers: [("Authorization", "bearer cli-token-1234567")],
            body: Array(Self.records[0].utf8))
        #expect(authorised.status == 201)
        #expect(daemon.terminate() == 0)
        #expect(daemon.log.contains("WARNING --insecure-http: serving plain HTTP"), "\(daemon.log)")
    }
}
