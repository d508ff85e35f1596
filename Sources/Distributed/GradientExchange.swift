// The bucketed gradient all-reduce every training step uses (the trainer's and the benchmarks'):
// gradients averaged over the ranks while backward still runs.

import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Averages gradients over all ranks, overlapping communication with backward.
///
/// All gradients live in one flat float32 buffer, parameter after parameter in the fixed order of
/// `parameterShapes` (each parameter row-major, as its ``Tensor``), identical on every rank. The
/// buffer is split into buckets at parameter boundaries — a parameter is never split, so a
/// parameter larger than the capacity gets a bucket of its own — filled from the *last* parameter
/// backwards, because backward produces the last layer's gradients first. When backward has
/// delivered every gradient of a bucket (``store(_:forParameter:)`` or ``markReady(_:)``), the
/// bucket's non-blocking all-reduce starts while backward continues. Buckets always start in
/// bucket order (a bucket that is complete early waits for its predecessors), so every rank issues
/// the same collectives in the same order even if backward marks parameters in another order.
/// Each gradient is divided by the world size when it is delivered (while it is still in cache,
/// fused with ``store(_:forParameter:)``'s copy), so the all-reduced sums are already the
/// averages and ``finish()`` only waits for the buckets.
///
/// Each collective is watched: one that does not complete within the communicator's
/// `collectiveTimeout` logs the rank, step and pending bucket and aborts the job.
///
/// On a one-rank communicator no collective runs: the flat buffer already holds the result, so a
/// process training alone pays only the copy.
///
/// Virtual shards: a rank may run several of the job's `virtualShards` per step (after a shrink),
/// announced with ``beginShard(_:of:)``. The mean is then over virtual shards, not ranks. With the
/// ``Reduction/fixedPoint`` reduction each shard's gradient is kept apart and the shards are summed
/// exactly at ``finish()`` (see ``FixedPointGradientSum``): the result is bit-identical for any
/// number of ranks, at the price of no overlap with backward and 8-byte integers on the wire.
package final class GradientExchange {
    /// How the ranks' gradients are summed.
    package enum Reduction: Sendable, Equatable {
        /// Float32 sums in the MPI library's order, overlapped with backward (the default).
        case float
        /// Exact 64-bit fixed-point sums of each virtual shard's gradient after backward
        /// (`runtime.reproducible_reduction`).
        case fixedPoint
    }

    /// Tuning knobs.
    package struct Configuration: Sendable {
        /// The largest bucket in bytes (default 25 MiB, as PyTorch DDP); a larger single parameter
        /// still forms one bucket.
        package var bucketCapacityBytes: Int
        /// Compare parameter checksums across ranks every this many steps (0 = never).
        package var checksumInterval: Int
        /// The job's virtual shards, the divisor of the mean; nil for one per rank.
        package var virtualShards: Int?
        package var reduction: Reduction
        /// How the ``Reduction/float`` reduction sends gradients (`runtime.gradient_dtype`).
        package var wireFormat: GradientWireFormat

        package init(
            bucketCapacityBytes: Int = DistributedDefaults.bucketCapacityBytes, checksumInterval: Int = 100,
            virtualShards: Int? = nil, reduction: Reduction = .float, wireFormat: GradientWireFormat = .fp32
        ) {
            precondition(bucketCapacityBytes >= MemoryLayout<Float>.stride, "bucket capacity must hold one float")
            precondition(checksumInterval >= 0, "checksum interval must not be negative")
            precondition(virtualShards.map { $0 >= 1 } ?? true, "a job needs at least one virtual shard")
            self.bucketCapacityBytes = bucketCapacityBytes
            self.checksumInterval = checksumInterval
            self.virtualShards = virtualShards
            self.reduction = reduction
            self.wireFormat = wireFormat
        }
    }

    /// A contiguous run of parameters all-reduced together.
    package struct Bucket: Sendable, Equatable {
        /// Indices into `parameterShapes`.
        package var parameters: Range<Int>
        /// The bucket's elements in the flat gradient buffer.
        package var elements: Range<Int>
    }

    package let communicator: any Communicator
    package let configuration: Configuration
    /// The shape of each parameter, in flat-buffer order.
    package let parameterShapes: [[Int]]
    /// Where each parameter's gradient starts in the flat buffer.
    package let parameterOffsets: [Int]
    /// The buckets in launch order: bucket 0 holds the last parameters.
    package let buckets: [Bucket]
    /// Completed steps: ``finish()`` calls, counted from where the run started (a resumed run
    /// sets its global step), so watchdog messages and the checksum cadence follow the run.
    package var step = 0

    /// The flat gradient buffer; owned, freed in `deinit`.
    private let gradients: UnsafeMutableBufferPointer<Float>
    private let bucketOfParameter: [Int]
    private var isParameterReady: [Bool]
    private var missingInBucket: [Int]
    private var requests: [(any CollectiveRequest)?]
    private var startTimes: [ContinuousClock.Instant?]
    private var nextBucketToStart = 0
    /// The local shard the current contributions belong to, and how many this rank runs per step.
    private var shard = (position: 0, count: 1)
    /// The kept shard gradients of the fixed-point reduction.
    private let fixedPointSum: FixedPointGradientSum?
    /// The divisor of the mean: the job's virtual shards.
    private let meanDivisor: Float

    /// - Parameters:
    ///   - parameterShapes: the model's parameter shapes in a fixed order shared by all ranks.
    ///   - communicator: the group to average over.
    ///   - configuration: bucket size and checksum interval.
    package init(parameterShapes: [[Int]], communicator: any Communicator, configuration: Configuration = .init()) {
        precondition(!parameterShapes.isEmpty, "a gradient exchange needs at least one parameter")
        self.communicator = communicator
        self.configuration = configuration
        self.parameterShapes = parameterShapes
        let counts = parameterShapes.map(Tensor.elementCount(of:))
        var offsets: [Int] = []
        var total = 0
        for count in counts {
            offsets.append(total)
            total += count
        }
        parameterOffsets = offsets
        buckets = Self.makeBuckets(
            counts: counts, offsets: offsets, capacity: configuration.bucketCapacityBytes / MemoryLayout<Float>.stride)
        var bucketOfParameter = [Int](repeating: 0, count: counts.count)
        for (index, bucket) in buckets.enumerated() {
            for parameter in bucket.parameters { bucketOfParameter[parameter] = index }
        }
        self.bucketOfParameter = bucketOfParameter
        gradients = .allocate(capacity: max(total, 1))
        gradients.initialize(repeating: 0)
        isParameterReady = Array(repeating: false, count: counts.count)
        missingInBucket = buckets.map(\.parameters.count)
        requests = Array(repeating: nil, count: buckets.count)
        startTimes = Array(repeating: nil, count: buckets.count)
        let virtualShards = configuration.virtualShards ?? communicator.size
        meanDivisor = Float(virtualShards)
        fixedPointSum =
            configuration.reduction == .fixedPoint ? FixedPointGradientSum(virtualShards: virtualShards) : nil
    }

    deinit {
        gradients.deallocate()
    }

    /// Splits parameters into buckets of at most `capacity` elements, walking from the last
    /// parameter to the first; a parameter is never split.
    static func makeBuckets(counts: [Int], offsets: [Int], capacity: Int) -> [Bucket] {
        var buckets: [Bucket] = []
        var upper = counts.count
        while upper > 0 {
            var lower = upper - 1
            var elements = counts[lower]
            while lower > 0, elements + counts[lower - 1] <= capacity {
                lower -= 1
                elements += counts[lower]
            }
            buckets.append(Bucket(parameters: lower..<upper, elements: offsets[lower]..<offsets[lower] + elements))
            upper = lower
        }
        return buckets
    }

    /// The number of gradient elements (all parameters).
    package var elementCount: Int { parameterOffsets.last! + Tensor.elementCount(of: parameterShapes.last!) }

    // MARK: - During backward

    /// Starts this rank's local shard `position` of the `count` it runs this step (shard order is
    /// fixed): contributions until the next call belong to it. Float sums accumulate every shard
    /// into one buffer; fixed-point sums keep each shard's gradient apart.
    package func beginShard(_ position: Int, of count: Int) {
        precondition((0..<count).contains(position), "shard \(position) is outside 0..<\(count)")
        shard = (position, count)
    }

    /// Calls `body` with parameter `index`'s slot of the flat buffer for writing its gradient
    /// (row-major, the parameter's shape); call ``markReady(_:)`` afterwards, which divides it
    /// by the world size.
    ///
    /// - Precondition: the parameter was not yet marked ready this step (its bucket may be in flight).
    package func withGradient<Result>(
        ofParameter index: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> Result
    ) rethrows -> Result {
        precondition(!isParameterReady[index], "parameter \(index) was already marked ready this step")
        return try body(slice(ofParameter: index))
    }

    /// Copies `gradient`, divided by the world size, into parameter `index`'s slot and marks it ready.
    ///
    /// - Precondition: `gradient.shape` equals the parameter's shape.
    package func store(_ gradient: Tensor, forParameter index: Int) throws(CommunicatorError) {
        try accumulate(gradient, forParameter: index, weight: 1, isFirst: true, isLast: true)
    }

    /// Gradient accumulation over micro-batches: adds `weight / virtualShards × gradient` (fixed
    /// point: `weight × gradient`) to parameter `index`'s slot in place (the first contribution of
    /// a step, or of a shard in fixed point, overwrites it, fused with the copy); the last
    /// contribution of the last shard marks the parameter ready, so buckets start only during the
    /// last micro-batch's backward and the all-reduce runs once per optimizer step.
    ///
    /// - Parameters:
    ///   - weight: The micro-batch's share of the step's batch (its size / the batch size), so the
    ///     accumulated gradient is that of the mean loss over the whole batch.
    ///   - isFirst: The shard's first micro-batch (overwrite instead of add, in the first shard).
    ///   - isLast: The shard's last micro-batch (keep the shard's gradient; mark ready in the last shard).
    /// - Returns: Whether the shard's accumulated gradient of the parameter is finite, tested once on
    ///   its last contribution, before the all-reduce may take it: a NaN or infinity of an earlier
    ///   contribution carries into the sum, so one test per step replaces one per micro-batch. True
    ///   for earlier contributions.
    /// - Precondition: `gradient.shape` equals the parameter's shape.
    @discardableResult
    package func accumulate(
        _ gradient: Tensor, forParameter index: Int, weight: Float, isFirst: Bool, isLast: Bool
    ) throws(CommunicatorError) -> Bool {
        precondition(
            gradient.shape == parameterShapes[index],
            "gradient of parameter \(index) has shape \(gradient.shape), expected \(parameterShapes[index])")
        let destination = withGradient(ofParameter: index) { $0 }
        let scale = fixedPointSum == nil ? weight / meanDivisor : weight
        let overwrites = isFirst && (fixedPointSum != nil || shard.position == 0)
        gradient.withUnsafeBufferPointer { source in
            Self.accumulate(source, into: destination, scale: scale, overwriting: overwrites)
        }
        guard isLast else { return true }
        let isFinite = Self.isFinite(UnsafeBufferPointer(destination))
        fixedPointSum?.keep(
            UnsafeBufferPointer(destination), shard: shard.position, offset: parameterOffsets[index],
            elementCount: elementCount)
        if shard.position == shard.count - 1 { try announce(index) }
        return isFinite
    }

    /// `destination = scale × source` (`overwriting`) or `destination += scale × source`: one
    /// micro-batch's gradient added to a sum.
    package static func accumulate(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>, scale: Float,
        overwriting: Bool
    ) {
        precondition(source.count == destination.count, "adding \(source.count) values to \(destination.count)")
        if overwriting, scale == 1 {
            _ = destination.update(fromContentsOf: source)
        } else if overwriting {
            for element in destination.indices { destination[element] = source[element] * scale }
        } else {
            for element in destination.indices { destination[element] += source[element] * scale }
        }
    }

    /// Whether no value is a NaN or an infinity: those are the floats whose exponent bits are all
    /// set. An integer maximum, unlike a float sum, may be reordered, so the loop vectorises.
    package static func isFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
        let exponentBits: UInt32 = 0x7F80_0000
        var largestExponent: UInt32 = 0
        for value in values { largestExponent = max(largestExponent, value.bitPattern & exponentBits) }
        return largestExponent != exponentBits
    }

    /// Records that parameter `index`'s gradient, written through ``withGradient(ofParameter:_:)``,
    /// is final for this step: divides it by the world size, starts every bucket that is now
    /// complete (in bucket order) and drives the ones in flight.
    package func markReady(_ index: Int) throws(CommunicatorError) {
        precondition(!isParameterReady[index], "parameter \(index) was marked ready twice in one step")
        precondition(fixedPointSum == nil, "the fixed-point reduction takes gradients through accumulate")
        if meanDivisor > 1 {
            let scale = 1 / meanDivisor
            let gradient = slice(ofParameter: index)
            for element in gradient.indices { gradient[element] *= scale }
        }
        try announce(index)
    }

    /// Marks parameter `index` ready, starts every bucket that is now complete (in bucket order)
    /// and drives the ones in flight.
    private func announce(_ index: Int) throws(CommunicatorError) {
        precondition(!isParameterReady[index], "parameter \(index) was marked ready twice in one step")
        isParameterReady[index] = true
        missingInBucket[bucketOfParameter[index]] -= 1
        guard communicator.size > 1, fixedPointSum == nil else { return }
        while nextBucketToStart < buckets.count, missingInBucket[nextBucketToStart] == 0 {
            let bucket = nextBucketToStart
            startTimes[bucket] = .now
            let values = UnsafeMutableBufferPointer(rebasing: gradients[buckets[bucket].elements])
            requests[bucket] =
                configuration.wireFormat == .bf16
                ? try BFloat16GradientSum(bucket: values, communicator: communicator)
                : try communicator.startAllreduceSum(values)
            nextBucketToStart += 1
        }
        for request in requests.prefix(nextBucketToStart) {
            if let request { _ = try request.test() }
        }
    }

    // MARK: - End of step

    /// Waits for every bucket (whose sums are then the averages) and advances ``step``.
    ///
    /// - Throws: ``GradientExchangeError/parametersNotReady(_:)`` if backward skipped a parameter
    ///   (every parameter takes part every step); ``CommunicatorError`` from the collectives. A
    ///   bucket not done within the collective timeout aborts the job first.
    package func finish() throws(GradientExchangeError) {
        let missing = isParameterReady.indices.filter { !isParameterReady[$0] }
        guard missing.isEmpty else { throw .parametersNotReady(missing) }
        if let fixedPointSum {
            do {
                try fixedPointSum.reduce(
                    localShards: shard.count, into: gradients, buckets: buckets.map(\.elements),
                    communicator: communicator)
            } catch {
                throw .collective(error)
            }
        }
        let timeout = communicator.collectiveTimeout
        for (index, bucket) in buckets.enumerated() where communicator.size > 1 && fixedPointSum == nil {
            let started = startTimes[index]!
            let remaining = timeout - started.duration(to: .now)
            do {
                try requests[index]!.wait(timeout: max(remaining, .zero))
            } catch .timedOut {
                let bytes = bucket.elements.count * MemoryLayout<Float>.stride
                let reason =
                    "collective watchdog: rank \(communicator.rank), step \(step + 1): "
                    + "gradient bucket \(index) of \(buckets.count) "
                    + "(parameters \(bucket.parameters.lowerBound)-\(bucket.parameters.upperBound - 1), "
                    + "\(bytes) bytes) "
                    + "not complete after \(timeout.inSeconds) s"
                communicator.abort(reason: reason)
                throw .collective(.timedOut(operation: reason, rank: communicator.rank, seconds: timeout.inSeconds))
            } catch {
                throw .collective(error)
            }
        }
        step += 1
        for index in isParameterReady.indices { isParameterReady[index] = false }
        missingInBucket = buckets.map(\.parameters.count)
        requests = Array(repeating: nil, count: buckets.count)
        startTimes = Array(repeating: nil, count: buckets.count)
        nextBucketToStart = 0
    }

    /// The averaged gradient of parameter `index`, in the parameter's shape; valid after ``finish()``.
    package func gradient(ofParameter index: Int) -> Tensor {
        let source = slice(ofParameter: index)
        return Tensor(shape: parameterShapes[index]) { destination in
            _ = destination.update(fromContentsOf: source)
        }
    }

    /// Calls `body` with the whole flat gradient buffer (parameters in order) for reading.
    package func withGradients<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        try body(UnsafeBufferPointer(gradients))
    }

    /// Whether ``verifyParametersIfDue(_:)`` compares checksums after the current ``step``: the
    /// one place the checksum interval is applied (a caller may skip gathering parameters otherwise).
    package var isChecksumDue: Bool {
        configuration.checksumInterval > 0 && step % configuration.checksumInterval == 0
    }

    /// Compares parameter checksums across ranks when ``isChecksumDue`` (see
    /// ``Communicator/verifyIdenticalParameters(_:step:)``).
    package func verifyParametersIfDue(_ parameters: [Tensor]) throws(GradientExchangeError) {
        guard isChecksumDue else { return }
        try communicator.verifyIdenticalParameters(parameters, step: step)
    }

    private func slice(ofParameter index: Int) -> UnsafeMutableBufferPointer<Float> {
        let start = parameterOffsets[index]
        return UnsafeMutableBufferPointer(
            rebasing: gradients[start..<start + Tensor.elementCount(of: parameterShapes[index])])
    }
}

/// Why a gradient exchange or a parameter check failed.
package enum GradientExchangeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Backward never marked these parameters ready this step.
    case parametersNotReady([Int])
    /// Ranks hold different parameters: each group lists ranks that agree, with their checksum.
    case parametersDiverged(step: Int, groups: [(ranks: [Int], checksum: UInt64)])
    /// A collective failed.
    case collective(CommunicatorError)

    package var description: String {
        switch self {
        case .parametersNotReady(let indices):
            let shown = indices.prefix(10).map(String.init).joined(separator: ", ")
            return "backward did not deliver the gradients of \(indices.count) parameter(s) "
                + "(\(shown)\(indices.count > 10 ? ", …" : "")); "
                + "every parameter must take part in every step"
        case .parametersDiverged(let step, let groups):
            let listing = groups.map { group in
                let ranks = group.ranks.map(String.init).joined(separator: ",")
                return (group.ranks.count > 1 ? "ranks \(ranks) have" : "rank \(ranks) has")
                    + " checksum \(String(group.checksum, radix: 16))"
            }
            return "parameters differ across ranks at step \(step): \(listing.joined(separator: "; "))"
        case .collective(let error):
            return error.description
        }
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.description == rhs.description
    }
}
