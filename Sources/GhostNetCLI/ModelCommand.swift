// `ghostnet-d model`: describing networks (`summary`), creating checkpoints (`init`) and running a
// checkpoint on tensor files (`forward`, `grad`), with the options that choose a network.

import ArgumentParser
import Checkpoints
import Foundation
import GhostNet
import TensorEngine

extension GhostNetArchitecture: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `ghostnet-d model`: the GhostNet-D network itself.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Describe GhostNet-D networks, create, run, export, import and average model checkpoints.",
        subcommands: [
            Summary.self, Initialize.self, Forward.self, Gradient.self, GradientError.self, Export.self, Import.self,
            Average.self,
        ])
}

/// The options that choose one network.
struct NetworkOptions: ParsableArguments {
    @Option(help: "The architecture, ghostnet101 (blocks 3,4,23,3; the default) or ghostnet50 (3,4,6,3).")
    var arch: GhostNetArchitecture?

    @Option(help: "Blocks per stage instead of --arch: four comma-separated counts, e.g. 3,4,3,3.")
    var blocks: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Stem channels (\(OptionRange.help(GhostNetConfiguration.widthRange))); "
                + "stage i has width·2^i planes and 4·width·2^i output channels."))
    var width: Int = GhostNetConfiguration.defaultWidth

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Number of classes the final fully connected layer scores "
                + "(\(OptionRange.help(GhostNetConfiguration.classesRange)))."))
    var classes: Int = GhostNetConfiguration.defaultClasses

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Side of the square input image in pixels "
                + "(\(OptionRange.help(GhostNetConfiguration.imageSizeRange)); "
                + "sets shapes and MACs; recorded in checkpoints)."))
    var imageSize: Int = GhostNetConfiguration.defaultImageSize

    func validate() throws {
        _ = try makeConfiguration()
    }

    /// The configuration the options describe.
    func makeConfiguration() throws -> GhostNetConfiguration {
        var blocksPerStage = (arch ?? .ghostnet101).blocksPerStage
        if let blocks {
            guard arch == nil else { throw ValidationError("give either --arch or --blocks, not both") }
            guard let parsed = GhostNetConfiguration.blocksPerStage(parsing: blocks) else {
                throw ValidationError("--blocks '\(blocks)' must be comma-separated integers, e.g. 3,4,3,3")
            }
            blocksPerStage = parsed
        }
        do {
            return try GhostNetConfiguration(
                blocksPerStage: blocksPerStage, width: width, classes: classes, imageSize: imageSize)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension ModelCommand {
    /// `ghostnet-d model summary`.
    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print per-stage output shapes, parameters and multiply-accumulates, and the totals.",
            discussion: """
                MACs count the multiply-accumulates of one image's forward pass through the \
                convolutions and the fully connected layer. The last two lines are the performance \
                record's fields: params in thousands and flops (MACs) in billions.
                """)

        @OptionGroup var network: NetworkOptions

        func run() throws {
            print(GhostNetStructure(configuration: try network.makeConfiguration()).report)
        }
    }

    /// `ghostnet-d model init`.
    struct Initialize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Write a freshly initialised model as a safetensors checkpoint.",
            discussion: """
                Conv weights are Kaiming normal (fan-out, ReLU gain), batch-norm weights 1 and \
                biases 0, fc weight and bias uniform in ±1/√fan_in; the same seed gives the same file.
                """)

        @OptionGroup var network: NetworkOptions

        @Option(parsing: .unconditional, help: "Seed of the initialisation (0-\(UInt64.max)).")
        var seed: UInt64 = 0

        @Option(help: "The checkpoint file to write (replaced atomically).")
        var output: String

        func run() throws {
            let structure = GhostNetStructure(configuration: try network.makeConfiguration())
            let checkpoint = Checkpoint(parameters: .initialized(for: structure, seed: seed), seed: seed)
            try checkpoint.write(to: output)
            print(
                "wrote \(output): \(structure.configuration.architectureName), \(structure.tensors.count) tensors, "
                    + "\(structure.parameterCount) parameters, seed \(seed)")
        }
    }
}

/// The options of the commands that run a model on tensor files.
struct ModelRunOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The model: a ghostnet-d checkpoint, or a PyTorch state_dict saved as safetensors "
                + "(then described by the network options)."))
    var checkpoint: String

    @Option(help: "A safetensors file with the F32 tensor 'input', images NCHW [N, 3, H, W].")
    var input: String

    @Option(help: "The safetensors file to write (replaced atomically).")
    var output: String
}

