// Running the built `ghostnet-d` binary and other programs from tests, with a timeout and captured output.

import Foundation

/// The result of running a program to completion.
package struct ProcessResult: Sendable {
    package var status: Int32
    package var standardOutput: String
    package var standardError: String
    /// Output and error, for messages.
    package var combined: String { standardOutput + standardError }
}

/// Locating and running the built `ghostnet-d` binary (and `mpirun`) from integration tests.
package enum BuiltProducts {
    /// The folder holding the test bundle, which is also where SwiftPM puts the executables.
    package static var productsDirectory: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The `ghostnet-d` executable built alongside the tests.
    package static var ghostnetExecutable: URL {
        productsDirectory.appendingPathComponent("ghostnet-d")
    }

    /// The package root (the folder with Package.swift), for shipped files such as rank_tables/.
    package static var packageRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }

    /// Runs `executable` with `arguments`, waits at most `timeout` seconds (then kills it and
    /// reports status -9), and returns its exit status and output.
    package static func run(
        _ executable: URL, _ arguments: [String],
        environment: [String: String] = [:], currentDirectory: URL? = nil,
        timeout: TimeInterval = 300
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outputFile = try TemporaryDirectory.make().appendingPathComponent("out")
        let errorFile = outputFile.deletingLastPathComponent().appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        let error = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: outputFile.deletingLastPathComponent())
        let status =
            process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
        return ProcessResult(status: status, standardOutput: output, standardError: error)
    }

    /// Runs the built `ghostnet-d` with `arguments`.
    package static func runGhostnet(
        _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 300
    ) throws -> ProcessResult {
        try run(ghostnetExecutable, arguments, environment: environment, timeout: timeout)
    }

    /// The `mpirun` found on PATH, or nil.
    package static var mpirun: URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// `mpirun` arguments for `ranks` local processes of the built `ghostnet-d` (oversubscribed,
    /// loopback only, root allowed when running as root).
    package static func mpirunArguments(ranks: Int, _ arguments: [String]) -> [String] {
        var launch = [
            "-np", "\(ranks)", "--oversubscribe", "--bind-to", "none",
            "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
            "--mca", "oob_tcp_if_include", "lo",
        ]
        if getuid() == 0 { launch.append("--allow-run-as-root") }
        return launch + [ghostnetExecutable.path] + arguments
    }
}

/// A fresh directory for one test, inside a folder of this test process that is removed when the process
/// exits: a test run leaves nothing in the system's temporary folder, whether or not a test failed before
/// its own clean-up (before, each `make test` left about 50 folders of datasets, logs and checkpoints there).
package enum TemporaryDirectory {
    private static let processFolder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ghostnet-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: TemporaryDirectory.processFolder) }
        return url
    }()

    package static func make(prefix: String = "ghostnet-test") throws -> URL {
        let url = processFolder.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
