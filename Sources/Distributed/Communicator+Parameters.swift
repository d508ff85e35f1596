// Whole-model collectives built on a communicator: broadcasting rank 0's parameters, averaging buffers
// across ranks, and the checksum check that every replica still holds the same parameters.

import TensorEngine

/// Whole-model collectives: keeping replicas identical and averaging buffers.
extension Communicator {
    /// Overwrites every rank's `tensors` with rank `root`'s (parameters before the first step).
    ///
    /// The tensors are packed into one buffer so the broadcast is a single collective.
    ///
    /// - Precondition: every rank passes tensors of the same shapes in the same order.
    package func broadcastParameters(_ tensors: inout [Tensor], root: Int = 0) throws(CommunicatorError) {
        var packed = Self.pack(tensors)
        try packed.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try broadcast(buffer, root: root)
        }
        Self.unpack(packed, into: &tensors)
    }

    /// Replaces each of `tensors` by its mean over all ranks (batch-norm running statistics before
    /// evaluation and checkpoints).
    package func averageAcrossRanks(_ tensors: inout [Tensor]) throws(CommunicatorError) {
        var packed = Self.pack(tensors)
        try packed.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
            try allreduceSum(buffer)
        }
        let scale = 1 / Float(size)
        for index in packed.indices { packed[index] *= scale }
        Self.unpack(packed, into: &tensors)
    }

    /// Checks that every rank holds bit-identical `parameters`, by exchanging a 64-bit checksum
    /// of their bit patterns.
    ///
    /// - Throws: ``GradientExchangeError/parametersDiverged(step:groups:)`` naming which ranks
    ///   agree with which, on every rank.
    package func verifyIdenticalParameters(_ parameters: [Tensor], step: Int) throws(GradientExchangeError) {
        // Rank r writes its checksum into slot r; a sum with zeros everywhere else gathers them.
        var checksums = [Int64](repeating: 0, count: size)
        checksums[rank] = Int64(bitPattern: Self.checksum(parameters))
        do {
            try checksums.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                try allreduceSum(buffer)
            }
        } catch {
            throw .collective(error)
        }
        let values = checksums.map { UInt64(bitPattern: $0) }
        guard Set(values).count > 1 else { return }
        var groups: [(ranks: [Int], checksum: UInt64)] = []
        for (rank, value) in values.enumerated() {
            if let index = groups.firstIndex(where: { $0.checksum == value }) {
                groups[index].ranks.append(rank)
            } else {
                groups.append(([rank], value))
            }
        }
        throw .parametersDiverged(step: step, groups: groups)
    }

    /// A 64-bit hash of the tensors' shapes and float bit patterns (FNV-1a style over 32-bit
    /// words): equal exactly when the parameters are bit-identical, barring collisions.
    package static func checksum(_ tensors: [Tensor]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let prime: UInt64 = 0x0000_0100_0000_01b3
        for tensor in tensors {
            for extent in tensor.shape { hash = (hash ^ UInt64(extent)) &* prime }
            tensor.withUnsafeBufferPointer { values in
                for value in values { hash = (hash ^ UInt64(value.bitPattern)) &* prime }
            }
        }
        return hash
    }

    private static func pack(_ tensors: [Tensor]) -> [Float] {
        var packed: [Float] = []
        packed.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
        for tensor in tensors {
            tensor.withUnsafeBufferPointer { packed.append(contentsOf: $0) }
        }
        return packed
    }

    private static func unpack(_ packed: [Float], into tensors: inout [Tensor]) {
        var offset = 0
        for index in tensors.indices {
            let count = tensors[index].count
            tensors[index].withUnsafeMutableBufferPointer { destination in
                _ = destination.update(fromContentsOf: packed[offset..<offset + count])
            }
            offset += count
        }
    }
}
