// `ghostnet-d model export`, `model import` and `model average`: weights out to ONNX or folded
// safetensors, in from MindSpore checkpoints, and the element-wise mean of checkpoints.

import ArgumentParser
import GhostNet
import Interop

extension ExportFormat: ExpressibleByArgument {}

/// The source frameworks `model import` reads.
enum ImportSource: String, ExpressibleByArgument, CaseIterable {
    case mindspore
}

extension ModelCommand {
    /// `ghostnet-d model export`.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a checkpoint for inference: an ONNX model or the folded weights as safetensors.",
            discussion: """
                Batch norm is folded into the convolutions. The ONNX model (opset 17) takes the NCHW \
                FLOAT tensor 'input' [N, 3, S, S] (N dynamic, S the checkpoint's image size) and gives \
                'logits' [N, classes]. The safetensors file holds '<conv>.weight' (OIHW) and \
                '<conv>.bias' per convolution and 'fc.weight', 'fc.bias'. The network options apply \
                only to a checkpoint without ghostnet-d metadata.
                """)

        @Option(help: "The output format: onnx or safetensors.")
        var format: ExportFormat

        @Option(help: "The model: a ghostnet-d checkpoint or a PyTorch state_dict saved as safetensors.")
        var checkpoint: String

        @Option(help: "The file to write (replaced atomically; not a directory).")
        var output: String

        @OptionGroup var network: NetworkOptions

        func run() throws {
            try ModelExport.export(
                checkpoint: checkpoint, format: format, output: output,
                untaggedConfiguration: try network.makeConfiguration())
            print("wrote \(output): \(format.rawValue)")
        }
    }

    /// `ghostnet-d model import`.
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert another framework's checkpoint into a ghostnet-d checkpoint.",
            discussion: """
                A MindSpore .ckpt is read with the network options (it records no architecture). \
                Names map as docs/INTEROP.md describes; optimizer state (moments.*, global_step, \
                learning_rate, …) is skipped. Any other name that matches no model tensor, and any \
                model tensor the file lacks, is an error that lists them.
                """)

        @Option(help: "The framework that wrote the file: mindspore.")
        var from: ImportSource

        @Argument(help: "The checkpoint to read, e.g. ghostnet.ckpt.")
        var input: String

        @Option(help: "The ghostnet-d checkpoint to write (replaced atomically).")
        var output: String

        @OptionGroup var network: NetworkOptions

        func run() throws {
            let (imported, skipped) = try MindSporeImport.importCheckpoint(
                input: input, output: output, configuration: try network.makeConfiguration())
            print("wrote \(output): \(imported) tensors imported, \(skipped) training-state values skipped")
        }
    }

    /// `ghostnet-d model average`.
    struct Average: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the element-wise mean of checkpoints of one network (as timm's avg_checkpoints).",
            discussion: """
                Parameters and batch-norm running statistics are averaged alike. The output is a \
                ghostnet-d checkpoint with seed, epoch and step 0. The network options apply only \
                to inputs without ghostnet-d metadata.
                """)

        @Argument(help: "The checkpoints to average (at least one).")
        var inputs: [String]

        @Option(help: "The checkpoint to write (replaced atomically).")
        var output: String

        @OptionGroup var network: NetworkOptions

        func run() throws {
            _ = try CheckpointAverage.average(
                inputs, output: output, untaggedConfiguration: try network.makeConfiguration())
            print("wrote \(output): the mean of \(inputs.count) checkpoints")
        }
    }
}
