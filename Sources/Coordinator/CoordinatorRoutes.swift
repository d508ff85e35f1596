// The coordinator's HTTP API and dashboard routes, the bearer-token check, and the middleware that
// turns every failure into a JSON error and a (log-escaped) warning line.

import Hummingbird
import Logging
import PerformanceRecords
import StrictJSON

/// A refusal with a status and a one-line reason, answered as `{"error": "<reason>"}`.
package struct APIError: HTTPResponseError, CustomStringConvertible {
    package var status: HTTPResponse.Status
    package var reason: String
    /// Sent as `Retry-After` when set (with 503: the coordinator is busy, not broken).
    package var retryAfterSeconds: Int?

    package init(_ status: HTTPResponse.Status, _ reason: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
    }

    package var description: String { "\(status.code) \(reason)" }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(.object([("error", .string(reason))]), status: status)
        if let retryAfterSeconds { response.headers[.retryAfter] = String(retryAfterSeconds) }
        return response
    }
}

/// JSON responses from ordered values, so record keys keep their order on the way out too.
package enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        make(serialized: value.serialized, status: status)
    }

    /// A response from JSON text already serialized.
    static func make(serialized: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: serialized + "\n")))
    }

    /// The `/v1/jobs` body rendered from scratch: every job's summary (see `job`), in name order.
    /// The route serves the same text from `JobFragmentCache`.
    package static func jobList(_ state: CoordinatorState) -> JSONValue {
        .object([("jobs", .array(state.allJobNames.map { job($0, in: state, detailed: false) }))])
    }

    static func records(_ records: [PerformanceRecord]) -> JSONValue {
        .array(records.map(\.json))
    }

    /// A job's summary: name, record count, best set, and (when it reports progress) its state,
    /// when that state began, the progress line and the flagged stragglers; `detailed` adds the
    /// latest report and its slowest and median step time.
    static func job(_ name: String, in state: CoordinatorState, detailed: Bool) -> JSONValue {
        let records = state.jobs[name]
        var members: [(key: String, value: JSONValue)] = [
            ("name", .string(name)), ("records", .integer(records?.records.count ?? 0)),
            ("best", JSONResponse.records(records?.best ?? [])),
        ]
        guard let progress = state.progress[name] else { return .object(members + [("state", .null)]) }
        members.append(("state", .string(progress.state.rawValue)))
        members.append(("state_since", .double(progress.stateSince)))
        if let stateLine = progress.stateLine { members.append(("state_line", .string(stateLine))) }
        if let latest = progress.latest {
            members.append(("line", .string(latest.report.line(job: name, state: progress.state))))
            if detailed {
                members.append(("progress", latest.report.json))
                members.append(("slowest_step_seconds", .double(latest.slowestStepSeconds)))
                members.append(("median_step_seconds", .double(latest.medianStepSeconds)))
            }
        }
        members.append(
            (
                "stragglers",
                .array(
                    progress.stragglers.map {
                        .object([
                            ("rank", .integer($0.rank)), ("host", .string($0.host)),
                            ("step_seconds", .double($0.stepSeconds)), ("median_seconds", .double($0.medianSeconds)),
                        ])
                    })
            ))
        return .object(members)
    }
}

/// Turns every error into a JSON answer and logs refusals at warning level, so no request ends in
/// an empty 500 or passes unlogged.
struct ErrorShapingMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: CoordinatorService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let metadata: Logger.Metadata = ["method": "\(request.method)", "path": "\(request.uri.path.prefix(200))"]
        do {
            return try await next(request, context)
        } catch let error as APIError {
            service.reject(error.description, metadata: metadata)
            return try error.response(from: request, context: context)
        } catch let error as HTTPResponseError {
            let refusal = APIError(
                error.status, error.status == .notFound ? "no such resource" : error.status.reasonPhrase)
            service.reject(refusal.description, metadata: metadata)
            return try refusal.response(from: request, context: context)
        } catch {
            service.logger.error("request failed: \(error)", metadata: metadata)
            return try APIError(.internalServerError, "internal error").response(from: request, context: context)
        }
    }
}

/// Requires `Authorization: Bearer <token>` on every request: the scheme in any case, then one or
/// more spaces, then the token, compared in constant time (RFC 6750 section 2.1, RFC 7235's
/// case-insensitive auth-scheme).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let presented = BearerTokenMiddleware.credentials(request.headers[.authorization] ?? ""),
            BearerTokenMiddleware.constantTimeEqual(presented, token)
        else {
            throw APIError(.unauthorized, "unauthorized")
        }
        return try await next(request, context)
    }

    /// The token of an `Authorization` value whose scheme is `bearer` in any case, or nil.
    static func credentials(_ value: String) -> [UInt8]? {
        let bytes = Array(value.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count, zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }),
            bytes[scheme.count] == UInt8(ascii: " ")
        else { return nil }
        return Array(bytes[scheme.count...].drop { $0 == UInt8(ascii: " ") })
    }

    /// Whether `a == b`, taking time that depends only on the lengths, not on where they differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// The coordinator's HTTP API and dashboard.
