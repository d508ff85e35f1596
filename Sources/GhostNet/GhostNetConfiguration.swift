// The hyperparameters that fix one GhostNet-D network (depth, width, classes, input size), the
// named architectures, and the bounds every configuration obeys, whether it came from a flag, a
// YAML file or a checkpoint's metadata.

/// The named GhostNet-D variants of the reference model zoo, the one architecture enum of the
/// project (`--arch`, `model.model_desc.type`, a checkpoint's `arch`).
package enum GhostNetArchitecture: String, CaseIterable, Sendable {
    /// ResNet-101 depth: 3, 4, 23, 3 blocks per stage (the seed's `ghostnet_d.ghostnet101`).
    case ghostnet101
    /// ResNet-50 depth: 3, 4, 6, 3 blocks per stage.
    case ghostnet50

    /// The number of blocks `b` in each of the four GhostX stages.
    package var blocksPerStage: [Int] {
        switch self {
        case .ghostnet101: [3, 4, 23, 3]
        case .ghostnet50: [3, 4, 6, 3]
        }
    }
}

/// The hyperparameters that fix one GhostNet-D network: depth, width, classes and input size.
///
/// Instances are always valid: every initialiser checks its arguments against the bounds below, so
/// a network built from one can be computed without overflow and allocated on one machine.
package struct GhostNetConfiguration: Sendable, Hashable {
    /// The number of blocks `b` in each of the four stages (base + `b − 2` ghost blocks + end).
    package let blocksPerStage: [Int]
    /// The stem's output channels; stage `i` (0-based) has `width · 2^i` planes and outputs four
    /// times as many channels.
    package let width: Int
    /// The number of classes the final fully connected layer scores.
    package let classes: Int
    /// The side of the square input image in pixels (224 for ImageNet training).
    package let imageSize: Int

    /// The reference's defaults: 64 stem channels, 1000 classes, 224×224 input.
    package static let defaultWidth = 64
    package static let defaultClasses = 1000
    package static let defaultImageSize = 224

    /// Blocks per stage: at least one; 64 is almost three times ghostnet101's deepest stage.
    package static let blocksRange = 1...64
    /// Stem channels: at least 2 (so every ghost branch has a cheap channel), at most 16 times the
    /// reference's 64.
    package static let widthRange = 2...1024
    /// Classes: ImageNet-21k has 21,841.
    package static let classesRange = 1...100_000
    /// Input side in pixels.
    package static let imageSizeRange = 1...4096
    /// Trainable scalars: 2^30 float32 values are 4 GiB per copy (weights, gradients and momentum
    /// each need one), 28 times ghostnet101's 38 million.
    package static let maximumParameterCount = 1 << 30

    /// A named variant.
    package init(
        architecture: GhostNetArchitecture = .ghostnet101,
        width: Int = defaultWidth, classes: Int = defaultClasses, imageSize: Int = defaultImageSize
    ) throws(GhostNetConfigurationError) {
        try self.init(blocksPerStage: architecture.blocksPerStage, width: width, classes: classes, imageSize: imageSize)
    }

    /// A variant with explicit stage depths, e.g. `[3, 4, 3, 3]` for a tiny test network.
    ///
    /// - Throws: ``GhostNetConfigurationError`` unless there are four stages with block counts in
    ///   ``blocksRange``, `width`, `classes` and `imageSize` lie in ``widthRange``,
    ///   ``classesRange`` and ``imageSizeRange``, and the network has at most
    ///   ``maximumParameterCount`` parameters.
    package init(
        blocksPerStage: [Int],
        width: Int = defaultWidth, classes: Int = defaultClasses, imageSize: Int = defaultImageSize
    ) throws(GhostNetConfigurationError) {
        guard blocksPerStage.count == 4, blocksPerStage.allSatisfy(Self.blocksRange.contains) else {
            throw GhostNetConfigurationError(
                "blocks per stage must be four counts in \(Self.text(Self.blocksRange)), got \(blocksPerStage)")
        }
        guard Self.widthRange.contains(width) else {
            throw GhostNetConfigurationError(
                "width (stem channels) must be in \(Self.text(Self.widthRange)), got \(width)")
        }
        guard Self.classesRange.contains(classes) else {
            throw GhostNetConfigurationError("classes must be in \(Self.text(Self.classesRange)), got \(classes)")
        }
        guard Self.imageSizeRange.contains(imageSize) else {
            throw GhostNetConfigurationError(
                "image size must be in \(Self.text(Self.imageSizeRange)) pixels, got \(imageSize)")
        }
        self.blocksPerStage = blocksPerStage
        self.width = width
        self.classes = classes
        self.imageSize = imageSize
        // Within the bounds above every count fits in an Int (the widest layer has 8192² · 9 scalars).
        let parameters = GhostNetStructure(configuration: self).parameterCount
        guard parameters <= Self.maximumParameterCount else {
            throw GhostNetConfigurationError(
                "blocks \(blocksText), width \(width) and \(classes) classes make \(parameters) parameters, "
                    + "more than the \(Self.maximumParameterCount) (4 GiB of float32) one machine is sized for")
        }
    }

    private static func text(_ range: ClosedRange<Int>) -> String { "\(range.lowerBound)…\(range.upperBound)" }

    /// The named architecture with these stage depths, or `nil` for a custom depth.
    package var architecture: GhostNetArchitecture? {
        GhostNetArchitecture.allCases.first { $0.blocksPerStage == blocksPerStage }
    }

    /// `ghostnet101`, `ghostnet50`, or `custom` for other depths (the checkpoint's `arch` field).
    package var architectureName: String { architecture?.rawValue ?? "custom" }

    /// The blocks per stage as comma-separated counts, e.g. `3,4,23,3`.
    package var blocksText: String { blocksPerStage.map(String.init).joined(separator: ",") }

    /// Parses comma-separated block counts such as `3,4,3,3`; `nil` unless every item is an integer.
    package static func blocksPerStage(parsing text: String) -> [Int]? {
        let counts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Int($0) }
        return counts.contains(nil) ? nil : counts.compactMap { $0 }
    }
}

/// A GhostNet-D configuration that cannot describe a network.
package struct GhostNetConfigurationError: Error, CustomStringConvertible, Sendable {
    package let description: String

    package init(_ description: String) { self.description = description }
}
