// Batch-norm running statistics of training passes that run at the same time on copies of the model:
// each copy records its passes' batch statistics instead of moving its running averages, and the
// model applies them afterwards in pass order, exactly as if the passes had run one after another.

import Layers
import TensorEngine

/// The batch statistics of one training pass, one entry per batch norm in network order (nil where
/// the pass moved no running average: a frozen batch norm, or a pass with frozen batch norm).
package struct PassStatistics: Sendable {
    fileprivate let normalizations: [BatchNormNormalization?]
}

extension GhostNetModel {
    /// Makes this copy's training passes record their batch statistics instead of updating the
    /// running averages (``takePassStatistics()`` collects them).
    package mutating func deferRunningStatistics() {
        forEachNormalization { $0.deferredStatistics = [] }
    }

    /// The statistics the one training pass since the last call recorded, and clears them.
    ///
    /// - Precondition: ``deferRunningStatistics()`` was called, and at most one pass ran since.
    package mutating func takePassStatistics() -> PassStatistics {
        var normalizations: [BatchNormNormalization?] = []
        forEachNormalization { layer in
            guard let recorded = layer.deferredStatistics, recorded.count <= 1 else {
                preconditionFailure("takePassStatistics: the running statistics are not deferred, or two passes ran")
            }
            normalizations.append(recorded.first)
            layer.deferredStatistics = []
        }
        return PassStatistics(normalizations: normalizations)
    }

    /// Moves the running averages by one pass's statistics, as that pass's forward would have.
    ///
    /// - Precondition: `statistics` came from a copy of this model.
    package mutating func applyRunningStatistics(_ statistics: PassStatistics) {
        var index = 0
        forEachNormalization { layer in
            if let normalization = statistics.normalizations[index] {
                layer.applyRunningStatistics(from: normalization)
            }
            index += 1
        }
        ensure(index == statistics.normalizations.count, "applyRunningStatistics: statistics of another network")
    }

    /// Calls `body` with every batch norm, in network order.
    private mutating func forEachNormalization(_ body: (inout BatchNorm2D) -> Void) {
        stem.bn1.forEach(body)
        for index in stages.indices { stages[index].forEachNormalization(body) }
    }
}

extension NormalizationUnit {
    mutating func forEach(_ body: (inout BatchNorm2D) -> Void) { body(&layer) }
}

extension BottleneckUnit {
    mutating func forEachNormalization(_ body: (inout BatchNorm2D) -> Void) {
        bn1.forEach(body)
        bn2.forEach(body)
        bn3.forEach(body)
        downsample?.normalization.forEach(body)
    }
}

extension GhostStageUnit {
    mutating func forEachNormalization(_ body: (inout BatchNorm2D) -> Void) {
        base.forEachNormalization(body)
        if ghost != nil {
            for index in ghost!.bottlenecks.indices { ghost!.bottlenecks[index].forEachNormalization(body) }
            ghost!.merge.normalization.forEach(body)
            ghost!.cheap.normalization.forEach(body)
        }
        end.forEachNormalization(body)
    }
}
