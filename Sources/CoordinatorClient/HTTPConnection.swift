// The one place a worker opens a connection to the coordinator: a TCP socket with deadlines on
// connect, send and receive. Everything above it (requests, the spool, the sender) only sees
// `HTTPConnection`, so a TLS connection can take its place here without touching them.

import Glibc

/// One open connection, closed when released. Every operation ends by its deadline.
final class HTTPConnection {
    let endpoint: HTTPEndpoint
    private let socket: Int32
    /// Set for an `https://` endpoint: the bytes on the socket are its records.
    private var tls: TLSClientSession?

    private init(endpoint: HTTPEndpoint, socket: Int32) {
        self.endpoint = endpoint
        self.socket = socket
    }

    deinit {
        close(socket)
    }

    /// Connects to `endpoint`, trying each resolved address until `deadline`.
    ///
    /// - Throws: ``HTTPClientError`` `.unreachable` (resolution or connection refused) or `.timedOut`.
    static func open(to endpoint: HTTPEndpoint, deadline: MonotonicDeadline) throws(HTTPClientError) -> HTTPConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            throw HTTPClientError(
                .unreachable, endpoint, "cannot resolve the host: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }

        var lastError = HTTPClientError(.unreachable, endpoint, "cannot connect: no address")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let socket = Glibc.socket(
                info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                info.pointee.ai_protocol)
            guard socket >= 0 else {
                lastError = HTTPClientError(
                    .unreachable, endpoint, "cannot connect: \(String(cString: strerror(errno)))")
                continue
            }
            // Non-blocking throughout: the deadlines are ours, not the kernel's minutes.
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            let connection = HTTPConnection(endpoint: endpoint, socket: socket)
            if Glibc.connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = HTTPClientError(
                    .unreachable, endpoint, "cannot connect: \(String(cString: strerror(errno)))")
                continue
            }
            do {
                try connection.wait(for: POLLOUT, until: deadline, doing: "connecting")
            } catch {
                lastError = error
                continue
            }
            var socketError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_ERROR, &socketError, &length)
            if socketError == 0 {
                if endpoint.usesTLS { connection.tls = try TLSClientSession(endpoint: endpoint) }
                return connection
            }
            lastError = HTTPClientError(
                .unreachable, endpoint, "cannot connect: \(String(cString: strerror(socketError)))")
        }
        throw lastError
    }

    /// Sends every byte of `bytes`.
    func send(_ bytes: [UInt8], until deadline: MonotonicDeadline) throws(HTTPClientError) {
        try transmit(tls?.seal(bytes) ?? bytes, until: deadline)
    }

    /// Writes `bytes` to the socket as they are.
    private func transmit(_ bytes: [UInt8], until deadline: MonotonicDeadline) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            try wait(for: POLLOUT, until: deadline, doing: "sending")
            let sent = bytes.withUnsafeBytes { buffer in
                Glibc.send(socket, buffer.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw HTTPClientError(
                    .connectionFailed, endpoint, "sending failed: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Ends the sending side, so a server waiting for more of a request sees the stream end.
    func shutdownSending() {
        // TLS cannot half-close (close_notify ends the session); the request's Content-Length frames it.
        guard tls == nil else { return }
        shutdown(socket, Int32(SHUT_WR))
    }

    /// Everything the server sends until it closes the connection, at most `limit` bytes.
    func receiveAll(limit: Int, until deadline: MonotonicDeadline) throws(HTTPClientError) -> [UInt8] {
        try receive(limit: limit, until: deadline) { _ in nil }.bytes
    }

    /// One response on a connection kept open: the bytes up to the end its framing declares, or
    /// up to the server's close when it declares none. `reusable` is false when the server closed
    /// or sent more than that one response.
    func receiveResponse(limit: Int, until deadline: MonotonicDeadline) throws(HTTPClientError)
        -> (bytes: [UInt8], reusable: Bool)
    {
        let (bytes, length) = try receive(limit: limit, until: deadline, end: HTTPResponseParser.responseLength)
        guard let length else { return (bytes, false) }
        return (Array(bytes.prefix(length)), length == bytes.count)
    }

    /// Whether nothing has arrived on this idle connection, not even the server's close: a
    /// connection the server closed (its idle timeout) must not carry the next request.
    var isOpenAndIdle: Bool {
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    /// Reads until `end` finds a complete response in what arrived (its length is returned), the
    /// server closes (the length is nil), or `limit` bytes are exceeded.
    private func receive(
        limit: Int, until deadline: MonotonicDeadline, end: ([UInt8]) -> Int?
    ) throws(HTTPClientError) -> (bytes: [UInt8], length: Int?) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            try wait(for: POLLIN, until: deadline, doing: "waiting for the answer")
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress!, $0.count, 0) }
            if count == 0 { return (received, nil) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                // A reset after a complete response (server closed first) still leaves a usable answer.
                if errno == ECONNRESET, !received.isEmpty { return (received, nil) }
                throw HTTPClientError(
                    .connectionFailed, endpoint, "reading failed: \(String(cString: strerror(errno)))")
            }
            if let tls {
                let (plaintext, reply) = try tls.open(chunk[0..<count])
                if !reply.isEmpty { try transmit(reply, until: deadline) }
                received += plaintext
            } else {
                received.append(contentsOf: chunk[0..<count])
            }
            guard received.count <= limit else {
                throw HTTPClientError(.malformedResponse, endpoint, "the response exceeds \(limit) bytes")
            }
            if let length = end(received) { return (received, length) }
        }
    }

    /// Waits until the socket is ready for `events` or `deadline` passes.
    private func wait(for events: Int32, until deadline: MonotonicDeadline, doing activity: String)
        throws(HTTPClientError)
    {
        var poller = pollfd(fd: socket, events: Int16(events), revents: 0)
        while true {
            let ready = poll(&poller, 1, deadline.remainingMilliseconds)
            if ready > 0 { return }
            if ready == 0 {
                throw HTTPClientError(.timedOut, endpoint, "no progress \(activity) within \(deadline.seconds) s")
            }
            if errno != EINTR {
                throw HTTPClientError(.connectionFailed, endpoint, "poll failed: \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// A point on the monotonic clock some seconds from when it was made.
struct MonotonicDeadline: Sendable {
    /// The bound it was made with, for messages.
    let seconds: Double
    private let instant: Double

    init(secondsFromNow seconds: Double) {
        self.seconds = seconds
        instant = Self.now() + seconds
    }

    var hasPassed: Bool { Self.now() >= instant }

    /// What remains, in whole milliseconds rounded up, clamped to what `poll` takes.
    var remainingMilliseconds: Int32 {
        let milliseconds = ((instant - Self.now()) * 1000).rounded(.up)
        return milliseconds.isNaN ? 0 : Int32(max(0, min(Double(Int32.max), milliseconds)))
    }

    /// Seconds on the monotonic clock (not wall time, which can jump).
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
