// The cache of weights converted for bf16 products: each weight's bf16 forms (pair panels for the native and
// portable kernels, rounded floats for the emulated path, of its elements or of Winograd's transformed
// filters) made once and kept while the weight is unchanged, so the forward pass, the input gradient, every
// micro-batch and every evaluation batch between two optimizer steps share one conversion.

import Synchronization

/// Converted forms of weight tensors for ``Precision/bf16`` products, each made once per version of its weight.
///
/// A form belongs to a weight's storage, held weakly (a freed weight's forms are dropped with the next new
/// entry), and is valid for the storage's write version, which ``Tensor/withUnsafeMutableBufferPointer(_:)``
/// bumps when every write through it ends. That call is the only way to write a tensor's elements: the
/// optimizer's update, a checkpoint or EMA copied into a parameter all go through it. A parameter replaced by
/// another tensor (a loaded checkpoint, an EMA swap, init-from) has another storage. So no write can leave a
/// form stale: the first product after it converts again. One set of forms per weight is kept; a new version's
/// first product drops the old forms before converting.
///
/// Sizes (``Form/bytes``): bf16 pair panels take `⌈k/2⌉·n` words, half the fp32 weight, once per product
/// direction (forward `Wᵀ`, input gradient `W`); the emulated path keeps one rounded fp32 copy of the weight
/// that both directions read. Winograd F(2×2, 3×3) multiplies 16 transformed `[C_out, C_in]` matrices where
/// the weight has 9, so its forms are 16/9 of the above, kept for the forward and the input gradient's
/// rotated filters separately.
package enum ConvertedWeights {
    /// What a form holds: which matrices derive from the weight, and how they are stored.
    struct Key: Hashable {
        let derivation: GEMM.WeightDerivation
        /// The bf16 pair panels of `count` products' `op(B)` of this shape, or nil: the derived matrices
        /// rounded to bf16 and kept as floats (the emulated path, any `op(B)`).
        let panels: Panels?

        struct Panels: Hashable {
            let transposeB: Bool, k: Int, n: Int, count: Int
        }
    }

    /// One converted form: `bytes` of 64-byte-aligned memory, written once when it is made, freed with it.
    final class Form: @unchecked Sendable {
        let bytes: Int
        private let base: UnsafeMutableRawPointer

        init(bytes: Int) {
            self.bytes = bytes
            base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        }

        deinit { base.deallocate() }

        /// The form as floats (rounded matrices).
        var floats: UnsafeMutablePointer<Float> { base.bindMemory(to: Float.self, capacity: bytes / 4) }
        /// The form as 32-bit words (bf16 pairs).
        var words: UnsafeMutablePointer<UInt32> { base.bindMemory(to: UInt32.self, capacity: bytes / 4) }
    }

    /// One weight storage's forms; changed only under ``entries``' lock.
    private final class Entry: @unchecked Sendable {
        weak var storage: TensorStorage?
        var version: Int
        var forms: [Key: Form] = [:]
        /// Forms made for this storage over all its versions.
        var conversions = 0

        init(storage: TensorStorage, version: Int) {
            self.storage = storage
            self.version = version
        }
    }

    private static let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    /// The form `key` of `weight`'s current version: the cached one, or a new form of `bytes` that `convert`
    /// fills (outside the lock) and the cache keeps.
    static func form(of weight: Tensor, _ key: Key, bytes: Int, convert: (Form) -> Void) -> Form {
        let storage = weight.storage
        let (identity, version) = (ObjectIdentifier(storage), storage.version)
        let cached: Form? = entries.withLock { entries in
            guard let entry = entries[identity], entry.storage === storage else { return nil }
            if entry.version != version {
                // The weight was written: its old forms go before the new one is made.
                (entry.version, entry.forms) = (version, [:])
            }
            return entry.forms[key]
        }
        if let cached { return cached }
        let form = Form(bytes: bytes)
        convert(form)
        return entries.withLock { entries in
            let entry: Entry
            if let existing = entries[identity], existing.storage === storage {
                entry = existing
            } else {
                entries = entries.filter { $0.value.storage != nil }
                entry = Entry(storage: storage, version: version)
                entries[identity] = entry
            }
            if entry.version != version { (entry.version, entry.forms) = (version, [:]) }
            entry.conversions += 1
            // Another thread may have made the same form meanwhile; both are equal, the first one stays.
            if let raced = entry.forms[key] { return raced }
            entry.forms[key] = form
            return form
        }
    }

    /// The forms made for `weight`'s storage so far, over all its versions (a test's count of conversions).
    package static func conversions(of weight: Tensor) -> Int {
        let storage = weight.storage
        return entries.withLock { entries in
            entries[ObjectIdentifier(storage)].flatMap { $0.storage === storage ? $0.conversions : nil } ?? 0
        }
    }

    /// The bytes of `weight`'s current forms.
    package static func bytes(of weight: Tensor) -> Int {
        let storage = weight.storage
        return entries.withLock { entries in
            guard let entry = entries[ObjectIdentifier(storage)], entry.storage === storage,
                entry.version == storage.version
            else { return 0 }
            return entry.forms.values.reduce(0) { $0 + $1.bytes }
        }
    }

    /// The bytes the cache holds for all weights alive.
    package static var residentBytes: Int {
        entries.withLock { entries in
            entries.values.filter { $0.storage != nil }.reduce(0) { total, entry in
                total + entry.forms.values.reduce(0) { $0 + $1.bytes }
            }
        }
    }
}

