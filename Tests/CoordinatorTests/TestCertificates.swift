// A throw-away certificate authority and a server certificate for 127.0.0.1, made with the openssl
// CLI when a test runs, for the coordinator's TLS tests (nothing is checked in).

import Foundation
import Testing
import _TestSupport

/// PEM files of a test CA and of a server certificate it signed (SAN 127.0.0.1 and localhost).
struct TestCertificates: Sendable {
    let authority: String
    let serverCertificate: String
    let serverKey: String

    /// Makes the files in `directory` (P-256 keys, valid for one day).
    ///
    /// - Throws: when the openssl CLI is missing or fails (the test then fails; deploy/install-deps.sh
    ///   installs openssl).
    static func make(in directory: URL) throws -> TestCertificates {
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        try Data(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                .utf8
        )
        .write(to: directory.appendingPathComponent("server.ext"))
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=ghostnet-d test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", path("ca.key"), "-out", path("ca.pem"),
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
                "-keyout", path("server.key"), "-out", path("server.csr"),
            ],
            [
                "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-CAcreateserial",
                "-days", "1", "-extfile", path("server.ext"), "-out", path("server.pem"),
            ],
        ]
        for arguments in steps {
            let result = try BuiltProducts.run(
                URL(fileURLWithPath: "/usr/bin/env"), ["openssl"] + arguments, timeout: 60)
            guard result.status == 0 else {
                throw TestCertificateError("openssl \(arguments[0]) failed (\(result.status)): \(result.combined)")
            }
        }
        return TestCertificates(
            authority: path("ca.pem"), serverCertificate: path("server.pem"), serverKey: path("server.key"))
    }
}

struct TestCertificateError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
