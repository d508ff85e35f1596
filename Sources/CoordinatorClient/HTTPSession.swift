// A connection to the coordinator kept open across requests: the sender thread's progress reports
// arrive every few seconds, and a fresh TCP (or TLS) connection for each cost more CPU than the
// request itself on the training node.

/// HTTP/1.1 requests to one endpoint over a kept-open connection, reconnecting when the server has
/// closed it (its idle timeout), says `Connection: close`, or an exchange fails. Not thread-safe:
/// one thread owns a session.
///
/// A request that fails on a reused connection before any answer arrived is sent once more on a
/// fresh one: the server may have closed the idle connection just as the request went out. The
/// client's requests are safe to repeat (records are idempotent, progress and state are the newest).
package final class HTTPSession {
    package let endpoint: HTTPEndpoint
    private var connection: HTTPConnection?

    package init(endpoint: HTTPEndpoint) {
        self.endpoint = endpoint
    }

    /// Sends `method path` and reads its response, as ``HTTPExchange/send(_:_:to:headers:body:timeout:connectTimeout:)``
    /// does, over the session's connection.
    ///
    /// - Throws: ``HTTPClientError`` when the exchange fails or the response is malformed; the
    ///   connection is then closed.
    package func send(
        _ method: String, _ path: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        timeout: Double = 5, connectTimeout: Double = HTTPExchange.defaultConnectTimeout
    ) throws(HTTPClientError) -> HTTPExchangeResponse {
        let request = HTTPExchange.request(method, path, to: endpoint, headers: headers, body: body, keepAlive: true)
        let deadline = MonotonicDeadline(secondsFromNow: timeout)
        if let reused = connection, reused.isOpenAndIdle {
            do {
                return try exchange(request, on: reused, until: deadline)
            } catch {
                // Closed under the request: once more on a fresh connection.
                guard error.code == .connectionFailed else { throw error }
            }
        }
        connection = nil
        let fresh = try HTTPConnection.open(
            to: endpoint, deadline: MonotonicDeadline(secondsFromNow: min(connectTimeout, timeout)))
        return try exchange(request, on: fresh, until: deadline)
    }

    /// One request and its response on `open`, which the session keeps only if it stays usable.
    private func exchange(_ request: [UInt8], on open: HTTPConnection, until deadline: MonotonicDeadline)
        throws(HTTPClientError) -> HTTPExchangeResponse
    {
        connection = nil
        try open.send(request, until: deadline)
        let (raw, reusable) = try open.receiveResponse(limit: HTTPExchange.maximumResponseBytes, until: deadline)
        guard !raw.isEmpty else {
            throw HTTPClientError(.connectionFailed, endpoint, "the connection was closed without an answer")
        }
        let response = try HTTPResponseParser.parse(raw, from: endpoint)
        if reusable, response.header("Connection")?.lowercased() != "close" { connection = open }
        return response
    }
}
