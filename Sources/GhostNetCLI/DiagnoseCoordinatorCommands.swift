// `diagnose coordinator-load` and `diagnose record-stream`: tools that exercise a running coordinator.

import ArgumentParser
import Benchmarks
import CoordinatorClient
import PerformanceRecords

extension DiagnoseCommand {
    /// `diagnose coordinator-load`: a bounded loopback load test of a running coordinator.
    struct CoordinatorLoad: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coordinator-load",
            abstract:
                "Load-test a running coordinator with valid and malformed requests, then check every stored record.",
            discussion: """
                --clients threads each own the job PREFIX-N and, for --duration seconds, post new records (up to \
                --records-per-client), re-post stored ones (answered as duplicates), read what a worker reads \
                (/healthz and their own job: summary, best set, records) and, every --malformed-interval \
                requests, send a malformed request (broken JSON, NaN, missing field, oversized body, bad job \
                name, path trick, unknown route, conflicting record, non-HTTP bytes, body cut short). \
                The pages that grow with the number of jobs are read by one scraper: /metrics and /v1/jobs every \
                --scrape-interval seconds (Prometheus scrapes every 15 s by default), the dashboard / every 10 s \
                (as an open one reloads itself); each answer must count every record the clients had \
                acknowledged before it. \
                With --progress-jobs N, a second phase of --duration seconds follows the records-only one: the \
                same clients again while N more jobs (PREFIX-progress-N) each post a progress report every \
                --progress-interval seconds, as rank 0 of N running jobs would, from --progress-senders \
                threads. The summary gives the clients' request rate in both phases and their ratio. \
                Afterwards every job is read back and compared with the records and progress reports the \
                coordinator acknowledged. \
                Prints a summary ending in 'load test: ok'; exits non-zero on any unanswered valid request, \
                unexpected answer or record mismatch. Use a fresh job prefix per run.
                """)

        @Option(help: "The coordinator, http://HOST:PORT.")
        var coordinator: String

        @Option(parsing: .unconditional, help: "Concurrent clients (1-64).")
        var clients = 20

        @Option(parsing: .unconditional, help: "Seconds of load per phase (0-300, more than 0).")
        var duration = 30.0

        @Option(
            parsing: .unconditional,
            help: "New records each client stores at most (1-1000000); later record posts are re-posts.")
        var recordsPerClient = 200

        @Option(
            parsing: .unconditional,
            help: "Every this many requests of a client, one is malformed (0-1000000; 0: none).")
        var malformedInterval = 5

        @Option(help: "Job name prefix; client N uses PREFIX-N.")
        var jobPrefix = "load"

        @Option(help: "File whose first line is the coordinator's bearer token.")
        var tokenFile: String?

        @Option(parsing: .unconditional, help: "Jobs posting progress reports throughout (0-100000; 0: none).")
        var progressJobs = 0

        @Option(parsing: .unconditional, help: "Seconds between two progress reports of one job (0.1-3600).")
        var progressInterval = 1.0

        @Option(
            parsing: .unconditional,
            help: "Threads posting the progress reports, each for its share of the jobs in turn (1-1000).")
        var progressSenders = 32

        @Option(
            parsing: .unconditional,
            help: "Seconds between two scrapes of /metrics and /v1/jobs (0-3600; 0: no scraper).")
        var scrapeInterval = 1.0

        func validate() throws {
            try OptionRange.check("--progress-jobs", progressJobs, 0...100_000)
            try OptionRange.check("--progress-interval", progressInterval, 0.1...3600)
            try OptionRange.check("--progress-senders", progressSenders, 1...1000)
            try OptionRange.check("--scrape-interval", scrapeInterval, 0...3600)
            try OptionRange.check("--clients", clients, 1...64)
            guard duration > 0 else { throw ValidationError("--duration must be more than 0 seconds, got \(duration)") }
            try OptionRange.check("--duration", duration, 0...300)
            try OptionRange.check("--records-per-client", recordsPerClient, 1...1_000_000)
            try OptionRange.check("--malformed-interval", malformedInterval, 0...1_000_000)
            guard JobName.isValid("\(jobPrefix)-\(clients - 1)") else {
                throw ValidationError(
                    "--job-prefix '\(jobPrefix)' does not make valid job names ([A-Za-z0-9._-], at most \(JobName.maximumLength))"
                )
            }
        }

        func run() throws {
            var test = CoordinatorLoadTest(endpoint: try HTTPEndpoint(url: coordinator))
            test.clients = clients
            test.duration = duration
            test.recordsPerClient = recordsPerClient
            test.malformedInterval = malformedInterval
            test.jobPrefix = jobPrefix
            test.progressJobs = progressJobs
            test.progressInterval = progressInterval
            test.progressSenders = progressSenders
            test.scrapeInterval = scrapeInterval
            test.token = try tokenFile.map { path throws(HTTPClientError) in try BearerToken.read(from: path) }
            let report = test.run()
            for line in report.lines { print(line) }
            if !report.passed { throw ExitCode.failure }
        }
    }

    /// `diagnose record-stream`: a worker stand-in reporting a fixed record sequence.
    struct RecordStream: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "record-stream",
            abstract:
                "Report a fixed sequence of records through the worker's client (spool and retries), as rank 0 of train does.",
            discussion: """
                Record i (1-based) is epoch i, step 100·i, timestamp 1700000000 + 60·i, with accuracy_top1 and loss \
                following fixed curves, so two runs give identical records. Records made while the coordinator is \
                unreachable wait in --spool and go out, in order, with the next record or while draining. Prints one \
                line per record; exits non-zero if records are still pending after --drain-timeout seconds.
                """)

        @Option(help: "The coordinator, http://HOST:PORT (default: $GHOSTNET_COORDINATOR).")
        var coordinator: String?

        @Option(help: "The job the records belong to.")
        var job: String

        @Option(help: "The spool file (records waiting for delivery).")
        var spool: String

        @Option(parsing: .unconditional, help: "Records to send (1-1000000).")
        var records = 20

        @Option(parsing: .unconditional, help: "Seconds between records (0-3600).")
        var interval = 0.5

        @Option(help: "The worker_id of the records.")
        var workerID = "0"

        @Option(parsing: .unconditional, help: "Seconds to keep delivering the spool after the last record (0-86400).")
        var drainTimeout = 60.0

        func validate() throws {
            try OptionRange.check("--records", records, 1...1_000_000)
            try OptionRange.check("--interval", interval, 0...3600)
            try OptionRange.check("--drain-timeout", drainTimeout, 0...86_400)
        }

        func run() throws {
            guard
                let configuration = try CoordinatorClientConfiguration.resolve(
                    configuredURL: coordinator, job: job, spoolPath: spool)
            else {
                throw ValidationError(
                    "no coordinator: give --coordinator or set \(CoordinatorClientConfiguration.urlVariable)")
            }
            var stream = SyntheticRecordStream(count: records, interval: interval)
            stream.workerID = workerID
            let outcome = try stream.run(
                client: CoordinatorClient(configuration: configuration), drainTimeout: drainTimeout
            ) { print($0) }
            print(
                "record stream: \(outcome.delivered) delivered, \(outcome.rejected) rejected, \(outcome.pending) pending, "
                    + "\(outcome.roundsWithPending) round(s) with the coordinator unreachable")
            if outcome.pending > 0 || outcome.rejected > 0 { throw ExitCode.failure }
        }
    }
}
