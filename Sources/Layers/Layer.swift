// What every layer shares: the training/inference `Mode`, the `ParameterGroup` protocol through which
// optimizers walk trainable tensors by PyTorch name, and `WeightAndBias`.

import TensorEngine

// Layers are value types over TensorEngine's kernels. Every layer has
//
//   - `let` hyperparameters (channel counts, geometry, momentum);
//   - `var parameters: Parameters`, a struct of the trainable tensors conforming to
//     ``ParameterGroup`` (PyTorch names), and for batch norm separate running-statistics buffers;
//   - `forward(_:mode:) -> (output, cache)`: the cache holds what backward needs, as tensor
//     references (copy-on-write, so caching the input costs no copy);
//   - `backward(_:cache:) -> (input, parameters)`: the input gradient and the parameter
//     gradients as a value of the same `Parameters` type.
//
// A model of ~300 layers runs its backward pass layer by layer and gets each layer's gradients
// as soon as that layer's `backward` returns, so it can hand them to an all-reduce while earlier
// layers are still being differentiated. An optimizer walks the parameters as a flat, ordered
// list through `ParameterGroup.forEachParameter` / `updateEachParameter`; the model concatenates
// its layers' lists with name prefixes ("layer1.0.conv1.weight"), and a gradient `Parameters`
// value enumerates in the same order as the parameters it belongs to.

/// Whether a forward pass trains (batch norm uses and updates batch statistics) or infers
/// (batch norm uses its running statistics). Passed explicitly to every layer; there is no global
/// mode.
package enum Mode: Sendable, Hashable {
    case training
    case inference
}

/// The trainable tensors of a layer, in a fixed order, with PyTorch's names.
///
/// Gradients use the same type, so one enumeration order serves parameters, gradients and
/// optimizer state alike.
package protocol ParameterGroup: Sendable {
    /// Calls `body` with each parameter's name (relative to its layer, e.g. `"weight"`) and value,
    /// in declaration order.
    func forEachParameter(_ body: (_ name: String, _ value: Tensor) throws -> Void) rethrows

    /// Calls `body` with each parameter's name and value for in-place update, in the same order as
    /// ``forEachParameter(_:)``.
    mutating func updateEachParameter(_ body: (_ name: String, _ value: inout Tensor) throws -> Void) rethrows
}

extension ParameterGroup {
    /// The parameters as an ordered list of (name, tensor).
    package var namedParameters: [(name: String, value: Tensor)] {
        var list: [(name: String, value: Tensor)] = []
        forEachParameter { list.append(($0, $1)) }
        return list
    }

    /// The total number of trainable scalars.
    package var scalarCount: Int {
        var total = 0
        forEachParameter { total += $1.count }
        return total
    }
}

/// A layer's `weight` and `bias`, the parameters of ``BatchNorm2D`` (γ, β) and ``Linear``.
package struct WeightAndBias: ParameterGroup {
    package var weight: Tensor
    package var bias: Tensor

    package init(weight: Tensor, bias: Tensor) {
        self.weight = weight
        self.bias = bias
    }

    package func forEachParameter(_ body: (String, Tensor) throws -> Void) rethrows {
        try body("weight", weight)
        try body("bias", bias)
    }

    package mutating func updateEachParameter(_ body: (String, inout Tensor) throws -> Void) rethrows {
        try body("weight", &weight)
        try body("bias", &bias)
    }
}