extension ConvertedWeights {
    /// The bytes the cache keeps for a convolution's weight once a bf16 training step has run it on this CPU:
    /// the forward product's form and, when `inputGradient`, the input gradient's (one form when both read the
    /// rounded weight). For memory models; the network's figures are in docs/PERFORMANCE.md.
    package static func trainingBytes(
        geometry: Convolution2DGeometry, inputChannels: Int, outputChannels: Int, inputGradient: Bool
    ) -> Int {
        // Which products the plan runs depends on the geometry alone in bf16, not on the map's size.
        let side = 2 * geometry.kernelSize
        let plan = ConvolutionPlan(
            input: [1, side, side, inputChannels],
            output: [1, geometry.outputExtent(side), geometry.outputExtent(side), outputChannels], geometry: geometry,
            limits: ConvolutionLimits())
        guard let winograd = withPrecision(.bf16, { plan.winograd }) else {
            return weightBytes(rows: outputChannels, columns: plan.columns, inputGradient: inputGradient)
        }
        let (tile, channels) = (winograd.outputTile, inputChannels * outputChannels)
        let positions = (tile + 2) * (tile + 2)
        let forms = [false, true].filter { !$0 || inputGradient }.map { flipped in
            GEMM.bf16Form(
                derivation: .winograd(tile: tile, flipped: flipped), count: positions, transposeB: !flipped,
                k: flipped ? outputChannels : inputChannels, n: flipped ? inputChannels : outputChannels,
                derivedCount: positions * channels)
        }
        return distinctBytes(forms)
    }

    /// ``trainingBytes(geometry:inputChannels:outputChannels:inputGradient:)`` for a linear layer's
    /// `[outputs, inputs]` weight.
    package static func trainingBytes(linearInputs inputs: Int, outputs: Int) -> Int {
        weightBytes(rows: outputs, columns: inputs, inputGradient: true)
    }

    /// The forms of a `[rows, columns]` weight whose products are `A · Wᵀ` (forward) and `A · W` (input gradient).
    private static func weightBytes(rows: Int, columns: Int, inputGradient: Bool) -> Int {
        let forms = [false, true].filter { !$0 || inputGradient }.map { gradient in
            GEMM.bf16Form(
                derivation: .elements, count: 1, transposeB: !gradient, k: gradient ? rows : columns,
                n: gradient ? columns : rows, derivedCount: rows * columns)
        }
        return distinctBytes(forms)
    }

    /// The bytes of `forms`, a form read by several products counted once.
    private static func distinctBytes(_ forms: [(key: Key, bytes: Int)]) -> Int {
        Dictionary(forms.map { ($0.key, $0.bytes) }, uniquingKeysWith: { first, _ in first }).values.reduce(0, +)
    }
}
