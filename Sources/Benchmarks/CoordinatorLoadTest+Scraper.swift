// The scraper of `diagnose coordinator-load`: reads `/metrics` and `/v1/jobs` at a fixed interval, as
// Prometheus does, and the dashboard as often as an open one reloads itself, and checks each answer holds every record
// the clients had acknowledged before it was asked for (read-your-writes across clients).

import CoordinatorClient
import Foundation
import PerformanceRecords
import StrictJSON
import Synchronization

extension CoordinatorLoadTest {
    /// What the scraper saw, over all phases.
    package struct ScrapeTally: Sendable {
        /// Scrapes made; each reads `/metrics` and `/v1/jobs`, some the dashboard too.
        package var scrapes = 0
        /// Seconds each scrape took.
        package var latencies: [Double] = []

        mutating func add(_ other: ScrapeTally) {
            scrapes += other.scrapes
            latencies += other.latencies
        }

        var lines: [String] {
            guard scrapes > 0 else { return [] }
            let sorted = latencies.sorted()
            return [
                String(
                    format: "scrapes of /metrics, /v1/jobs (and / every 10 s): %d, latency median %.1f ms, max %.1f ms",
                    scrapes, sorted[sorted.count / 2] * 1000, sorted[sorted.count - 1] * 1000)
            ]
        }
    }

    /// Scrapes every `scrapeInterval` seconds from `start` until `deadline` (a scrape that takes
    /// longer delays the next); failures go into `report`.
    func runScraper(
        from start: Double, until deadline: Double, acknowledged: AcknowledgedRecords, into report: inout Report
    ) -> ScrapeTally {
        var tally = ScrapeTally()
        var due = start
        var dashboardDue = start
        while due < deadline {
            let now = LogTimestamp.now()
            if now < due { Thread.sleep(forTimeInterval: due - now) }
            let started = LogTimestamp.now()
            let dashboard = started >= dashboardDue
            if dashboard { dashboardDue = started + CoordinatorLoadTest.dashboardInterval }
            scrape(expecting: acknowledged.counts.withLock { $0 }, dashboard: dashboard, into: &report)
            tally.latencies.append(LogTimestamp.now() - started)
            tally.scrapes += 1
            due = max(due + scrapeInterval, started)
        }
        return tally
    }

    /// Seconds between two reads of the dashboard: an open one reloads itself every 10 s
    /// (`DashboardPage.refreshSeconds`).
    static let dashboardInterval = 10.0

    /// Reads `/metrics`, `/v1/jobs` and (`dashboard`) `/`; the first two must count at least
    /// `expected[client]` records for each client's job, and `/metrics` must name each family once.
    private func scrape(expecting expected: [Int], dashboard: Bool, into report: inout Report) {
        if let text = get("/metrics", into: &report) {
            var stored: [String: Int] = [:]
            var families: [Substring: Int] = [:]
            let prefix = "ghostnet_coordinator_records_stored{job=\""
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") { families[line.split(separator: " ")[2], default: 0] += 1 }
                guard line.hasPrefix(prefix), let quote = line.dropFirst(prefix.count).firstIndex(of: "\"") else {
                    continue
                }
                stored[String(line[line.index(line.startIndex, offsetBy: prefix.count)..<quote])] =
                    line.split(separator: " ").last.flatMap { Int($0) }
            }
            for (family, count) in families where count > 1 {
                report.fail("GET /metrics: family \(family) has \(count) TYPE lines, expected 1")
            }
            check("/metrics", stored, expected, into: &report)
        }
        if let text = get("/v1/jobs", into: &report) {
            var stored: [String: Int] = [:]
            if case .object(let members)? = try? JSONValue(parsing: text),
                case .array(let jobs)? = members.first(where: { $0.key == "jobs" })?.value
            {
                for case .object(let job) in jobs {
                    guard case .string(let name)? = job.first(where: { $0.key == "name" })?.value,
                        case .number(let count)? = job.first(where: { $0.key == "records" })?.value
                    else { continue }
                    stored[name] = count.integerValue
                }
            } else {
                report.fail("GET /v1/jobs: not a {\"jobs\": [...]} object: \(text.prefix(200))")
            }
            check("/v1/jobs", stored, expected, into: &report)
        }
        if dashboard, let html = get("/", into: &report), !html.hasSuffix("</html>\n") {
            report.fail("GET /: the dashboard does not end in </html>: …\(html.suffix(80))")
        }
    }

    /// Fails for every client job whose count in `stored` is below what the client had acknowledged.
    private func check(_ path: String, _ stored: [String: Int], _ expected: [Int], into report: inout Report) {
        for (client, count) in expected.enumerated() where count > 0 {
            let job = "\(jobPrefix)-\(client)"
            if let seen = stored[job], seen >= count { continue }
            report.fail(
                "GET \(path): job \(job) shows \(stored[job].map(String.init) ?? "no") records, "
                    + "\(count) were acknowledged before the read")
        }
    }

    /// The body of a 200 answer to GET `path`, or nil after recording the failure.
    private func get(_ path: String, into report: inout Report) -> String? {
        do {
            let response = try HTTPExchange.send(
                "GET", path, to: endpoint, headers: authorization, timeout: requestTimeout)
            guard response.status == 200 else {
                report.fail("GET \(path): \(response.status) \(response.bodyText.prefix(200))")
                return nil
            }
            return response.bodyText
        } catch {
            report.fail("GET \(path): \(error)")
            return nil
        }
    }
}
