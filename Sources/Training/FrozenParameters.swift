// `trainer.freeze`: which parameters a fine-tuning run leaves untrained, matched by name prefix, and
// the configuration issue for a prefix that names no parameter of the network.

import GhostNet

/// The parameters `fully_train.trainer.freeze` names.
///
/// A prefix covers a parameter when it equals the parameter's `state_dict` name or a leading run
/// of its dot-separated components: `layer1` covers `layer1.base.conv1.weight` but not
/// `layer10.…`, and `conv1` covers the stem's `conv1.weight` only (not `layer1.base.conv1.weight`).
/// A frozen parameter gets no update, no weight decay and no momentum; its gradient is not computed
/// (see ``GhostNetModel/freeze(_:)``).
package enum FrozenParameters {
    /// Whether `prefix` covers the parameter called `name`.
    package static func covers(_ prefix: String, _ name: String) -> Bool {
        name == prefix || name.hasPrefix(prefix + ".")
    }

    /// The positions in `names` (parameter names in slot order) that one of `prefixes` covers.
    package static func indices(_ prefixes: [String], names: [String]) -> Set<Int> {
        Set(names.indices.filter { index in prefixes.contains { covers($0, names[index]) } })
    }

    /// What is wrong with `prefixes` for a network with the parameters `names`: one line per prefix
    /// that covers no parameter, naming the top-level modules a prefix can start with.
    package static func problems(_ prefixes: [String], names: [String]) -> [String] {
        var modules: [String] = []
        for name in names {
            let module = String(name.prefix { $0 != "." })
            if !modules.contains(module) { modules.append(module) }
        }
        return prefixes.filter { prefix in !names.contains { covers(prefix, $0) } }.map { prefix in
            "prefix '\(prefix)' matches no parameter; prefixes are whole dot-separated parts of parameter names "
                + "starting with \(modules.joined(separator: ", ")) (e.g. layer1, layer2.base)"
        }
    }

    /// The names of the trainable tensors of `structure`, in slot order.
    package static func parameterNames(of structure: GhostNetStructure) -> [String] {
        structure.tensors.filter(\.isTrainable).map(\.name)
    }
}
