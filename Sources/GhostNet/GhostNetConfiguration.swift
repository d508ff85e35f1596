//===----------------------------------------------------------------------===//
// ghostnet-d — GhostNet
//===----------------------------------------------------------------------===//

/// The named GhostNet-D variants of the reference model zoo.
public enum GhostNetArchitecture: String, CaseIterable, Sendable {
    /// ResNet-101 depth: 3, 4, 23, 3 blocks per stage (the seed's `ghostnet_d.ghostnet101`).
    case ghostnet101
    /// ResNet-50 depth: 3, 4, 6, 3 blocks per stage.
    case ghostnet50

    /// The number of blocks `b` in each of the four GhostX stages.
    public var blocksPerStage: [Int] {
        switch self {
        case .ghostnet101: [3, 4, 23, 3]
        case .ghostnet50: [3, 4, 6, 3]
        }
    }
}

/// The hyperparameters that fix one GhostNet-D network: depth, width, classes and input size.
///
/// Instances are always valid: every initialiser checks its arguments.
public struct GhostNetConfiguration: Sendable, Hashable {
    /// The number of blocks `b` in each of the four stages (base + `b − 2` ghost blocks + end).
    public let blocksPerStage: [Int]
    /// The stem's output channels; stage `i` (0-based) has `width · 2^i` planes and outputs four
    /// times as many channels.
    public let width: Int
    /// The number of classes the final fully connected layer scores.
    public let classes: Int
    /// The side of the square input image in pixels (224 for ImageNet training).
    public let imageSize: Int

    /// The reference's defaults: 64 stem channels, 1000 classes, 224×224 input.
    public static let defaultWidth = 64
    public static let defaultClasses = 1000
    public static let defaultImageSize = 224

    /// A named variant.
    public init(
        architecture: GhostNetArchitecture = .ghostnet101,
        width: Int = defaultWidth, classes: Int = defaultClasses, imageSize: Int = defaultImageSize
    ) throws(GhostNetConfigurationError) {
        try self.init(blocksPerStage: architecture.blocksPerStage, width: width, classes: classes, imageSize: imageSize)
    }

    /// A variant with explicit stage depths, e.g. `[3, 4, 3, 3]` for a tiny test network.
    ///
    /// - Throws: ``GhostNetConfigurationError`` unless there are four stages of at least one block,
    ///   `width ≥ 2` (so every ghost branch has at least one cheap channel), `classes ≥ 1` and
    ///   `imageSize ≥ 1`.
    public init(
        blocksPerStage: [Int],
        width: Int = defaultWidth, classes: Int = defaultClasses, imageSize: Int = defaultImageSize
    ) throws(GhostNetConfigurationError) {
        guard blocksPerStage.count == 4, blocksPerStage.allSatisfy({ $0 >= 1 }) else {
            throw GhostNetConfigurationError("blocks per stage must be four counts of at least 1, got \(blocksPerStage)")
        }
        guard width >= 2 else {
            throw GhostNetConfigurationError("width (stem channels) must be at least 2, got \(width)")
        }
        guard classes >= 1 else { throw GhostNetConfigurationError("classes must be at least 1, got \(classes)") }
        guard imageSize >= 1 else {
            throw GhostNetConfigurationError("image size must be at least 1 pixel, got \(imageSize)")
        }
        self.blocksPerStage = blocksPerStage
        self.width = width
        self.classes = classes
        self.imageSize = imageSize
    }

    /// The named architecture with these stage depths, or `nil` for a custom depth.
    public var architecture: GhostNetArchitecture? {
        GhostNetArchitecture.allCases.first { $0.blocksPerStage == blocksPerStage }
    }

    /// `ghostnet101`, `ghostnet50`, or `custom` for other depths (the checkpoint's `arch` field).
    public var architectureName: String { architecture?.rawValue ?? "custom" }

    /// The blocks per stage as comma-separated counts, e.g. `3,4,23,3`.
    public var blocksText: String { blocksPerStage.map(String.init).joined(separator: ",") }

    /// Parses comma-separated block counts such as `3,4,3,3`; `nil` unless every item is an integer.
    public static func blocksPerStage(parsing text: String) -> [Int]? {
        let counts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Int($0) }
        return counts.contains(nil) ? nil : counts.compactMap { $0 }
    }
}

/// A GhostNet-D configuration that cannot describe a network.
public struct GhostNetConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }
}
