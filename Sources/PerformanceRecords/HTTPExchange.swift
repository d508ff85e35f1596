//===----------------------------------------------------------------------===//
// ghostnet-d — PerformanceRecords
//===----------------------------------------------------------------------===//

import Glibc

/// Where a coordinator listens: `http://HOST:PORT` (plain HTTP/1.1; the coordinator has no TLS).
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `http://HOST:PORT` or `http://HOST:PORT/` (IPv6 hosts in brackets).
    ///
    /// - Throws: `HTTPClientError` naming the text and the expected form.
    public init(url: String) throws(HTTPClientError) {
        let invalid = HTTPClientError("coordinator URL '\(url)' must have the form http://HOST:PORT")
        guard url.hasPrefix("http://") else { throw invalid }
        var rest = url.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw invalid }
        var host = rest[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains("/") else { throw invalid }
        self.init(host: String(host), port: port)
    }

    public var description: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }
}

/// A failed HTTP exchange (no connection, timeout, malformed response); the message says which.
public struct HTTPClientError: Error, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// A response: status code, header fields as sent, and the whole body.
public struct HTTPExchangeResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// One HTTP/1.1 request/response over a fresh blocking socket with `Connection: close`.
///
/// Small on purpose: workers send a record every epoch, so connection reuse buys nothing, and a
/// blocking exchange with hard deadlines (connect, send, receive) cannot leave a training step
/// waiting on a coordinator that stopped answering.
public enum HTTPExchange {
    /// The largest response accepted; the coordinator's answers are far smaller.
    public static let maximumResponseBytes = 16 << 20

    /// Sends `method path` to `endpoint` and reads the whole response.
    ///
    /// - Parameters:
    ///   - method: `GET`, `POST`, ...
    ///   - path: the request target, starting with `/`; sent as given.
    ///   - headers: extra header fields (`Host`, `Content-Length` and `Connection` are added).
    ///   - body: the request body, sent with `Content-Length`.
    ///   - timeout: the bound in seconds on the whole exchange.
    /// - Throws: `HTTPClientError` when the exchange fails or the response is malformed.
    public static func send(
        _ method: String, _ path: String, to endpoint: HTTPEndpoint,
        headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Double = 5
    ) throws(HTTPClientError) -> HTTPExchangeResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
        for header in headers { head += "\(header.name): \(header.value)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let raw = try exchange(raw: Array(head.utf8) + body, with: endpoint, timeout: timeout)
        return try parseResponse(raw, endpoint: endpoint)
    }

    /// Sends `bytes` exactly as given (no framing added) and returns everything the server sends
    /// back until it closes the connection: a probe for how a server treats malformed requests.
    ///
    /// - Parameters:
    ///   - bytes: the request bytes, valid HTTP or not.
    ///   - endpoint: the server.
    ///   - timeout: the bound in seconds on the whole exchange.
    ///   - halfClose: shut the sending side down after `bytes`, so a server still waiting for the
    ///     rest of a declared body sees the stream end instead of waiting.
    /// - Returns: the raw response, empty when the server closed without answering.
    /// - Throws: `HTTPClientError` when the connection fails or the server does not close in time.
    public static func exchange(
        raw bytes: [UInt8], with endpoint: HTTPEndpoint, timeout: Double, halfClose: Bool = false
    ) throws(HTTPClientError) -> [UInt8] {
        let deadline = LogTimestamp.now() + timeout
        let socket = try connect(to: endpoint, deadline: deadline)
        defer { close(socket) }
        try sendAll(bytes, on: socket, deadline: deadline, endpoint: endpoint)
        if halfClose { shutdown(socket, Int32(SHUT_WR)) }
        return try receiveAll(on: socket, deadline: deadline, endpoint: endpoint)
    }

    // MARK: Socket steps

