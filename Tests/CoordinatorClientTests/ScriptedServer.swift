// A loopback TCP server that plays a broken or hostile coordinator for the client tests: it
// accepts and never answers, answers every request with bytes the test chose (closing the
// connection or keeping it for the next request), or closes a kept connection under a request.

import CoordinatorClient
import Foundation
import Synchronization
import _TestSupport

/// A server on 127.0.0.1 (a free port) whose behaviour the test switches while it runs.
final class ScriptedServer: Sendable {
    indirect enum Behaviour: Sendable {
        /// Accept, read, and never answer (connections stay open until the server stops).
        case silent
        /// Read the request, send these bytes, close.
        case answer([UInt8])
        /// Read the request, send these bytes, and read the next request on the same connection.
        case answerKeepingOpen([UInt8])
        /// Read the next request, close without answering, then behave as `then`.
        case closeUnanswered(then: Behaviour)
    }

    let endpoint: HTTPEndpoint
    private let listener: Int32
    private let state:
        Mutex<
            (behaviour: Behaviour, requests: [String], held: [Int32], accepted: Int, stopped: Bool)
        >

    init(_ behaviour: Behaviour) throws {
        let (descriptor, port) = try LoopbackSocket.bound(listeningWith: 16)
        listener = descriptor
        endpoint = HTTPEndpoint(host: "127.0.0.1", port: port)
        state = Mutex((behaviour, [], [], 0, false))
        let server = self
        Thread { server.serve() }.start()
    }

    /// What the server does with the next connections.
    func behave(_ behaviour: Behaviour) {
        state.withLock { $0.behaviour = behaviour }
    }

    /// The requests answered so far (head and body as text).
    var requests: [String] { state.withLock { $0.requests } }

    /// The connections accepted so far.
    var acceptedConnections: Int { state.withLock { $0.accepted } }

    func stop() {
        state.withLock { $0.stopped = true }
    }

    private func serve() {
        defer {
            close(listener)
            for connection in state.withLock({ $0.held }) { close(connection) }
        }
        while !state.withLock({ $0.stopped }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) == 1 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            state.withLock { $0.accepted += 1 }
            serve(connection)
        }
    }

    /// Answers the requests on `connection` as the behaviour says until it closes or is held.
    private func serve(_ connection: Int32) {
        while true {
            let request = readRequest(connection)
            guard !request.isEmpty, !state.withLock({ $0.stopped }) else {
                close(connection)
                return
            }
            switch state.withLock({ $0.behaviour }) {
            case .silent:
                state.withLock { $0.held.append(connection) }
                return
            case .answer(let bytes):
                reply(bytes, to: request, on: connection)
                close(connection)
                return
            case .answerKeepingOpen(let bytes):
                reply(bytes, to: request, on: connection)
            case .closeUnanswered(let next):
                state.withLock { $0.behaviour = next }
                close(connection)
                return
            }
        }
    }

    private func reply(_ bytes: [UInt8], to request: String, on connection: Int32) {
        state.withLock { $0.requests.append(request) }
        _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads the head and a `Content-Length` body (at most 2 s; the client under test is ours).
    private func readRequest(_ connection: Int32) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = Date(timeIntervalSinceNow: 2)
        while Date() < deadline {
            var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) == 1 else { continue }
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += chunk[0..<count]
            let text = String(decoding: received, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { continue }
            let length =
                text[..<headEnd.lowerBound].split(separator: "\r\n")
                .first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            if text.utf8.count - text[..<headEnd.upperBound].utf8.count >= length { return text }
        }
        return String(decoding: received, as: UTF8.self)
    }
}
