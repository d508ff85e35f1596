// Freezing parameters for fine-tuning: which units skip their weight gradients, which batch norms
// normalise with their running statistics, and how much of the network's start needs no backward.

import TensorEngine

extension GhostNetModel {
    /// Freezes the parameters at the slot indices `slots` (and unfreezes every other one).
    ///
    /// A frozen parameter's gradient is announced as zeros, so the exchange and the optimizer see
    /// every slot as before; a frozen convolution computes only its input gradient (no weight-gradient
    /// GEMMs); a batch norm whose γ and β are both frozen normalises with its running statistics in
    /// training too and leaves them untouched. When the stem and the first stages are wholly frozen,
    /// backward stops above them: nothing below the lowest trainable stage is differentiated.
    ///
    /// - Precondition: every index is a parameter slot.
    package mutating func freeze(_ slots: Set<Int>) {
        ensure(
            slots.allSatisfy { parameterSlots.indices.contains($0) },
            "freeze: slot indices must lie in 0..<\(parameterSlots.count)")
        frozenParameters = slots
        stem.freeze(slots)
        for index in stages.indices { stages[index].freeze(slots) }
        // Units in network order: the stem, then each stage; count how many lead wholly frozen.
        var unitSlots = [
            Self.parameterIndices { [stem] body in
                var unit = stem
                try unit.visit(body)
            }
        ]
        for stage in stages {
            unitSlots.append(
                Self.parameterIndices { body in
                    var unit = stage
                    try unit.visit(body)
                })
        }
        let leading = unitSlots.prefix { $0.allSatisfy(slots.contains) }
        frozenLeadingUnits = leading.count
        frozenLeadingSlots = leading.reduce(0) { $0 + $1.count }
    }

    /// The parameter indices a unit's `visit` hands out.
    private static func parameterIndices(_ visit: (TensorVisitor) throws -> Void) -> [Int] {
        var indices: [Int] = []
        try? visit { kind, index, _ in
            if kind == .parameter { indices.append(index) }
        }
        return indices
    }
}

extension ConvolutionUnit {
    mutating func freeze(_ frozen: Set<Int>) { isFrozen = frozen.contains(weightIndex) }
}

extension NormalizationUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        isFrozen = frozen.contains(weightIndex) && frozen.contains(weightIndex + 1)
    }
}

extension ConvolutionNormUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        convolution.freeze(frozen)
        normalization.freeze(frozen)
    }
}

extension BottleneckUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        conv1.freeze(frozen)
        bn1.freeze(frozen)
        conv2.freeze(frozen)
        bn2.freeze(frozen)
        conv3.freeze(frozen)
        bn3.freeze(frozen)
        downsample?.freeze(frozen)
    }
}

extension GhostBranchUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        projection.freeze(frozen)
        for index in bottlenecks.indices { bottlenecks[index].freeze(frozen) }
        merge.freeze(frozen)
        cheap.freeze(frozen)
    }
}

extension GhostStageUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        base.freeze(frozen)
        ghost?.freeze(frozen)
        end.freeze(frozen)
    }
}

extension StemUnit {
    mutating func freeze(_ frozen: Set<Int>) {
        conv1.freeze(frozen)
        bn1.freeze(frozen)
    }
}
