// `ghostnet-d jobs` and `ghostnet-d follow JOB`: the coordinator's job table and one job's
// progress, state changes and Best values lines, read from its API from any machine.

import ArgumentParser
import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON

/// Where the coordinator is and how to authenticate: shared by `jobs` and `follow`.
struct CoordinatorAccessOptions: ParsableArguments {
    @Option(help: "The coordinator, http(s)://HOST:PORT (default: $GHOSTNET_COORDINATOR).")
    var coordinator: String?

    @Option(help: "File whose first line is the bearer token (default: $GHOSTNET_COORDINATOR_TOKEN_FILE).")
    var tokenFile: String?

    /// GETs `path` and parses the JSON answer.
    ///
    /// - Throws: `ValidationError` without a coordinator, `HTTPClientError` when it cannot be
    ///   reached, `CoordinatorAnswer` for a non-2xx answer or a body that is not JSON.
    func get(_ path: String) throws -> JSONValue {
        // Only the endpoint and token are used: nothing is spooled when reading.
        guard
            var access = try CoordinatorClientConfiguration.resolve(
                configuredURL: coordinator, job: "read-only", spoolPath: "")
        else {
            throw ValidationError(
                "no coordinator: give --coordinator or set \(CoordinatorClientConfiguration.urlVariable)")
        }
        if let tokenFile { access.token = try BearerToken.read(from: tokenFile) }
        var headers: [(name: String, value: String)] = []
        if let token = access.token { headers.append(("Authorization", "Bearer \(token)")) }
        let response = try HTTPExchange.send("GET", path, to: access.endpoint, headers: headers, timeout: 10)
        guard (200..<300).contains(response.status), let json = try? JSONValue(parsing: response.body) else {
            throw CoordinatorAnswer(
                status: response.status, path: path, text: LogText.escaped(response.bodyText.prefix(200)))
        }
        return json
    }
}

/// A coordinator answer that is not the expected JSON: its status, the path and the start of the body.
struct CoordinatorAnswer: Error, CustomStringConvertible {
    var status: Int
    var path: String
    var text: String

    var description: String { "coordinator answered GET \(path) with \(status): \(text)" }
}

extension JSONValue {
    /// The member `key` of an object, or nil.
    fileprivate subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    fileprivate var text: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }

    fileprivate var number: Double? {
        guard case .number(let number) = self else { return nil }
        return number.doubleValue
    }
}

/// `ghostnet-d jobs`: the job table.
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Print the coordinator's jobs: state, time in that state, record count and latest progress.")

    @OptionGroup var access: CoordinatorAccessOptions

    func run() throws {
        guard case .array(let jobs)? = try access.get("/v1/jobs")["jobs"] else {
            throw CoordinatorAnswer(status: 200, path: "/v1/jobs", text: "no 'jobs' array")
        }
        let now = Date().timeIntervalSince1970
        var rows = [["JOB", "STATE", "FOR", "RECORDS", "PROGRESS"]]
        for job in jobs {
            let since = job["state_since"]?.number.map { ProgressUpdate.duration(now - $0) } ?? "-"
            let records = job["records"]?.number.map { "\(Int($0))" } ?? "0"
            rows.append([
                job["name"]?.text ?? "?", job["state"]?.text ?? "-", since, records, job["line"]?.text ?? "",
            ])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            let padded = (0..<4).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count) }
            print(LogText.escaped((padded + [row[4]]).joined(separator: "  ")))
        }
    }
}

/// `ghostnet-d follow JOB`: the job's lines as they change, until it ends.
struct FollowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Print a job's progress lines, state changes and Best values lines until it ends.",
        discussion: """
            Polls the coordinator's API, so it works from any machine that can reach it (with the token). \
            Exits 0 when the job finishes, 1 when it fails or is preempted.
            """)

    @Argument(help: "The job to follow.")
    var job: String

    @OptionGroup var access: CoordinatorAccessOptions

    @Option(help: "Seconds between polls (0.2-3600).")
    var interval = 2.0

    func validate() throws {
        guard JobName.isValid(job) else { throw ValidationError("JOB '\(job)' must match [A-Za-z0-9._-]{1,128}") }
        guard (0.2...3600).contains(interval) else {
            throw ValidationError("--interval must be in 0.2...3600 seconds, got \(interval)")
        }
    }

    func run() throws {
        var lastLine: String?
        var lastStateLine: String?
        var lastBest: String?
        while true {
            let status: JSONValue
            do { status = try access.get("/v1/jobs/\(job)") } catch let answer as CoordinatorAnswer
                where answer.status == 404
            {
                // Not started yet: keep waiting, as `tail -f` waits for a file.
                Thread.sleep(forTimeInterval: interval)
                continue
            }
            // A job without records yet has no best set (404).
            var best: String?
            do { best = try access.get("/v1/jobs/\(job)/best")["line"]?.text } catch let answer as CoordinatorAnswer
                where answer.status == 404
            {}
            if let best, best != lastBest { print(LogText.escaped(best)) }
            lastBest = best
            // A state change without a report (a stall, the supervisor's restart) has only its own line.
            let stateLine = status["state_line"]?.text
            if let stateLine, stateLine != lastStateLine, stateLine != status["line"]?.text {
                print(LogText.escaped(stateLine))
            }
            lastStateLine = stateLine
            let line = status["line"]?.text
            if let line, line != lastLine { print(LogText.escaped(line)) }
            lastLine = line
            fflush(nil)  // each line at once, also into a pipe
            switch status["state"]?.text.flatMap(JobState.init(rawValue:)) {
            case .finished?: return
            case .failed?, .preempted?: throw ExitCode(1)
            default: Thread.sleep(forTimeInterval: interval)
            }
        }
    }
}
