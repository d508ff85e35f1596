// The host names and addresses a rank table may hand to mpirun's hostfile and ssh: IP addresses
// by the C library's own parser, names by RFC 1123, so no table text can add hosts, slots or options.

#if canImport(Glibc)
import Glibc
#endif

/// IP address syntax, by the C library's own parser.
enum IPAddress {
    /// `AF_INET` or `AF_INET6` when `text` is a numeric address of that family, else `nil`.
    static func family(of text: String) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 { return AF_INET }
        if inet_pton(AF_INET6, text, &buffer) == 1 { return AF_INET6 }
        return nil
    }

    /// The first IPv4 address `name` resolves to, or `nil`.
    static func resolveIPv4(_ name: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        guard let address = first.pointee.ai_addr else { return nil }
        return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var raw = ipv4.pointee.sin_addr
            guard inet_ntop(AF_INET, &raw, &text, socklen_t(text.count)) != nil else { return nil }
            return String(filledCBuffer: text)
        }
    }
}

/// Host name syntax by RFC 1123 §2.1: dot-separated labels of 1-63 letters, digits and `-`, not
/// starting or ending with `-`, at most 253 characters in all.
enum HostName {
    static let maximumLength = 253
    static let maximumLabelLength = 63

    /// What keeps `text` from being an IP address or a host name, or `nil` when it is one.
    ///
    /// A name whose last label is all digits is refused unless it is an address: resolvers read
    /// `10.1` or `1.2.3` as IPv4 shorthand, so it would reach a different host than it seems to name.
    static func problem(with text: String) -> String? {
        if IPAddress.family(of: text) != nil { return nil }
        guard !text.isEmpty else { return "it is empty" }
        guard text.utf8.count <= maximumLength else { return "it is longer than \(maximumLength) characters" }
        if let bad = text.unicodeScalars.first(where: { !isNameCharacter($0) }) {
            return "it contains \(describe(bad)) (a host name holds letters, digits, '-' and '.')"
        }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if labels.contains(where: \.isEmpty) { return "it has an empty label (a leading, trailing or doubled '.')" }
        if labels.contains(where: { $0.utf8.count > maximumLabelLength }) {
            return "a label is longer than \(maximumLabelLength) characters"
        }
        if labels.contains(where: { $0.hasPrefix("-") || $0.hasSuffix("-") }) {
            return "a label starts or ends with '-'"
        }
        if labels.last!.allSatisfy(\.isNumber) {
            return "it ends in an all-digit label but is not an IP address"
        }
        return nil
    }

    private static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", ".": true
        default: false
        }
    }

    /// `'x'` for a printable ASCII character, else its code point (`U+000A`), so a message stays one line.
    private static func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar.isASCII, (0x21..<0x7F).contains(scalar.value) { return "'\(Character(scalar))'" }
        if scalar == " " { return "a space" }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
