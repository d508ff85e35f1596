// The I/O shell of the agreements in Agreements.swift: encode, sum over the ranks, decode.

import Distributed

extension Communicator {
    /// Sums every rank's `contribution` and returns the agreed value, the same on every rank.
    ///
    /// One all-reduce for the integers and one for the reals (each only when the agreement has any).
    package func agree<Contribution: Agreement>(
        _ contribution: Contribution
    ) throws(CommunicatorError) -> Contribution.Outcome {
        var encoder = AgreementEncoder(rank: rank, worldSize: size)
        contribution.encode(into: &encoder)
        var integers = encoder.integers
        var reals = encoder.reals
        if !integers.isEmpty {
            try integers.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in try allreduceSum(buffer) }
        }
        if !reals.isEmpty {
            try reals.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in try allreduceSum(buffer) }
        }
        var decoder = AgreementDecoder(integers: integers, reals: reals, worldSize: size)
        return Contribution.decode(from: &decoder)
    }
}
