// A Slurm allocation as a rank-table layout: the compressed host list of SLURM_JOB_NODELIST
// (`node[01-03,07],gpu5`) and the run-length task counts of SLURM_TASKS_PER_NODE (`2(x3),1`), read
// without calling `scontrol`, for `ghostnet-d ranktable generate --from-slurm`.

/// Slurm's compressed host lists and task counts, and the (server, ranks) layout they describe.
package enum SlurmNodeList {
    /// The most hosts one expanded list may name: a typo like `node[0-99999999]` must not
    /// allocate a hundred million strings.
    package static let maximumHosts = 65_536

    /// The hosts of a compressed list, in order: `node[01-03,07],gpu5` is `node01 node02 node03
    /// node07 gpu5`. A range keeps the zero padding of its lower bound; several bracket groups in
    /// one name expand as a product (`r[1-2]n[1-2]` is `r1n1 r1n2 r2n1 r2n2`).
    ///
    /// - Parameter variable: the environment variable the text came from, for messages.
    /// - Throws: ``SlurmNodeListError`` for an empty name, an unclosed or nested bracket, a range
    ///   that is not `low-high` with `low <= high`, or more than ``maximumHosts`` hosts.
    package static func hosts(_ text: String, variable: String = "SLURM_JOB_NODELIST") throws(SlurmNodeListError)
        -> [String]
    {
        func failure(_ message: String) -> SlurmNodeListError {
            SlurmNodeListError(variable: variable, value: text, message: message)
        }
        var hosts: [String] = []
        for item in try topLevelItems(text, failure: failure) {
            var expansions = [""]
            var rest = Substring(item)
            while !rest.isEmpty {
                guard let open = rest.firstIndex(of: "[") else {
                    expansions = expansions.map { $0 + rest }
                    break
                }
                let prefix = rest[..<open]
                guard let close = rest[open...].firstIndex(of: "]") else { throw failure("unclosed `[` in `\(item)`") }
                let inside = rest[rest.index(after: open)..<close]
                guard !inside.contains("[") else { throw failure("nested `[` in `\(item)`") }
                let numbers = try expand(inside, item: item, failure: failure)
                guard expansions.count * numbers.count <= maximumHosts else {
                    throw failure("expands to more than \(maximumHosts) hosts")
                }
                expansions = expansions.flatMap { head in numbers.map { head + prefix + $0 } }
                rest = rest[rest.index(after: close)...]
            }
            guard !expansions.contains(where: { $0.contains("]") }) else { throw failure("unopened `]` in `\(item)`") }
            hosts += expansions
            guard hosts.count <= maximumHosts else { throw failure("expands to more than \(maximumHosts) hosts") }
        }
        return hosts
    }

    /// The comma-separated items of a list, splitting only at commas outside brackets.
    private static func topLevelItems(
        _ text: String, failure: (String) -> SlurmNodeListError
    ) throws(SlurmNodeListError) -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "[": depth += 1
            case "]": depth -= 1
            default: break
            }
            guard depth >= 0 else { throw failure("unopened `]`") }
            if character == ",", depth == 0 {
                items.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        items.append(current)
        if let empty = items.firstIndex(where: { $0.allSatisfy(\.isWhitespace) }) {
            throw failure("item \(empty + 1) is empty")
        }
        return items
    }

    /// `01-03,07` as `01 02 03 07`.
    private static func expand(
        _ ranges: Substring, item: String, failure: (String) -> SlurmNodeListError
    ) throws(SlurmNodeListError) -> [String] {
        var numbers: [String] = []
        for range in ranges.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
            let wellFormed = bounds.allSatisfy { (1...9).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) }
            guard (1...2).contains(bounds.count), wellFormed, let low = Int(bounds[0]), let high = Int(bounds.last!),
                low <= high
            else {
                throw failure(
                    "`[\(ranges)]` in `\(item)`: expected numbers or low-high ranges like 01-03, got `\(range)`")
            }
            guard numbers.count + (high - low + 1) <= maximumHosts else {
                throw failure("expands to more than \(maximumHosts) hosts")
            }
            let width = bounds[0].count
            for value in low...high {
                let digits = String(value)
                numbers.append(String(repeating: "0", count: max(0, width - digits.count)) + digits)
            }
        }
        return numbers
    }

    /// The task counts of `2(x3),1`: `2 2 2 1`.
    ///
    /// - Throws: ``SlurmNodeListError`` for anything but positive counts with optional `(xN)`
    ///   repeats, or more than ``maximumHosts`` counts.
    package static func taskCounts(_ text: String, variable: String = "SLURM_TASKS_PER_NODE")
        throws(SlurmNodeListError) -> [Int]
    {
        var counts: [Int] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            var count = Substring(item)
            var repeats = 1
            if let open = item.firstIndex(of: "(") {
                let suffix = item[open...]
                let digits = suffix.dropFirst(2).dropLast()
                guard suffix.hasPrefix("(x"), suffix.hasSuffix(")"), (1...9).contains(digits.count),
                    digits.allSatisfy(\.isASCIIDigit), let value = Int(digits), value >= 1
                else {
                    throw SlurmNodeListError(
                        variable: variable, value: text, message: "`\(item)`: expected COUNT or COUNT(xREPEATS)")
                }
                repeats = value
                count = item[..<open]
            }
            guard (1...9).contains(count.count), count.allSatisfy(\.isASCIIDigit), let tasks = Int(count), tasks >= 1,
                counts.count + repeats <= maximumHosts
            else {
                throw SlurmNodeListError(
                    variable: variable, value: text,
                    message: "`\(item)`: expected a positive task count, with at most \(maximumHosts) servers")
            }
            counts += Array(repeating: tasks, count: repeats)
        }
        return counts
    }

    /// The rank-table layout of the allocation described by `environment`: the hosts of
    /// `SLURM_JOB_NODELIST` (else `SLURM_NODELIST`), each with its count from
    /// `SLURM_TASKS_PER_NODE`, else the one count `SLURM_NTASKS_PER_NODE`; `ranksPerServer`, when
    /// given, replaces both.
    ///
    /// - Throws: ``SlurmNodeListError`` naming the missing or malformed variable, or task counts
    ///   that do not match the hosts one to one.
    package static func layout(
        environment: [String: String], ranksPerServer: Int? = nil
    ) throws(SlurmNodeListError) -> [(server: String, ranks: Int)] {
        let listVariable = environment["SLURM_JOB_NODELIST"] != nil ? "SLURM_JOB_NODELIST" : "SLURM_NODELIST"
        guard let list = environment[listVariable] else {
            throw SlurmNodeListError(
                variable: "SLURM_JOB_NODELIST", value: nil,
                message: "not set: run inside a Slurm allocation (sbatch, salloc) or pass --servers")
        }
        let hosts = try hosts(list, variable: listVariable)
        let counts: [Int]
        if let ranksPerServer {
            counts = Array(repeating: ranksPerServer, count: hosts.count)
        } else if let perNode = environment["SLURM_TASKS_PER_NODE"] {
            counts = try taskCounts(perNode)
            guard counts.count == hosts.count else {
                throw SlurmNodeListError(
                    variable: "SLURM_TASKS_PER_NODE", value: perNode,
                    message: "gives \(counts.count) task count(s) for the \(hosts.count) host(s) of \(listVariable)")
            }
        } else if let uniform = environment["SLURM_NTASKS_PER_NODE"] {
            let single = try taskCounts(uniform, variable: "SLURM_NTASKS_PER_NODE")
            guard single.count == 1 else {
                throw SlurmNodeListError(
                    variable: "SLURM_NTASKS_PER_NODE", value: uniform, message: "expected one task count")
            }
            counts = Array(repeating: single[0], count: hosts.count)
        } else {
            throw SlurmNodeListError(
                variable: "SLURM_TASKS_PER_NODE", value: nil,
                message: "not set, nor SLURM_NTASKS_PER_NODE: give --ranks-per-server")
        }
        return zip(hosts, counts).map { (server: $0, ranks: $1) }
    }
}

/// A Slurm environment variable that cannot be read as a host list or task counts.
package struct SlurmNodeListError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The variable, e.g. `SLURM_JOB_NODELIST`.
    package var variable: String
    /// Its value, or nil when it is not set.
    package var value: String?
    /// What is wrong and what was expected.
    package var message: String

    package var description: String {
        guard let value else { return "\(variable): \(message)" }
        return "\(variable)=\(value): \(message)"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
