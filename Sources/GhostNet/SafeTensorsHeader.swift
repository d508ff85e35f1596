//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

import Foundation

/// The JSON header of a safetensors file: one object whose keys are tensor names, plus the
/// optional `__metadata__` string map.
///
/// Decoded with `JSONDecoder` rather than `JSONSerialization` so that types are strict: a shape
/// of `[1]` is an integer array, never a boolean, and `2.5` is refused.
struct SafeTensorsHeader: Codable {
    /// One tensor's header entry as stored.
    struct TensorInfo: Codable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    /// The key reserved for metadata.
    static let metadataKey = "__metadata__"

    var tensors: [String: TensorInfo] = [:]
    var metadata: [String: String]?

    init(tensors: [String: TensorInfo], metadata: [String: String]?) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// A key of the header object: a tensor name or ``metadataKey``.
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys {
            if key.stringValue == Self.metadataKey {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                tensors[key.stringValue] = try container.decode(TensorInfo.self, forKey: key)
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, info) in tensors { try container.encode(info, forKey: Key(stringValue: name)) }
        if let metadata { try container.encode(metadata, forKey: Key(stringValue: Self.metadataKey)) }
    }

    /// The UTF-8 JSON text, keys sorted so equal headers give equal bytes.
    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self))
    }

    /// Decodes `bytes`, describing a failure in words: where in the header and what was wrong.
    static func decode(_ bytes: [UInt8]) -> Result<SafeTensorsHeader, HeaderProblem> {
        do {
            return .success(try JSONDecoder().decode(SafeTensorsHeader.self, from: Data(bytes)))
        } catch let error as DecodingError {
            return .failure(HeaderProblem(error))
        } catch {
            return .failure(HeaderProblem(description: "header cannot be decoded: \(error)"))
        }
    }

    /// Why a header did not decode.
    struct HeaderProblem: Error, CustomStringConvertible {
        let description: String

        init(description: String) { self.description = description }

        init(_ error: DecodingError) {
            let context: DecodingError.Context
            switch error {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
                context = c
            @unknown default:
                self.description = "header cannot be decoded: \(error)"
                return
            }
            let path = context.codingPath
            guard let first = path.first else {
                let cause = (context.underlyingError as? CustomStringConvertible)?.description ?? context.debugDescription
                self.description = "header is not valid JSON: \(cause)"
                return
            }
            if first.stringValue == SafeTensorsHeader.metadataKey {
                self.description = "'\(SafeTensorsHeader.metadataKey)' must map strings to strings"
                return
            }
            var location = ""
            for key in path.dropFirst() {
                location += key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)"
            }
            if case .keyNotFound(let key, _) = error { location += ".\(key.stringValue)" }
            self.description = "tensor '\(first.stringValue)': field '\(location.dropFirst())': \(context.debugDescription)"
        }
    }
}
