// The JSON header of a safetensors file, read and written with StrictJSON (which also refuses
// repeated keys): parsing checks every field's type and range, and checks that the tensors tile the data section,
// so a reader knows exactly how many data bytes to expect before it reads any.

import StrictJSON

/// The validated header of a safetensors file: the tensors, in data-section order, and the
/// `__metadata__` string map.
///
/// The JSON form is one object: `{"<name>": {"dtype": "F32", "shape": [..], "data_offsets":
/// [begin, end]}, …, "__metadata__": {"key": "value", …}}`.
package struct SafeTensorsHeader: Sendable {
    /// The key reserved for metadata.
    static let metadataKey = "__metadata__"
    /// Nesting of a valid header: the object, a tensor's object, its shape array.
    static let maximumDepth = 3

    /// The tensors, sorted by their byte ranges, which tile `0..<dataLength` exactly.
    package let entries: [SafeTensorsFile.Entry]
    /// The `__metadata__` map (empty when absent).
    package let metadata: [String: String]

    /// The length of the data section the tensors describe: the end of the last one.
    package var dataLength: Int { entries.last?.byteRange.upperBound ?? 0 }

    init(entries: [SafeTensorsFile.Entry], metadata: [String: String]) {
        self.entries = entries
        self.metadata = metadata
    }

    /// The UTF-8 JSON text: `__metadata__` first (keys sorted), then the tensors in data order, so
    /// equal contents give equal bytes.
    func encoded() -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.string($0.value)) }
            members.append((Self.metadataKey, .object(pairs)))
        }
        for entry in entries {
            let tensor: [(key: String, value: JSONValue)] = [
                ("dtype", .string(entry.dtype.rawValue)),
                ("shape", .array(entry.shape.map(JSONValue.integer))),
                ("data_offsets", .array([.integer(entry.byteRange.lowerBound), .integer(entry.byteRange.upperBound)])),
            ]
            members.append((entry.name, .object(tensor)))
        }
        return Array(JSONValue.object(members).serialized.utf8)
    }

    /// Parses and validates header text read from `path`.
    ///
    /// - Throws: ``SafeTensorsError`` `.malformedHeader` (not JSON, not an object, repeated keys,
    ///   unknown fields, wrong field types, negative numbers), `.unsupportedDType`, `.invalidLayout`
    ///   (size ≠ dtype × shape, overlapping or gapped offsets).
    init(parsing bytes: [UInt8], path: String) throws(SafeTensorsError) {
        func malformed(_ message: String) -> SafeTensorsError {
            SafeTensorsError(.malformedHeader, path: path, message)
        }
        guard bytes.first == UInt8(ascii: "{") else {
            throw malformed("header does not start with '{'; not a safetensors file?")
        }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: bytes, maximumDepth: Self.maximumDepth)
        } catch {
            throw malformed("header is not valid JSON: \(error)")
        }
        guard case .object(let members) = document else { throw malformed("header must be a JSON object") }
        var entries: [SafeTensorsFile.Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == Self.metadataKey {
                metadata = try Self.metadata(value, malformed)
            } else {
                entries.append(try Self.entry(named: name, value, path: path))
            }
        }
        entries.sort {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound)
        }
        try Self.checkTiling(entries, path: path)
        self.init(entries: entries, metadata: metadata)
    }

    private static func metadata(
        _ value: JSONValue, _ malformed: (String) -> SafeTensorsError
    ) throws(SafeTensorsError) -> [String: String] {
        guard case .object(let members) = value else { throw malformed("'\(metadataKey)' must map strings to strings") }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else {
                throw malformed("'\(metadataKey)' must map strings to strings; '\(key)' is a \(value.kindName)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func entry(named name: String, _ value: JSONValue, path: String) throws(SafeTensorsError)
        -> SafeTensorsFile.Entry
    {
        func malformed(_ message: String) -> SafeTensorsError {
            SafeTensorsError(.malformedHeader, path: path, "tensor '\(name)': \(message)")
        }
        guard !name.isEmpty else { throw SafeTensorsError(.malformedHeader, path: path, "a tensor has an empty name") }
        guard case .object(let fields) = value else { throw malformed("must be an object, got a \(value.kindName)") }
        var dtypeName: String?
        var shape: [Int]?
        var offsets: [Int]?
        for (key, field) in fields {
            switch key {
            case "dtype":
                guard case .string(let text) = field else { throw malformed("field 'dtype' must be a string") }
                dtypeName = text
            case "shape":
                guard let numbers = naturals(field) else {
                    throw malformed("'shape' must be an array of non-negative integers")
                }
                shape = numbers
            case "data_offsets":
                guard let numbers = naturals(field), numbers.count == 2, numbers[0] <= numbers[1] else {
                    throw malformed("'data_offsets' must be [begin, end] with 0 ≤ begin ≤ end")
                }
                offsets = numbers
            default:
                throw malformed("unknown field '\(key)' (expected dtype, shape, data_offsets)")
            }
        }
        guard let dtypeName, let shape, let offsets else {
            let missing = [("dtype", dtypeName == nil), ("shape", shape == nil), ("data_offsets", offsets == nil)]
                .filter(\.1).map(\.0)
            throw malformed("field '\(missing[0])' is missing")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let supported = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw SafeTensorsError(
                .unsupportedDType, path: path,
                "tensor '\(name)': dtype '\(dtypeName)' is not supported (supported: \(supported))")
        }
        let storedBytes = offsets[1] - offsets[0]
        guard let expectedBytes = SafeTensorsFile.Entry.byteCount(dtype: dtype, shape: shape),
            expectedBytes == storedBytes
        else {
            let needed =
                SafeTensorsFile.Entry.byteCount(dtype: dtype, shape: shape).map(String.init) ?? "more than Int.max"
            throw SafeTensorsError(
                .invalidLayout, path: path,
                "tensor '\(name)': \(dtype.rawValue) shape \(shape) needs \(needed) bytes "
                    + "but data_offsets span \(storedBytes)"
            )
        }
        return SafeTensorsFile.Entry(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    /// The value as an array of integers in `0...Int.max`, or `nil`.
    private static func naturals(_ value: JSONValue) -> [Int]? {
        guard case .array(let elements) = value else { return nil }
        var numbers: [Int] = []
        for element in elements {
            guard case .number(let number) = element, let integer = number.integerValue, integer >= 0 else {
                return nil
            }
            numbers.append(integer)
        }
        return numbers
    }

    /// Checks that the sorted entries tile `0..<end` with no gap and no overlap.
    private static func checkTiling(_ sorted: [SafeTensorsFile.Entry], path: String) throws(SafeTensorsError) {
        var position = 0
        var previousName = ""
        for entry in sorted {
            let range = entry.byteRange
            guard range.lowerBound >= position else {
                throw SafeTensorsError(
                    .invalidLayout, path: path, "tensor '\(entry.name)' bytes \(range) overlap tensor '\(previousName)'"
                )
            }
            guard range.lowerBound == position else {
                throw SafeTensorsError(
                    .invalidLayout, path: path,
                    "gap of \(range.lowerBound - position) bytes before tensor '\(entry.name)' at offset \(position)")
            }
            position = range.upperBound
            previousName = entry.name
        }
    }
}