    private static func connect(to endpoint: HTTPEndpoint, deadline: Double) throws(HTTPClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            throw HTTPClientError("cannot resolve \(endpoint): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }

        var lastError = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let socket = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socket >= 0 else {
                lastError = String(cString: strerror(errno))
                continue
            }
            // Non-blocking connect, so the connect deadline is ours rather than the kernel's minutes.
            let flags = fcntl(socket, F_GETFL)
            _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
            if Glibc.connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno))
                close(socket)
                continue
            }
            var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, remainingMilliseconds(until: deadline))
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if ready == 1 && socketError == 0 {
                _ = fcntl(socket, F_SETFL, flags)
                return socket
            }
            lastError = ready == 0 ? "connect timed out" : String(cString: strerror(socketError != 0 ? socketError : errno))
            close(socket)
        }
        throw HTTPClientError("cannot connect to \(endpoint): \(lastError)")
    }

    private static func remainingMilliseconds(until deadline: Double) -> Int32 {
        Int32(max(0, min(Double(Int32.max), ((deadline - LogTimestamp.now()) * 1000).rounded(.up))))
    }

    /// Waits until `socket` is ready for `events` or the deadline passes.
    private static func wait(
        _ socket: Int32, for events: Int32, deadline: Double, endpoint: HTTPEndpoint
    ) throws(HTTPClientError) {
        var poller = pollfd(fd: socket, events: Int16(events), revents: 0)
        while true {
            let ready = poll(&poller, 1, remainingMilliseconds(until: deadline))
            if ready > 0 { return }
            if ready == 0 { throw HTTPClientError("\(endpoint) did not answer in time") }
            if errno != EINTR { throw HTTPClientError("poll on \(endpoint) failed: \(String(cString: strerror(errno)))") }
        }
    }

    private static func sendAll(
        _ bytes: [UInt8], on socket: Int32, deadline: Double, endpoint: HTTPEndpoint
    ) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            try wait(socket, for: Int32(POLLOUT), deadline: deadline, endpoint: endpoint)
            let sent = bytes.withUnsafeBytes { buffer in
                Glibc.send(socket, buffer.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HTTPClientError("sending to \(endpoint) failed: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    private static func receiveAll(
        on socket: Int32, deadline: Double, endpoint: HTTPEndpoint
    ) throws(HTTPClientError) -> [UInt8] {
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            try wait(socket, for: Int32(POLLIN), deadline: deadline, endpoint: endpoint)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 { return response }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                // A reset after a complete response (server closed first) still leaves a usable answer.
                if errno == ECONNRESET, !response.isEmpty { return response }
                throw HTTPClientError("reading from \(endpoint) failed: \(String(cString: strerror(errno)))")
            }
            response.append(contentsOf: chunk[0..<count])
            guard response.count <= maximumResponseBytes else {
                throw HTTPClientError("response from \(endpoint) exceeds \(maximumResponseBytes) bytes")
            }
        }
    }

    // MARK: Response parsing

    static func parseResponse(_ raw: [UInt8], endpoint: HTTPEndpoint) throws(HTTPClientError) -> HTTPExchangeResponse {
        guard let headEnd = raw.indices.dropLast(3).first(where: {
            raw[$0] == 13 && raw[$0 + 1] == 10 && raw[$0 + 2] == 13 && raw[$0 + 3] == 10
        }) else {
            throw HTTPClientError("malformed response from \(endpoint): no complete header")
        }
        let lines = String(decoding: raw[..<headEnd], as: UTF8.self)
            .split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw HTTPClientError("malformed status line from \(endpoint): '\(lines[0])'")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPClientError("malformed header line from \(endpoint): '\(line)'")
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingWhitespace()))
        }
        var response = HTTPExchangeResponse(status: status, headers: headers, body: Array(raw[(headEnd + 4)...]))
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            response.body = try decodeChunked(response.body, endpoint: endpoint)
        } else if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0, length <= response.body.count else {
                throw HTTPClientError("response from \(endpoint) is shorter than its Content-Length \(lengthText)")
            }
            response.body = Array(response.body.prefix(length))
        }
        return response
    }

    private static func decodeChunked(_ bytes: [UInt8], endpoint: HTTPEndpoint) throws(HTTPClientError) -> [UInt8] {
        var body: [UInt8] = []
        var position = 0
        while true {
            guard let lineEnd = bytes[position...].indices.dropLast().first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                let size = Int(String(decoding: bytes[position..<lineEnd], as: UTF8.self)
                    .split(separator: ";").first.map(String.init)?.trimmingWhitespace() ?? "", radix: 16),
                size >= 0, lineEnd + 2 + size <= bytes.count
            else { throw HTTPClientError("malformed chunked body from \(endpoint)") }
            if size == 0 { return body }
            body.append(contentsOf: bytes[(lineEnd + 2)..<(lineEnd + 2 + size)])
            position = lineEnd + 2 + size + 2
            guard position <= bytes.count else { throw HTTPClientError("malformed chunked body from \(endpoint)") }
        }
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
