// The few ONNX messages `model export` writes (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto) as plain values that
// encode themselves with `ProtobufWriter`; field numbers are those of onnx/onnx.proto.

import StrictJSON
import TensorEngine

/// A node attribute: an integer, a list of integers or a float.
enum ONNXAttribute {
    case integer(String, Int)
    case integers(String, [Int])

    /// `AttributeProto`: name 1, i 3, ints 8, type 20 (INT = 2, INTS = 7).
    func encode(into writer: inout ProtobufWriter) {
        switch self {
        case .integer(let name, let value):
            writer.string(1, name)
            writer.integer(3, value)
            writer.integer(20, 2)
        case .integers(let name, let values):
            writer.string(1, name)
            for value in values { writer.integer(8, value) }
            writer.integer(20, 7)
        }
    }
}

/// `NodeProto`: input 1, output 2, name 3, op_type 4, attribute 5.
struct ONNXNode {
    let operation: String
    let inputs: [String]
    let output: String
    var attributes: [ONNXAttribute] = []

    func encode(into writer: inout ProtobufWriter) {
        for input in inputs { writer.string(1, input) }
        writer.string(2, output)
        writer.string(3, output)
        writer.string(4, operation)
        for attribute in attributes { writer.message(5) { attribute.encode(into: &$0) } }
    }
}

/// An FLOAT initializer, `TensorProto`: dims 1, data_type 2 (FLOAT = 1), name 8, raw_data 9
/// (little-endian, as ONNX requires).
struct ONNXInitializer {
    let name: String
    let tensor: Tensor

    func encode(into writer: inout ProtobufWriter) {
        for dimension in tensor.shape { writer.integer(1, dimension) }
        writer.integer(2, 1)
        writer.string(8, name)
        tensor.withUnsafeBufferPointer { writer.bytes(9, UnsafeRawBufferPointer($0)) }
    }
}

/// A FLOAT graph input or output, `ValueInfoProto` (name 1, type 2) → `TypeProto.tensor_type` 1 →
/// elem_type 1, shape 2 → `TensorShapeProto.dim` 1 → dim_value 1 or dim_param 2.
struct ONNXValueInfo {
    enum Dimension {
        case fixed(Int)
        case symbolic(String)
    }

    let name: String
    let shape: [Dimension]

    func encode(into writer: inout ProtobufWriter) {
        writer.string(1, name)
        writer.message(2) { type in
            type.message(1) { tensorType in
                tensorType.integer(1, 1)
                tensorType.message(2) { shape in
                    for dimension in self.shape {
                        shape.message(1) {
                            switch dimension {
                            case .fixed(let value): $0.integer(1, value)
                            case .symbolic(let name): $0.string(2, name)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A whole ONNX model: `ModelProto` (ir_version 1, producer_name 2, graph 7, opset_import 8) around
/// one `GraphProto` (node 1, name 2, initializer 5, input 11, output 12).
struct ONNXModel {
    /// IR version 8 is what opset 17 was released with.
    static let irVersion = 8
    static let opset = 17

    var name: String
    var nodes: [ONNXNode] = []
    var initializers: [ONNXInitializer] = []
    var inputs: [ONNXValueInfo] = []
    var outputs: [ONNXValueInfo] = []

    var serialized: [UInt8] {
        var writer = ProtobufWriter()
        writer.integer(1, Self.irVersion)
        writer.string(2, "ghostnet-d")
        writer.message(7) { graph in
            for node in nodes { graph.message(1) { node.encode(into: &$0) } }
            graph.string(2, name)
            for initializer in initializers { graph.message(5) { initializer.encode(into: &$0) } }
            for input in inputs { graph.message(11) { input.encode(into: &$0) } }
            for output in outputs { graph.message(12) { output.encode(into: &$0) } }
        }
        // OperatorSetIdProto: domain 1 (empty: the default ONNX domain), version 2.
        writer.message(8) { $0.integer(2, Self.opset) }
        return writer.bytes
    }
}
