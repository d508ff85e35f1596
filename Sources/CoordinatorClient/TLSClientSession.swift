// TLS for a worker's connection to an `https://` coordinator: swift-nio-ssl's client handler, driven
// by hand in an EmbeddedChannel over HTTPConnection's socket. The socket keeps its deadlines and
// the rest of the client (requests, spool, sender) is unchanged; no event-loop thread runs in the
// trainer. The server is verified against the CA file given (runtime.coordinator_ca or
// GHOSTNET_COORDINATOR_CA), else the system's roots, and its name or IP address must match.

import Glibc
import NIOCore
import NIOEmbedded
import NIOSSL

/// One TLS session: plaintext goes in and comes out; the caller moves the ciphertext.
final class TLSClientSession {
    private let channel = EmbeddedChannel()
    private let endpoint: HTTPEndpoint
    /// How long NIOSSL waits for the server's close_notify when the session closes, on the embedded
    /// loop's clock, which moves only when ``deinit`` moves it.
    private static let closeTimeout = TimeAmount.seconds(1)

    /// Starts the handshake; its first record is in the next `seal` or `open` output.
    ///
    /// - Throws: ``HTTPClientError`` `.connectionFailed` when the CA file cannot be used.
    init(endpoint: HTTPEndpoint) throws(HTTPClientError) {
        self.endpoint = endpoint
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            configuration.shutdownTimeout = Self.closeTimeout
            if let authority = endpoint.certificateAuthorityFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(authority))
            }
            let context = try NIOSSLContext(configuration: configuration)
            // An IP address is matched against the certificate through the peer address (it cannot be SNI).
            let isAddress = Self.isIPAddress(endpoint.host)
            let handler = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : endpoint.host)
            try channel.pipeline.syncOperations.addHandler(handler)
            let peer =
                isAddress
                ? try SocketAddress(ipAddress: endpoint.host, port: endpoint.port)
                : try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
            try channel.connect(to: peer).wait()
        } catch {
            let authority = endpoint.certificateAuthorityFile.map { " with CA file \($0)" } ?? ""
            throw HTTPClientError(.connectionFailed, endpoint, "cannot set up TLS\(authority): \(error)")
        }
    }

    deinit {
        // A kept-open connection is released before the server closed it, so no close_notify from
        // the server will ever be fed in: closing would wait for it forever. Close without waiting,
        // then move the embedded clock past the close timeout, which ends the close.
        channel.close(promise: nil)
        channel.embeddedEventLoop.advanceTime(by: Self.closeTimeout)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    /// Encrypts `plaintext`; returns every record to send now (handshake records included).
    func seal(_ plaintext: [UInt8]) throws(HTTPClientError) -> [UInt8] {
        channel.write(ByteBuffer(bytes: plaintext), promise: nil)
        channel.flush()
        return try pendingRecords()
    }

    /// Takes `ciphertext` from the server; returns the plaintext it carried and the records to
    /// send in reply (the handshake's next flight, then any plaintext sealed before it finished).
    ///
    /// - Throws: ``HTTPClientError`` `.connectionFailed` for a failed handshake or verification.
    func open(_ ciphertext: ArraySlice<UInt8>) throws(HTTPClientError) -> (plaintext: [UInt8], reply: [UInt8]) {
        var plaintext: [UInt8] = []
        do {
            try channel.writeInbound(ByteBuffer(bytes: ciphertext))
            while let buffer = try channel.readInbound(as: ByteBuffer.self) { plaintext += buffer.readableBytesView }
        } catch {
            throw HTTPClientError(.connectionFailed, endpoint, "TLS failed: \(error)")
        }
        return (plaintext, try pendingRecords())
    }

    private func pendingRecords() throws(HTTPClientError) -> [UInt8] {
        var records: [UInt8] = []
        do {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { records += buffer.readableBytesView }
        } catch {
            throw HTTPClientError(.connectionFailed, endpoint, "TLS failed: \(error)")
        }
        return records
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