extension ModelCommand {
    /// `ghostnet-d model forward`.
    struct Forward: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute the logits of a batch of images and write them as the F32 tensor 'logits' [N, classes].",
            discussion: """
                The network options apply only to a checkpoint without ghostnet-d metadata (e.g. \
                a PyTorch export); a ghostnet-d checkpoint describes its own network. Batch norm \
                uses the running statistics unless --train-mode is given.
                """)

        @OptionGroup var files: ModelRunOptions

        @Flag(
            help: ArgumentHelp(
                "Normalise with the batch's statistics, as PyTorch's model.train() "
                    + "(needs more than one value per channel)."))
        var trainMode = false

        @OptionGroup var network: NetworkOptions

        func run() throws {
            let shape = try ModelInteroperability.forward(
                checkpoint: files.checkpoint, input: files.input, output: files.output, trainingMode: trainMode,
                untaggedConfiguration: try network.makeConfiguration())
            print("wrote \(files.output): logits \(shape)")
        }
    }

    /// `ghostnet-d model grad`.
    struct Gradient: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grad",
            abstract: "Write the mean cross-entropy of a labelled batch and its gradient for every parameter.",
            discussion: """
                Batch norm runs in training mode. The output holds the F32 scalar 'loss' and one \
                tensor per trainable parameter under its PyTorch name, in PyTorch layout. The \
                network options apply only to a checkpoint without ghostnet-d metadata.
                """)

        @OptionGroup var files: ModelRunOptions

        @Option(help: "A safetensors file with the I64 or I32 tensor 'labels' [N], classes in 0..<classes.")
        var labels: String

        @OptionGroup var network: NetworkOptions

        @Option(
            help: ArgumentHelp(
                "The matrix products' precision: fp32, bf16 (operands rounded to bf16, fp32 sums), or reference "
                    + "(fp32 operands, float64 sums, each output rounded once; see `model grad-error`)."))
        var precision: Precision = .fp32

        func run() throws {
            let configuration = try network.makeConfiguration()
            let loss = try withPrecision(precision) {
                try ModelInteroperability.gradient(
                    checkpoint: files.checkpoint, input: files.input, labels: labels, output: files.output,
                    untaggedConfiguration: configuration)
            }
            print("wrote \(files.output): loss \(loss) (\(precision.label))")
        }
    }

    /// `ghostnet-d model grad-error`.
    struct GradientError: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grad-error",
            abstract: "Measure fp32's and bf16's parameter gradients against float64-accumulated products.",
            discussion: """
                Initialises the network from --seed, draws --batch random images and labels from the same seed, \
                and computes the mean cross-entropy's gradient (batch norm in training mode) with `model grad`'s \
                three precisions: fp32, bf16 and reference (every matrix product's fp32 operands summed in \
                float64, each output rounded once; batch norm, ReLU, pooling and the loss are fp32 in all \
                three). Prints per parameter tensor ‖g − g_ref‖/‖g_ref‖ and max|g − g_ref|/max|g_ref| for fp32 \
                and bf16 and the ratio of the relative errors, then a summary per stage. Exits 1 when a ratio \
                exceeds the bound docs/PERFORMANCE.md derives (\(Int(GradientPrecisionErrors.ratioBound))).
                """)

        @OptionGroup var network: NetworkOptions

        @Option(parsing: .unconditional, help: "Images in the batch (2-256; training batch norm needs two).")
        var batch = 4

        @Option(parsing: .unconditional, help: "Seed of the weights, images and labels (0-\(UInt64.max)).")
        var seed: UInt64 = 0

        func validate() throws {
            try OptionRange.check("--batch", batch, 2...256)
            try OptionRange.checkInputBatch(batch: batch, imageSize: network.imageSize)
        }

        func run() throws {
            let configuration = try network.makeConfiguration()
            let (images, labels) = GradientPrecisionErrors.syntheticBatch(
                configuration: configuration, batch: batch, seed: seed)
            let errors = try GradientPrecisionErrors(
                model: GhostNetModel(configuration: configuration, seed: seed), images: images, labels: labels)
            for line in errors.reportLines { print(line) }
            if errors.rows.contains(where: { !($0.ratio <= GradientPrecisionErrors.ratioBound) }) {
                throw ExitCode.failure
            }
        }
    }
}

extension GradientPrecisionErrors {
    /// The per-tensor table, a summary per stage (the name's first component; `conv1`/`bn1` are the stem) and
    /// the bound's verdict, as Markdown tables.
    fileprivate var reportLines: [String] {
        func scientific(_ value: Double) -> String { String(format: "%.2e", value) }
        func ratio(_ value: Double) -> String { String(format: "%.0f", value) }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var lines = [
            "loss: fp32 \(losses.fp32), bf16 \(losses.bf16), reference \(losses.reference)", "",
            "| tensor | scalars | fp32 ‖Δ‖/‖g‖ | fp32 max | bf16 ‖Δ‖/‖g‖ | bf16 max | bf16/fp32 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows {
            lines.append(
                "| \(row.name) | \(row.scalars) | \(scientific(row.fp32.relative)) | \(scientific(row.fp32.largest)) | "
                    + "\(scientific(row.bf16.relative)) | \(scientific(row.bf16.largest)) | \(ratio(row.ratio)) |")
        }
        lines += [
            "",
            "| stage | tensors | fp32 ‖Δ‖/‖g‖ median / max | bf16 ‖Δ‖/‖g‖ median / max | bf16/fp32 min / median / max |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        let stages = Dictionary(grouping: rows) { row in
            let stage = String(row.name.prefix { $0 != "." })
            return stage.hasPrefix("layer") || stage == "fc" ? stage : "stem"
        }
        for stage in ["stem", "layer1", "layer2", "layer3", "layer4", "fc"] {
            guard let group = stages[stage] else { continue }
            let (fp32, bf16, ratios) = (group.map(\.fp32.relative), group.map(\.bf16.relative), group.map(\.ratio))
            lines.append(
                "| \(stage) | \(group.count) | \(scientific(median(fp32))) / \(scientific(fp32.max()!)) | "
                    + "\(scientific(median(bf16))) / \(scientific(bf16.max()!)) | "
                    + "\(ratio(ratios.min()!)) / \(ratio(median(ratios))) / \(ratio(ratios.max()!)) |")
        }
        let exceeding = rows.filter { !($0.ratio <= Self.ratioBound) }.map(\.name)
        lines.append("")
        lines.append(
            exceeding.isEmpty
                ? "bf16/fp32 ≤ \(ratio(Self.ratioBound)) (the documented bound) for all \(rows.count) tensors"
                : "bf16/fp32 exceeds the documented bound \(ratio(Self.ratioBound)) for: "
                    + exceeding.joined(separator: ", "))
        return lines
    }
}
