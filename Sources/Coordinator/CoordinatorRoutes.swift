//===----------------------------------------------------------------------===//
// ghostnet-d — Coordinator
//===----------------------------------------------------------------------===//

import Hummingbird
import Logging
import PerformanceRecords
import StrictJSON

/// A refusal with a status and a one-line reason, answered as `{"error": "<reason>"}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var reason: String

    public init(_ status: HTTPResponse.Status, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code) \(reason)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(.object([("error", .string(reason))]), status: status)
    }
}

/// JSON responses from ordered values, so record keys keep their order on the way out too.
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: value.serialized + "\n")))
    }

    static func records(_ records: [PerformanceRecord]) -> JSONValue {
        .array(records.map(\.json))
    }
}

/// Turns every error into a JSON answer and logs refusals at warning level, so no request ends in
/// an empty 500 or passes unlogged.
struct ErrorShapingMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: CoordinatorService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let metadata: Logger.Metadata = ["method": "\(request.method)", "path": "\(request.uri.path.prefix(200))"]
        do {
            return try await next(request, context)
        } catch let error as APIError {
            service.reject(error.description, metadata: metadata)
            return try error.response(from: request, context: context)
        } catch let error as HTTPResponseError {
            let refusal = APIError(error.status, error.status == .notFound ? "no such resource" : error.status.reasonPhrase)
            service.reject(refusal.description, metadata: metadata)
            return try refusal.response(from: request, context: context)
        } catch {
            service.logger.error("request failed: \(error)", metadata: metadata)
            return try APIError(.internalServerError, "internal error").response(from: request, context: context)
        }
    }
}

/// Requires `Authorization: Bearer <token>` on every request, compared in constant time.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let presented = Array((request.headers[.authorization] ?? "").utf8)
        let expected = Array("Bearer ".utf8) + token
        guard BearerTokenMiddleware.constantTimeEqual(presented, expected) else {
            throw APIError(.unauthorized, "unauthorized")
        }
        return try await next(request, context)
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
public enum CoordinatorRoutes {
    /// Builds the router: `POST/GET /v1/jobs/{job}/records`, `GET /v1/jobs/{job}/best`,
    /// `GET /v1/jobs`, `GET /healthz`, `GET /metrics`, `GET /`.
    public static func router(service: CoordinatorService, token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorShapingMiddleware(service: service))
        if let token { router.middlewares.add(BearerTokenMiddleware(token: Array(token.utf8))) }

        router.post("/v1/jobs/:job/records") { request, context -> Response in
            let job = try jobName(context)
            var request = request
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: CoordinatorConfiguration.maximumBodyBytes) } catch let error as HTTPResponseError where error.status == .contentTooLarge {
                throw APIError(.contentTooLarge, "body exceeds \(CoordinatorConfiguration.maximumBodyBytes) bytes")
            } catch {
                throw APIError(.badRequest, "request body ended early: \(error)")
            }
            let record: PerformanceRecord
            do { record = try PerformanceRecord(jsonText: body.readableBytesView) } catch let error as JSONSyntaxError {
                throw APIError(.badRequest, error.description)
            } catch {
                throw APIError(.unprocessableContent, "\(error)")
            }
            let (outcome, best) = try await service.receive(record, job: job)
            switch outcome {
            case .conflict:
                throw APIError(.conflict, "a different record for worker_id \(PythonRepr.string(record.workerID)), epoch \(record.epoch), step \(record.step) is already stored in job \(job)")
            case .inserted, .duplicate:
                return JSONResponse.make(
                    .object([("job", .string(job)), ("duplicate", .bool(outcome == .duplicate)), ("best", JSONResponse.records(best))]),
                    status: outcome == .inserted ? .created : .ok)
            }
        }
        router.get("/v1/jobs/:job/records") { _, context -> Response in
            let job = try knownJob(context, service: service)
            return JSONResponse.make(.object([("job", .string(job.name)), ("records", JSONResponse.records(job.records))]))
        }
        router.get("/v1/jobs/:job/best") { _, context -> Response in
            let job = try knownJob(context, service: service)
            return JSONResponse.make(.object([
                ("job", .string(job.name)),
                ("objectives", .array(job.objectives.map { .string($0.description) })),
                ("best", JSONResponse.records(job.best)),
                ("line", .string(BestValuesLine.message(for: job.best))),
            ]))
        }
        router.get("/v1/jobs") { _, _ -> Response in
            let state = service.snapshot
            return JSONResponse.make(.object([("jobs", .array(state.jobNames.map { name in
                let job = state.jobs[name]!
                return .object([("name", .string(name)), ("records", .integer(job.records.count)), ("best", JSONResponse.records(job.best))])
            }))]))
        }
        router.get("/healthz") { _, _ -> Response in
            JSONResponse.make(.object([("status", .string("ok"))]))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: MetricsText.render(service.snapshot))))
        }
        router.get("/") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8",
                          .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'"],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.render(service.snapshot))))
        }
        return router
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
