// Opt-in timing of the engine's kernels by category (convolution sizes, batch norm, pooling, optimizer…),
// which the step benchmark uses to break a training step's time down.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The kinds of work a training step's time is broken into by the step benchmark.
package enum KernelCategory: Int, CaseIterable, Sendable {
    case convolution1x1
    case convolution3x3
    case convolution7x7
    /// Convolutions of any other kernel size (none in GhostNet-D).
    case convolutionOther
    /// Batch norm forward and backward, including a fused ReLU and the running-statistics update.
    case batchNorm
    /// Standalone ReLU, additions, broadcast additions, channel concatenation and split.
    case reluAdd
    /// Max-pool and global average pool, forward and backward.
    case pool
    /// The fully connected layer, forward and backward.
    case fullyConnected
    /// Softmax cross-entropy and its gradient.
    case loss
    /// The SGD update over all parameters.
    case optimizer
    /// The gradient all-reduce (or, in one process, copying the gradients into one flat buffer).
    case allReduce

    /// A short label for reports and JSON keys, e.g. `conv1x1`.
    package var label: String {
        switch self {
        case .convolution1x1: "conv1x1"
        case .convolution3x3: "conv3x3"
        case .convolution7x7: "conv7x7"
        case .convolutionOther: "conv_other"
        case .batchNorm: "batchnorm"
        case .reluAdd: "relu_add"
        case .pool: "pool"
        case .fullyConnected: "fc"
        case .loss: "loss"
        case .optimizer: "optimizer"
        case .allReduce: "allreduce"
        }
    }

    /// The category of a convolution with a square kernel of `kernelSize`.
    package static func convolution(kernelSize: Int) -> KernelCategory {
        switch kernelSize {
        case 1: .convolution1x1
        case 3: .convolution3x3
        case 7: .convolution7x7
        default: .convolutionOther
        }
    }
}

/// Accumulated wall-clock time per ``KernelCategory``, for the step benchmark's breakdown.
///
/// Off by default: then every instrumented kernel pays one relaxed atomic load. When on, the
/// outermost instrumented call on any thread is timed (a kernel that calls another instrumented
/// kernel is charged as a whole to its own category), and calls made while another one is being
/// timed, e.g. on another thread, are not timed at all.
package enum KernelProfiler {
    private static let enabled = Atomic<Bool>(false)
    private static let timing = Atomic<Bool>(false)
    private static let totals = Mutex<[Int]>(Array(repeating: 0, count: KernelCategory.allCases.count))

    /// Whether instrumented kernels record their time.
    package static var isEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// Clears the accumulated times.
    package static func reset() {
        totals.withLock { $0 = Array(repeating: 0, count: KernelCategory.allCases.count) }
    }

    /// The accumulated nanoseconds of each category, indexed by `KernelCategory.rawValue`.
    package static var nanoseconds: [Int] { totals.withLock { $0 } }

    /// Runs `body`, charging its time to `category` when profiling is on and nothing else is being
    /// timed.
    @inline(__always)
    package static func measure<R>(_ category: KernelCategory, _ body: () throws -> R) rethrows -> R {
        guard enabled.load(ordering: .relaxed) else { return try body() }
        return try timed(category, body)
    }

    private static func timed<R>(_ category: KernelCategory, _ body: () throws -> R) rethrows -> R {
        guard timing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return try body()
        }
        let start = monotonicNanoseconds()
        defer {
            let elapsed = monotonicNanoseconds() - start
            totals.withLock { $0[category.rawValue] += elapsed }
            timing.store(false, ordering: .releasing)
        }
        return try body()
    }

    /// The monotonic clock in nanoseconds.
    package static func monotonicNanoseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1_000_000_000 + now.tv_nsec
    }
}
