// Plain HTTP/1.1 exchanges with the coordinator: where it listens, one request and its response
// over a fresh connection or over one a session keeps open, and the errors an exchange ends in.

/// Where a coordinator listens: `http://HOST:PORT`, or `https://HOST:PORT` (HTTP/1.1 over TLS).
package struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    /// Whether the coordinator speaks TLS (`https://`).
    package var usesTLS = false
    /// The PEM file of the CA that must have signed an `https://` coordinator's certificate, or nil
    /// for the system's roots.
    package var certificateAuthorityFile: String?

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `http://HOST:PORT` or `https://HOST:PORT`, with or without a final `/` (IPv6 hosts in
    /// brackets).
    ///
    /// - Throws: ``HTTPClientError`` `.invalidURL` naming the text and the expected form.
    package init(url: String) throws(HTTPClientError) {
        let invalid = HTTPClientError(
            .invalidURL, location: "coordinator URL '\(url)'",
            "must have the form http://HOST:PORT or https://HOST:PORT")
        let secure = url.hasPrefix("https://")
        guard secure || url.hasPrefix("http://") else { throw invalid }
        var rest = url.dropFirst(secure ? "https://".count : "http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw invalid }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains("/") else { throw invalid }
        self.init(host: String(host), port: port)
        usesTLS = secure
    }

    package var description: String {
        let scheme = usesTLS ? "https" : "http"
        return host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }
}

/// A failed HTTP exchange or client setting: what kind, where (the coordinator or a file), and why.
package struct HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Code: Sendable, Equatable {
        /// A coordinator URL that is not `http://HOST:PORT`.
        case invalidURL
        /// A token file that cannot be read or holds no token.
        case unreadableToken
        /// No connection: the host does not resolve or refuses.
        case unreachable
        /// A connect, send or receive did not finish by its deadline.
        case timedOut
        /// The connection broke while sending or receiving.
        case connectionFailed
        /// The response is not HTTP/1.x as expected (framing, sizes, status line).
        case malformedResponse
    }

    package var code: Code
    /// The coordinator (`http://HOST:PORT`) or the file concerned.
    package var location: String
    /// What went wrong and, where it helps, what was expected.
    package var message: String

    package init(_ code: Code, location: String, _ message: String) {
        self.code = code
        self.location = location
        self.message = message
    }

    init(_ code: Code, _ endpoint: HTTPEndpoint, _ message: String) {
        self.init(code, location: "coordinator \(endpoint)", message)
    }

    package var description: String { "\(location): \(message)" }
}

/// A response: status code, header fields as sent, and the whole body.
package struct HTTPExchangeResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    /// The first header named `name` (case-insensitive).
    package func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    package var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// One HTTP/1.1 request/response over a fresh connection with `Connection: close`, for one-off
/// requests (the CLI, probes); ``HTTPSession`` keeps a connection for a stream of them. Every
/// exchange is bounded: connecting by its own timeout, the whole exchange by `timeout`.
package enum HTTPExchange {
    /// The largest response accepted; the coordinator's answers are far smaller.
    package static let maximumResponseBytes = 16 << 20
    /// The default bound in seconds on connecting (a host that drops packets never refuses).
    package static let defaultConnectTimeout = 2.0

    /// Sends `method path` to `endpoint` and reads the whole response.
    ///
    /// - Parameters:
    ///   - method: `GET`, `POST`, ...
    ///   - path: the request target, starting with `/`; sent as given.
    ///   - headers: extra header fields (`Host`, `Content-Length` and `Connection` are added).
    ///   - body: the request body, sent with `Content-Length`.
    ///   - timeout: the bound in seconds on the whole exchange.
    ///   - connectTimeout: the bound in seconds on connecting (at most `timeout`).
    /// - Throws: ``HTTPClientError`` when the exchange fails or the response is malformed.
    package static func send(
        _ method: String, _ path: String, to endpoint: HTTPEndpoint,
        headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Double = 5,
        connectTimeout: Double = defaultConnectTimeout
    ) throws(HTTPClientError) -> HTTPExchangeResponse {
        let request = self.request(method, path, to: endpoint, headers: headers, body: body, keepAlive: false)
        let raw = try exchange(raw: request, with: endpoint, timeout: timeout, connectTimeout: connectTimeout)
        return try HTTPResponseParser.parse(raw, from: endpoint)
    }

    /// The bytes of a request with `Host`, `Content-Length` and `Connection` added.
    static func request(
        _ method: String, _ path: String, to endpoint: HTTPEndpoint, headers: [(name: String, value: String)],
        body: [UInt8], keepAlive: Bool
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
        for header in headers { head += "\(header.name): \(header.value)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// Sends `bytes` exactly as given (no framing added) and returns everything the server sends
    /// back until it closes the connection: a probe for how a server treats malformed requests.
    ///
    /// - Parameters:
    ///   - bytes: the request bytes, valid HTTP or not.
    ///   - endpoint: the server.
    ///   - timeout: the bound in seconds on the whole exchange.
    ///   - connectTimeout: the bound in seconds on connecting (at most `timeout`).
    ///   - halfClose: shut the sending side down after `bytes`, so a server still waiting for the
    ///     rest of a declared body sees the stream end instead of waiting.
    /// - Returns: the raw response, empty when the server closed without answering.
    /// - Throws: ``HTTPClientError`` when the connection fails or the server does not close in time.
    package static func exchange(
        raw bytes: [UInt8], with endpoint: HTTPEndpoint, timeout: Double,
        connectTimeout: Double = defaultConnectTimeout, halfClose: Bool = false
    ) throws(HTTPClientError) -> [UInt8] {
        let deadline = MonotonicDeadline(secondsFromNow: timeout)
        let connection = try HTTPConnection.open(
            to: endpoint, deadline: MonotonicDeadline(secondsFromNow: min(connectTimeout, timeout)))
        try connection.send(bytes, until: deadline)
        if halfClose { connection.shutdownSending() }
        return try connection.receiveAll(limit: maximumResponseBytes, until: deadline)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
