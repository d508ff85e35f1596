// Escaping of outside text (client input, file contents, peer answers) before it goes into a log
// line, so that no input can end a line early or start one that looks like the program's own.
// Shared by the coordinator's log and the trainer's.

/// Log-safe text: every control character escaped, everything else kept as is.
package enum LogText {
    /// `text` with each control character replaced by a visible escape: `\n`, `\r`, `\t`, `\e`
    /// (ESC), `\xNN` for the rest of C0, DEL and C1 (U+0080-U+009F, NEL included), and `\u2028` /
    /// `\u2029` for the Unicode line and paragraph separators. A backslash is kept as is: the goal
    /// is that no input can make a line break or a terminal control sequence, not a reversible
    /// encoding, and Python's repr in the Best values line already shows its backslashes doubled.
    package static func escaped(_ text: some StringProtocol) -> String {
        // The common case, nothing to escape, costs one scan and no copy of the scalars.
        guard text.unicodeScalars.contains(where: needsEscape) else { return String(text) }
        var output = ""
        output.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{1B}": output += "\\e"
            case "\u{2028}": output += "\\u2028"
            case "\u{2029}": output += "\\u2029"
            case _ where needsEscape(scalar):
                let hex = String(scalar.value, radix: 16)
                output += "\\x" + (hex.count < 2 ? "0" : "") + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// Whether `scalar` is C0, DEL, C1, U+2028 or U+2029.
    package static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}