package enum CoordinatorRoutes {
    /// Builds the router: `POST/GET /v1/jobs/{job}/records` (a POST answers `job`, `duplicate`,
    /// `best_changed` and `best_count`), `GET /v1/jobs/{job}/best`, `POST /v1/jobs/{job}/progress`
    /// and `POST /v1/jobs/{job}/state` (the supervisor's state changes; both answer `job` and
    /// `state`), `GET /v1/jobs/{job}`, `GET /v1/jobs/{job}/records.csv` and
    /// `progress.csv`, `GET /v1/jobs`, `GET /healthz`, `GET /metrics`, `GET /`.
    package static func router(service: CoordinatorService, token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorShapingMiddleware(service: service))
        if let token { router.middlewares.add(BearerTokenMiddleware(token: Array(token.utf8))) }

        router.post("/v1/jobs/:job/records") { request, context -> Response in
            let job = try jobName(context)
            let body = try await boundedBody(request)
            let record: PerformanceRecord
            do { record = try PerformanceRecord(jsonText: body.readableBytesView) } catch let error as JSONSyntaxError {
                throw APIError(.badRequest, error.description)
            } catch {
                throw APIError(.unprocessableContent, "\(error)")
            }
            let result = try await service.receive(record, job: job)
            switch result.outcome {
            case .conflict:
                throw APIError(
                    .conflict,
                    "a different record for worker_id \(PythonRepr.string(record.workerID)), epoch \(record.epoch), "
                        + "step \(record.step) is already stored in job \(job)"
                )
            case .refused(let reason):
                throw APIError(.unprocessableContent, reason)
            case .inserted, .duplicate:
                // The best set itself is at GET .../best: an answer of fixed size keeps each POST's work bounded.
                return JSONResponse.make(
                    .object([
                        ("job", .string(job)), ("duplicate", .bool(result.outcome == .duplicate)),
                        ("best_changed", .bool(result.bestChanged)), ("best_count", .integer(result.bestCount)),
                    ]),
                    status: result.outcome == .inserted ? .created : .ok)
            }
        }
        router.post("/v1/jobs/:job/progress") { request, context -> Response in
            let job = try jobName(context)
            let body = try await boundedBody(request)
            let report: ProgressUpdate
            do { report = try ProgressUpdate(jsonText: body.readableBytesView) } catch let error as JSONSyntaxError {
                throw APIError(.badRequest, error.description)
            } catch {
                throw APIError(.unprocessableContent, "\(error)")
            }
            let state: JobState
            do { state = try await service.receive(report, job: job) } catch let error as WriteQueueFull {
                throw APIError(.serviceUnavailable, error.description, retryAfterSeconds: 1)
            }
            return JSONResponse.make(.object([("job", .string(job)), ("state", .string(state.rawValue))]))
        }
        router.post("/v1/jobs/:job/state") { request, context -> Response in
            let job = try jobName(context)
            let body = try await boundedBody(request)
            let change: JobStateReport
            do { change = try JobStateReport(jsonText: body.readableBytesView) } catch let error as JSONSyntaxError {
                throw APIError(.badRequest, error.description)
            } catch {
                throw APIError(.unprocessableContent, "\(error)")
            }
            let state = try await service.receive(change, job: job)
            return JSONResponse.make(.object([("job", .string(job)), ("state", .string(state.rawValue))]))
        }
        router.get("/v1/jobs/:job") { _, context -> Response in
            let name = try jobName(context)
            let state = service.snapshot
            guard state.jobs[name] != nil || state.progress[name] != nil else {
                throw APIError(.notFound, "no job named \(name)")
            }
            return JSONResponse.make(JSONResponse.job(name, in: state, detailed: true))
        }
        router.get("/v1/jobs/:job/records.csv") { _, context -> Response in
            csv(JobCSV.records(try knownJob(context, service: service).records))
        }
        router.get("/v1/jobs/:job/progress.csv") { _, context -> Response in
            let name = try jobName(context)
            guard let progress = service.progress(name) else { throw APIError(.notFound, "no progress of job \(name)") }
            return csv(JobCSV.progress(JobProgress.downsampled(progress.history)))
        }
        router.get("/v1/jobs/:job/records") { _, context -> Response in
            let job = try knownJob(context, service: service)
            return JSONResponse.make(
                .object([("job", .string(job.name)), ("records", JSONResponse.records(job.records))]))
        }
        router.get("/v1/jobs/:job/best") { _, context -> Response in
            let job = try knownJob(context, service: service)
            return JSONResponse.make(
                .object([
                    ("job", .string(job.name)),
                    ("objectives", .array(job.objectives.map { .string($0.description) })),
                    ("best", JSONResponse.records(job.best)),
                    ("line", .string(BestValuesLine.message(for: job.best))),
                ]))
        }
        router.get("/v1/jobs") { _, _ -> Response in
            JSONResponse.make(serialized: service.jobsJSON)
        }
        router.get("/healthz") { _, _ -> Response in
            JSONResponse.make(.object([("status", .string("ok"))]))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: service.metricsText)))
        }
        router.get("/") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8",
                    .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'",
                ],
                body: .init(byteBuffer: ByteBuffer(string: service.dashboardHTML)))
        }
        return router
    }

    /// The request body, at most `CoordinatorConfiguration.maximumBodyBytes`.
    private static func boundedBody(_ request: Request) async throws -> ByteBuffer {
        var request = request
        do { return try await request.collectBody(upTo: CoordinatorConfiguration.maximumBodyBytes) } catch let error
            as HTTPResponseError where error.status == .contentTooLarge
        {
            throw APIError(.contentTooLarge, "body exceeds \(CoordinatorConfiguration.maximumBodyBytes) bytes")
        } catch {
            throw APIError(.badRequest, "request body ended early: \(error)")
        }
    }

    private static func csv(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8; header=present"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func jobName(_ context: some RequestContext) throws -> String {
        let name = context.parameters.get("job") ?? ""
        do { try JobName.validate(name) } catch { throw APIError(.badRequest, error.message) }
        return name
    }

    private static func knownJob(_ context: some RequestContext, service: CoordinatorService) throws -> JobRecords {
        let name = try jobName(context)
        guard let job = service.job(name) else { throw APIError(.notFound, "no job named \(name)") }
        return job
    }
}
